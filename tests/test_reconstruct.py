"""End to end: photos in, faces out (short fits so the suite stays fast)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
import trimesh
from PIL import Image

from facerecon_jax.photo import alignment, detection
from facerecon_jax.pipeline import reconstruct


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", "launch.reconstruct", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_reconstruct_photos_and_bad_inputs(tmp_path, request):
    root = request.config.rootpath
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(skimage.data.astronaut()).save(inp / "astronaut.png")
    (inp / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg" * 20)
    Image.fromarray(np.full((120, 160, 3), 127, np.uint8)).save(inp / "blank.png")
    out = tmp_path / "out"
    res = _run(["--input", str(inp), "--output_dir", str(out), "--config.steps_landmark=80",
                "--config.steps=15", "--config.perceptual=False", "--texture_size=256"], root)
    # two of three inputs fail, each named, and the exit status says how many
    assert res.returncode == 2, res.stdout + res.stderr
    assert "corrupt.jpg" in res.stdout and "blank.png" in res.stdout
    assert "no face found" in res.stdout
    report = json.loads((out / "report.json").read_text())
    assert [f["name"] for f in report["faces"]] == ["astronaut"]
    face = report["faces"][0]
    assert face["landmark_error_nme"] < 0.08
    for suffix in (".obj", "_albedo.obj", "_coeffs.npz", "_lm68.txt", "_overlay.png",
                   "_pasted.png", "_input.jpg", "_texture.png", "_texture_weight.png",
                   "_textured.obj", "_textured.mtl", ".glb"):
        assert (out / f"astronaut{suffix}").exists(), suffix
    # the texture, redrawn with the fitted camera, matches the photo on the skin
    assert face["texture"] == "albedo" and face["texture_psnr_db"] > 25
    assert face["texture_psnr_db"] > face["render_psnr_db"]
    assert Image.open(out / "astronaut_texture.png").size == (256, 256)
    page = (out / "index.html").read_text()
    assert "astronaut_overlay.png" in page and "corrupt.jpg" in page
    assert (out / "viewer" / "three.min.js").exists() and (out / "viewer" / "data" /
                                                           "astronaut.js").exists()
    mesh = trimesh.load(out / "astronaut.obj", process=False)
    assert len(mesh.vertices) > 1000 and mesh.visual.vertex_colors.shape[1] == 4
    # fitted landmarks in original-image pixels land on the detected ones
    lm = np.loadtxt(out / "astronaut_lm68.txt")
    det = detection.FaceDetector().detect(skimage.data.astronaut())[0].landmarks68
    iod = np.linalg.norm(det[36] - det[45])
    assert np.mean(np.linalg.norm(lm - det, axis=1)) / iod < 0.08
    c = np.load(out / "astronaut_coeffs.npz")
    a = alignment.Alignment.from_array(c["trans_params"])
    np.testing.assert_allclose(alignment.crop_to_image(c["lm68_crop"], a), det, atol=1e-6)
    assert Image.open(out / "astronaut_pasted.png").size == (512, 512)


def test_landmark_file_beside_the_image_is_used(tmp_path, request):
    """Also: the same folder as input and output, run twice (issue 11, items 1-4): outputs are
    not read back as photos or landmarks, same-stem photos get distinct names, and the second
    run skips the complete faces, cleans a killed run's temporaries and keeps the report."""
    root = request.config.rootpath
    img = skimage.data.astronaut()
    det = detection.FaceDetector().detect(img)[0]
    (tmp_path / "detections").mkdir()
    Image.fromarray(img).save(tmp_path / "a.png")
    detection.write_landmark_file(tmp_path / "detections" / "a.txt", det.landmarks5)
    Image.fromarray(img).save(tmp_path / "b.png")
    Image.fromarray(img).save(tmp_path / "b.jpg")
    args = ["--input", str(tmp_path), "--output_dir", str(tmp_path),
            "--config.steps_landmark=10", "--config.steps=2", "--config.perceptual=False",
            "--texture_size=64"]
    res = _run(args, root)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    faces = {f["name"]: f for f in report["faces"]}
    assert sorted(faces) == ["a", "b_jpg", "b_png"]              # no b.obj written twice
    assert "b.jpg" in res.stdout and "b_jpg" in res.stdout
    assert faces["a"]["landmarks_from"].endswith("detections/a.txt")
    # a killed writer's temporary, and a run that must not take outputs as photos
    (tmp_path / ".a.obj.999999999.0123abcd.tmp").write_bytes(b"half")
    again = _run(args, root)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "skipped 3 input(s)" in again.stdout
    assert json.loads((tmp_path / "report.json").read_text())["faces"] == report["faces"]
    assert not list(tmp_path.glob(".*.tmp"))
    # the fitted a_lm68.txt is an output: never the landmarks of a.png
    (tmp_path / "detections" / "a.txt").unlink()
    src = list(reconstruct.iter_sources([str(tmp_path)]))
    assert sorted(s.name for s in src) == ["a", "b", "b"]
    assert [s.landmark_file for s in src if s.name == "a"] == [None]


def test_checkpoint_prediction_starts_the_fit(tmp_path, request):
    """A planted R-Net checkpoint (zero weights, a known head bias) predicts the same vector for
    every image; in --mode rnet (no fitting) that vector is what reconstruct writes."""
    import jax
    import jax.numpy as jnp
    import optax

    from facerecon_jax.models import ict_model
    from facerecon_jax.training import rnet, train
    from facerecon_jax.geometry.coefficients import CoeffLayout

    layout = CoeffLayout.for_model(ict_model.load_default(), "mono")
    net = rnet.make_rnet("resnet18", layout.size, width=4)
    state = train.create_train_state(jax.random.PRNGKey(0), net, 32, optax.adam(1e-3))
    bias = np.zeros(layout.size, np.float32)
    bias[layout.slices()["angles"]] = [0.1, -0.2, 0.05]
    bias[layout.slices()["id"].start] = 0.7
    params = dict(state.params)
    params["head"] = {"kernel": params["head"]["kernel"], "bias": jnp.asarray(bias)}
    state = state.replace(params=params)
    mngr = train.checkpoint_manager(tmp_path / "rnet")
    train.save_checkpoint(mngr, state, {"arch": "resnet18", "width": 4, "image_size": 32,
                                        "num_outputs": layout.size, "light": "mono", "step": 0})
    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "a.png")
    root = request.config.rootpath
    # batch inference (--mode rnet): the prediction is the result, every stage's speed said,
    # no fitting stage and (--texture none) no texture files
    rn = _run(["--input", str(tmp_path / "a.png"), "--output_dir", str(tmp_path / "rn"),
               "--checkpoint", str(tmp_path / "rnet"), "--mode", "rnet", "--texture", "none"],
              root)
    assert rn.returncode == 0, rn.stdout + rn.stderr
    c = np.load(tmp_path / "rn" / "a_coeffs.npz")
    np.testing.assert_allclose(c["coeffs"], bias, atol=1e-6)
    assert c["gamma"].shape == (9,)
    stages = rn.stdout.split("speed per stage: ")[1].splitlines()[0]
    assert [s.split()[0] for s in stages.split(", ")] == ["read", "detect", "align", "rnet",
                                                          "write"], stages
    assert not (tmp_path / "rn" / "a_texture.png").exists()
    # --rnet_mirror: the network's reading of the photo averaged with its reading of the flipped
    # photo mirrored back; this network reads every picture as the same head turned (yaw -0.2,
    # roll 0.05), whose mirror image is turned the other way: the average faces the camera
    mi = _run(["--input", str(tmp_path / "a.png"), "--output_dir", str(tmp_path / "mi"),
               "--checkpoint", str(tmp_path / "rnet"), "--mode", "rnet", "--texture", "none",
               "--rnet_mirror"], root)
    assert mi.returncode == 0, mi.stdout + mi.stderr
    cm = np.load(tmp_path / "mi" / "a_coeffs.npz")["coeffs"]
    np.testing.assert_allclose(cm[layout.slices()["angles"]], [0.1, 0.0, 0.0], atol=1e-6)
    assert abs(cm[layout.slices()["id"].start] - 0.7) < 0.01   # the first mode is symmetric
    # --mode refine: the prediction refined (the head turns to the photo; identity moves)
    ref = _run(["--input", str(tmp_path / "a.png"), "--output_dir", str(tmp_path / "ref"),
                "--checkpoint", str(tmp_path / "rnet"), "--mode", "refine", "--texture", "none",
                "--config.refine_steps_landmark=5", "--config.refine_steps=0"], root)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    r = np.load(tmp_path / "ref" / "a_coeffs.npz")["coeffs"]
    assert np.abs(r - bias).max() > 1e-3
    stages = ref.stdout.split("speed per stage: ")[1].splitlines()[0]
    assert [s.split()[0] for s in stages.split(", ")] == ["read", "detect", "align", "rnet",
                                                          "fit", "write"], stages
    # a mode that needs a network, without one: refused before anything is written
    bad = _run(["--input", str(tmp_path / "a.png"), "--output_dir", str(tmp_path / "bad"),
                "--mode", "rnet"], root)
    assert bad.returncode != 0 and "--checkpoint" in bad.stderr
    assert not (tmp_path / "bad").exists()
    bad = _run(["--input", str(tmp_path / "a.png"), "--output_dir", str(tmp_path / "bad"),
                "--rnet_mirror"], root)
    assert bad.returncode != 0 and "--checkpoint" in bad.stderr
    assert not (tmp_path / "bad").exists()
    # a network trained for another face model: the job's own error, with or without the
    # mirror (its checkpoint's record is read before any parameters)
    from facerecon_jax.io import config_files
    from facerecon_jax.models import face_model, grid_model
    from facerecon_jax.pipeline import reconstruct_job
    cfg = config_files.packaged("reconstruct")
    cfg.model = str(face_model.save(grid_model.grid_model(12, n_id=5, n_exp=3, n_tex=3),
                                    tmp_path / "grid.npz"))
    for mirror in (False, True):
        with pytest.raises(reconstruct_job.CheckpointMismatchError,
                           match=f"predicts {layout.size} coefficients"):
            reconstruct_job.run([str(tmp_path / "a.png")], tmp_path / f"other{mirror}", cfg,
                                reconstruct_job.Options(checkpoint=str(tmp_path / "rnet"),
                                                        mode="rnet", rnet_mirror=mirror,
                                                        texture=None), say=lambda m: None)
