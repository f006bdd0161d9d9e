import numpy as np
import trimesh
from PIL import Image

from facerecon_jax.io import export


def test_meshes_round_trip_with_colours(small_grid, tmp_path):
    v, f = small_grid.mean_shape, small_grid.triangles
    colours = np.clip(small_grid.mean_albedo + 0.3, 0, 1.2)        # some > 1: clipped on export
    for suffix in ("obj", "ply"):
        path = export.save_mesh(tmp_path / f"face.{suffix}", v, f, colours)
        mesh = trimesh.load(path, process=False)
        np.testing.assert_allclose(mesh.vertices, v, atol=1e-5)
        np.testing.assert_array_equal(mesh.faces, f)
        got = mesh.visual.vertex_colors[:, :3].astype(float) / 255
        np.testing.assert_allclose(got, np.clip(colours, 0, 1), atol=1 / 255 + 1e-6)


def test_coefficients_and_png(tmp_path):
    parts = {"id": np.arange(3.0), "trans": np.ones(3)}
    path = export.save_coefficients(tmp_path / "c.npz", parts, transform=np.array([1.0, 2.0]))
    back = export.load_coefficients(path)
    np.testing.assert_array_equal(back["id"], parts["id"])
    np.testing.assert_array_equal(back["transform"], [1.0, 2.0])
    img = np.zeros((5, 7, 3))
    img[1, 2] = [1.5, 0.5, -1]
    p = export.save_png(tmp_path / "r.png", img)
    back = np.asarray(Image.open(p))
    assert back.shape == (5, 7, 3)
    np.testing.assert_array_equal(back[1, 2], [255, 128, 0])
