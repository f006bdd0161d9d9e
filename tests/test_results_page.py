"""The results page in real headless Chromium, opened from file:// with no network: the viewer
renders the face (textured, then shape-only), follows the mouse, switches faces, and the
console stays clean. A broken page must be caught by the same checks."""
import os
import pathlib
import shutil
import time

import jax.numpy as jnp
import numpy as np
import pytest

from facerecon_jax.io import browser, export
from facerecon_jax.models import uv_layout
from facerecon_jax.pipeline import results_page, textured_face
from facerecon_jax.render import renderer
from facerecon_jax.geometry.coefficients import CoeffLayout

STATE = ("document.body && ['rendered', 'error'].includes(document.body.dataset.viewer) "
         "&& document.body.dataset.viewer")
FRAME = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


def _checker(size, a, b, squares=8):
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    on = ((i * squares // size) + (j * squares // size)) % 2 == 0
    return np.where(on[..., None], np.array(a, np.uint8), np.array(b, np.uint8))


@pytest.fixture(scope="module")
def page_dir(default_model, tmp_path_factory):
    """A small reconstruct folder: two mean faces with checkerboard textures, written by our
    own writers, and its index.html."""
    out = tmp_path_factory.mktemp("results")
    model = default_model
    lay = uv_layout.for_model(model)
    layout = CoeffLayout.for_model(model, "rgb")
    parts = layout.split(jnp.zeros((1, layout.size)))
    verts = renderer.face_vertices(model.to_jax(), parts, renderer.RenderConfig().camera)
    posed, normals = np.asarray(verts["posed"][0]), np.asarray(verts["normals"][0])
    faces = []
    for name, colours in (("alpha", ((220, 40, 40), (40, 40, 220))),
                          ("beta", ((40, 200, 40), (230, 230, 230)))):
        textured_face.write_textured_meshes(str(out / name), lay, posed, normals,
                                            _checker(256, *colours))
        results_page.save_input_image(out / f"{name}_input.jpg",
                                      np.full((60, 80, 3), 128, np.uint8))
        export.save_png(out / f"{name}_overlay.png", np.full((40, 120, 3), 0.5))
        export.save_png(out / f"{name}_pasted.png", np.full((60, 80, 3), 0.5))
        faces.append({"name": name, "landmark_error_nme": 0.03, "texture": "albedo",
                      "texture_psnr_db": 30.0, "render_psnr_db": 20.0})
    results_page.write_reconstruct_page(out, {"faces": faces, "failed": [
        {"source": "blank.png", "error": "no face found"}]})
    return out


def _box(b, selector, save_as=None):
    b.scroll_into_view(selector)
    b.evaluate(FRAME)
    x, y, w, h = b.element_box(selector)
    img = b.screenshot()
    if save_as and os.environ.get("FACERECON_SCREENSHOTS"):     # to look at them
        from PIL import Image
        folder = pathlib.Path(os.environ["FACERECON_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{save_as}.png")
    return img[int(y) + 1:int(y + h) - 1, int(x) + 1:int(x + w) - 1].astype(np.float64)


def _face_pixels(box):
    bg = np.median(box[:4].reshape(-1, 3), axis=0)          # the top rows are background
    return np.abs(box - bg).sum(axis=-1) > 30


def _chroma(pixels):
    return (pixels.max(axis=-1) - pixels.min(axis=-1)).mean()


def test_viewer_shows_the_face(page_dir):
    html = (page_dir / "index.html").read_text()
    assert "http://" not in html and "https://" not in html         # nothing from the network
    with browser.Chromium(1280, 900) as b:
        b.open(page_dir / "index.html")
        assert b.wait_for(STATE, timeout=60) == "rendered", b.errors
        assert b.errors == []
        assert b.evaluate("document.body.dataset.viewerFace") == "alpha"
        # textured: the face fills the middle of the view, in the checkerboard's colours
        box = _box(b, "#viewer-alpha", "textured")
        face = _face_pixels(box)
        h, w = face.shape
        assert 0.15 < face.mean() < 0.9
        assert face[h // 3:2 * h // 3, w // 3:2 * w // 3].mean() > 0.8
        assert _chroma(box[face]) > 60
        # shape only: grey, and the shading varies over the face
        b.evaluate("document.querySelector('.viewer-modes button[data-mode=shape]').click()")
        b.wait_for("document.body.dataset.viewerMode === 'shape' && "
                   "document.body.dataset.viewer === 'rendered'", timeout=30)
        shape = _box(b, "#viewer-alpha", "shape")
        sface = _face_pixels(shape)
        assert abs(sface.mean() - face.mean()) < 0.05
        assert _chroma(shape[sface]) < 15
        assert shape[sface].mean(axis=-1).std() > 8
        # drag to rotate: the view changes; wheel to zoom in: the face grows
        x, y, bw, bh = b.element_box("#viewer-alpha canvas")
        b.drag(x + bw / 2, y + bh / 2, x + bw / 2 + 60, y + bh / 2)
        b.evaluate(FRAME)
        turned = _box(b, "#viewer-alpha", "turned")
        assert np.abs(turned - shape).mean() > 5
        for _ in range(3):
            b.wheel(x + bw / 2, y + bh / 2, -200)
        b.evaluate(FRAME)
        zoomed = _face_pixels(_box(b, "#viewer-alpha", "zoomed")).mean()
        assert zoomed > _face_pixels(turned).mean() + 0.05
        # the other face, textured again
        b.evaluate("document.querySelector('.viewer-modes button[data-mode=textured]').click()")
        b.evaluate("document.querySelector('[data-show=beta]').click()")
        b.wait_for("document.body.dataset.viewerFace === 'beta' && "
                   "document.body.dataset.viewer === 'rendered'", timeout=30)
        beta = _box(b, "#viewer-beta", "beta")
        bface = _face_pixels(beta)
        assert bface.mean() > 0.15
        g = beta[bface]
        assert np.mean((g[:, 1] > g[:, 0] + 40) & (g[:, 1] > g[:, 2] + 40)) > 0.2   # green
        assert b.errors == []
        assert "Failed inputs" in b.evaluate("document.body.innerText")


@pytest.mark.parametrize("breakage", ["missing_library", "bad_model_data", "script_error"])
def test_a_broken_viewer_is_caught(page_dir, tmp_path, breakage):
    """The checks above must fail on a broken page: the viewer reports an error (or never says
    it rendered) and the console shows it."""
    page = tmp_path / "page"
    shutil.copytree(page_dir, page)
    if breakage == "missing_library":
        (page / "viewer" / "three.min.js").unlink()
    elif breakage == "bad_model_data":
        (page / "viewer" / "data" / "alpha.js").write_text(
            'FaceReconViewer.register("alpha", "Z2xURgIAAAA=");\n')      # a glb header only
    else:
        js = page / "viewer" / "results_viewer.js"
        js.write_text(js.read_text().replace("function draw() {", "function draw() {{"))
    with browser.Chromium(800, 600) as b:
        b.open(page / "index.html")
        deadline, state = time.monotonic() + 10, None
        while time.monotonic() < deadline and not b.errors and not state:
            state = b.evaluate(STATE)
            time.sleep(0.05)
        assert b.errors, f"the console showed no error (viewer state {state!r})"
        assert state != "rendered"
