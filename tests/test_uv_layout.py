"""The default model's UV layout follows its triangles, and mirror partners are mirror images."""
import numpy as np
import pytest

from facerecon_jax.io import assets
from facerecon_jax.models import ict_model, mirror, uv_layout


def _obj_polygons(n):
    """The first n polygons of the ICT OBJ as [(vertex, vt)] lists, and all vt, read here on
    their own."""
    polys, vt = [], []
    with open(assets.asset_path("ict_facekit") / "generic_neutral_mesh.obj") as f:
        for line in f:
            if line.startswith("vt "):
                vt.append([float(x) for x in line.split()[1:3]])
            if line.startswith("f ") and len(polys) < n:
                polys.append([tuple(int(x) - 1 for x in tok.split("/")[:2])
                              for tok in line.split()[1:]])
    return polys, np.array(vt)


def _signed_areas(c):
    return ((c[:, 1, 0] - c[:, 0, 0]) * (c[:, 2, 1] - c[:, 0, 1])
            - (c[:, 1, 1] - c[:, 0, 1]) * (c[:, 2, 0] - c[:, 0, 0]))


def test_every_triangle_takes_the_uvs_of_its_obj_polygon(default_model):
    lay = uv_layout.for_model(default_model)
    tris = np.asarray(default_model.triangles)
    polys, vt = _obj_polygons(ict_model.N_POLYGONS)
    assert lay.corner_uv.shape == tris.shape
    # only the face area's UVs are kept, each once
    used = {t for p in polys for _, t in p}
    assert len(lay.uv) == len(used) < len(vt)
    assert len(np.unique(lay.corner_uv)) == len(lay.uv)
    # the narrow face area is all quads, two triangles each, in polygon order
    assert all(len(p) == 4 for p in polys)
    np.testing.assert_array_equal(lay.polygon, np.arange(len(tris)) // 2)
    for t in range(len(tris)):
        vt_of = dict(polys[t // 2])
        assert set(tris[t]) <= set(vt_of), t
        np.testing.assert_array_equal(lay.uv[lay.corner_uv[t]], vt[[vt_of[v] for v in tris[t]]],
                                      err_msg=str(t))


def test_uv_winding_follows_the_model_winding(default_model):
    """The layout is a frontal projection: seen from outside, triangles wind the same way in 3D
    and in UV. Flip the model's triangles and the UV corners must flip with them."""
    lay = uv_layout.for_model(default_model)
    c = lay.corner_coords
    v = np.asarray(default_model.mean_shape)[np.asarray(default_model.triangles)]
    normal_z = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 2]
    front = normal_z > 1e-6 * np.abs(normal_z).max()
    assert np.mean(_signed_areas(c)[front] > 0) > 0.999
    flipped = default_model.replace(triangles=np.asarray(default_model.triangles)[:, [0, 2, 1]])
    lay_f = uv_layout.for_model(flipped)
    np.testing.assert_array_equal(lay_f.corner_uv, lay.corner_uv[:, [0, 2, 1]])
    assert np.all(_signed_areas(lay_f.corner_coords)[front] < 0)


def test_other_models_have_no_layout(small_grid):
    with pytest.raises(uv_layout.UVLayoutError):
        uv_layout.for_model(small_grid)


def test_split_seams_gives_one_vertex_per_vertex_and_uv():
    # two triangles sharing the edge (1, 2); vertex 2 sits on a seam (two UVs)
    lay = uv_layout.UVLayout(
        uv=np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.9]], float),
        corner_uv=np.array([[0, 1, 2], [1, 3, 4]], np.int32),
        triangles=np.array([[0, 1, 2], [1, 3, 2]], np.int32),
        polygon=np.array([0, 1], np.int32))
    vertex_of, uv, tris = lay.split_seams()
    assert len(vertex_of) == 5                       # 4 vertices + 1 for the seam
    # each new triangle is the same vertices with the same UVs
    np.testing.assert_array_equal(vertex_of[tris], lay.triangles)
    np.testing.assert_allclose(uv[tris], lay.uv[lay.corner_uv])


def test_mirror_partners(default_model):
    ms = np.asarray(default_model.mean_shape)
    partner, residual = mirror.mirror_partners(ms)
    assert np.median(residual) < 1e-3                # the ICT mesh is symmetric (dm)
    assert np.mean(partner[partner] == np.arange(len(ms))) > 0.99
    lm = np.asarray(default_model.landmarks)
    for a, b in [(36, 45), (0, 16), (48, 54), (31, 35)]:   # iBUG left-right pairs
        assert np.linalg.norm(ms[partner[lm[a]]] - ms[lm[b]]) < 0.02
    np.testing.assert_allclose(ms[partner, 0], -ms[:, 0], atol=5e-3)
    # a toy: four points, two mirrored pairs
    pts = np.array([[1, 0, 0], [-1, 0, 0], [2, 1, 0], [-2, 1, 0.1]], float)
    p, r = mirror.mirror_partners(pts)
    assert p.tolist() == [1, 0, 3, 2] and r[0] == 0 and abs(r[2] - 0.1) < 1e-12
