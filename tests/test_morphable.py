import jax.numpy as jnp
import numpy as np
import trimesh

from facerecon_jax.geometry import morphable
from facerecon_jax.models import face_model


def test_shape_and_albedo_are_the_linear_model(small_grid, rng):
    m = small_grid
    a = rng.normal(size=(2, m.n_id)).astype(np.float32)
    b = rng.normal(size=(2, m.n_exp)).astype(np.float32)
    d = rng.normal(size=(2, m.n_tex)).astype(np.float32)
    s = np.asarray(morphable.shape(m.to_jax(), jnp.asarray(a), jnp.asarray(b)))
    expected = (m.mean_shape[None] + np.einsum("bk,kvc->bvc", a, m.id_basis)
                + np.einsum("bk,kvc->bvc", b, m.exp_basis))
    np.testing.assert_allclose(s, expected, atol=1e-5)
    t = np.asarray(morphable.albedo(m.to_jax(), jnp.asarray(d)))
    np.testing.assert_allclose(t, m.mean_albedo[None] + np.einsum("bk,kvc->bvc", d, m.tex_basis),
                               atol=1e-5)


def test_vertex_face_table_lists_every_face_once(rng):
    tris = rng.integers(0, 30, (80, 3))
    table = face_model.vertex_face_table(tris, 30)
    for v in range(30):
        # a face using v in two corners (degenerate) is listed twice: compare as multisets
        want = sorted(f for f in range(80) for k in range(3) if tris[f, k] == v)
        got = sorted(int(f) for f in table[v] if f != 80)
        assert got == want, v


def test_vertex_normals_of_a_sphere_are_radial():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    v = np.asarray(sphere.vertices, np.float32)
    f = np.asarray(sphere.faces, np.int32)
    table = face_model.vertex_face_table(f, len(v))
    for area in (False, True):
        n = np.asarray(morphable.vertex_normals(jnp.asarray(v), jnp.asarray(f), jnp.asarray(table),
                                                area_weighted=area))
        np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
        assert np.min(np.sum(n * v / np.linalg.norm(v, axis=1, keepdims=True), 1)) > 0.999


def test_vertex_normals_against_trimesh_and_numpy():
    mesh = trimesh.creation.cylinder(radius=1.0, height=3.0, sections=7)
    v = np.asarray(mesh.vertices, np.float32)
    f = np.asarray(mesh.faces, np.int32)
    table = jnp.asarray(face_model.vertex_face_table(f, len(v)))
    unit = np.asarray(morphable.vertex_normals(jnp.asarray(v), jnp.asarray(f), table))
    # trimesh's plain mean of unit face normals: a second implementation of the unit mode
    expected = trimesh.geometry.mean_vertex_normals(len(v), f, mesh.face_normals)
    np.testing.assert_allclose(unit, expected, atol=1e-5)
    area = np.asarray(morphable.vertex_normals(jnp.asarray(v), jnp.asarray(f), table,
                                               area_weighted=True))
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    acc = np.zeros_like(v, dtype=np.float64)
    for k in range(3):
        np.add.at(acc, f[:, k], cross)
    np.testing.assert_allclose(area, acc / np.linalg.norm(acc, axis=1, keepdims=True), atol=1e-5)


def test_normals_of_a_batch_are_each_meshs_own(rng):
    """Leading dimensions (here 2 x 3 deformed cylinders) give each mesh the normals it gets
    alone, checked against trimesh's normals of each mesh."""
    mesh = trimesh.creation.cylinder(radius=1.0, height=3.0, sections=9)
    f = np.asarray(mesh.faces, np.int32)
    v = (np.asarray(mesh.vertices, np.float32)[None, None]
         * rng.uniform(0.5, 1.5, (2, 3, 1, 3)).astype(np.float32))
    table = jnp.asarray(face_model.vertex_face_table(f, v.shape[2]))
    n = np.asarray(morphable.vertex_normals(jnp.asarray(v), jnp.asarray(f), table))
    fn = np.asarray(morphable.face_normals(jnp.asarray(v), jnp.asarray(f)))
    assert n.shape == v.shape and fn.shape == (2, 3, len(f), 3)
    for i in range(2):
        for j in range(3):
            m = trimesh.Trimesh(v[i, j], f, process=False)
            np.testing.assert_allclose(fn[i, j], m.face_normals, atol=1e-5)
            np.testing.assert_allclose(n[i, j], trimesh.geometry.mean_vertex_normals(
                len(v[i, j]), f, m.face_normals), atol=1e-5)
