"""The output folder of facerecon-reconstruct (issue 11, items 1-5): outputs are never inputs,
one report record per face, distinct names, skipping what is complete, checks before work."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from facerecon_jax.io import output_folder
from facerecon_jax.pipeline import reconstruct, reconstruct_job
from facerecon_jax.pipeline.reconstruct import Source


def _png(path, value=100):
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


def _face_outputs(folder, name, source, fitted_header=True):
    files = []
    for suffix in output_folder.FACE_SUFFIXES:
        p = folder / f"{name}{suffix}"
        if suffix.endswith((".png", ".jpg")):
            _png(p)
        elif suffix == "_lm68.txt":
            head = output_folder.FITTED_HEADER + "\n" if fitted_header else ""
            p.write_text(head + "1 2\n" * 68)
        else:
            p.write_bytes(b"x")
        files.append(str(p))
    return {"name": name, "source": str(source), "files": files, "landmarks_from": "hog"}


def test_outputs_and_fitted_landmarks_are_never_inputs(tmp_path):
    _png(tmp_path / "x.png")
    _png(tmp_path / "y.png")
    (tmp_path / "y_lm68.txt").write_text("3 4\n" * 68)              # given by the user
    face = _face_outputs(tmp_path, "x", tmp_path / "x.png")
    _png(tmp_path / "z.png")                                         # an old run's fitted lm68
    (tmp_path / "z_lm68.txt").write_text("1 2\n" * 68)               # (no header) beside its
    (tmp_path / "z_coeffs.npz").write_bytes(b"x")                    # coefficients
    _png(tmp_path / "w_pasted.png")                                  # listed in the manifest
    face["files"].append(str(tmp_path / "w_pasted.png"))
    output_folder.write_report(tmp_path, {"faces": [face], "failed": []})
    ignored = []
    sources = {s.name: s for s in reconstruct.iter_sources([str(tmp_path)], ignored=ignored)}
    assert sorted(sources) == ["x", "y", "z"]
    assert sources["x"].landmark_file is None           # its fitted x_lm68.txt is not a source
    assert sources["z"].landmark_file is None
    assert sources["y"].landmark_file == tmp_path / "y_lm68.txt"
    assert sorted(os.path.basename(p) for p in ignored) == sorted(
        ["x_overlay.png", "x_pasted.png", "x_input.jpg", "x_texture.png",
         "x_texture_weight.png", "w_pasted.png"])


def test_report_keeps_one_record_per_face_across_runs(tmp_path):
    a = {"name": "a", "source": str(tmp_path / "a.png"), "files": []}
    b = {"name": "b", "source": str(tmp_path / "b.png"), "files": []}
    r1 = output_folder.merge_report({"faces": [], "failed": []}, [a], [], [a["source"]])
    r2 = output_folder.merge_report(r1, [b], [], [b["source"]])
    assert [f["name"] for f in r2["faces"]] == ["a", "b"]
    # a later run in which a's photo fails keeps its face, and lists the failure
    r3 = output_folder.merge_report(r2, [], [{"source": a["source"], "error": "corrupt"}],
                                    [a["source"]])
    assert [f["name"] for f in r3["faces"]] == ["a", "b"] and len(r3["failed"]) == 1
    a2 = dict(a, landmark_error_nme=0.01)
    r4 = output_folder.merge_report(r3, [a2], [], [a["source"]])
    assert r4["faces"][0] == a2 and r4["failed"] == []
    output_folder.write_report(tmp_path, r4)
    assert output_folder.read_report(tmp_path) == r4
    assert not list(tmp_path.glob(".*.tmp"))


def test_same_stem_inputs_get_distinct_names(tmp_path):
    said = []
    srcs = [Source("x", str(tmp_path / "x.jpg"), None), Source("x", str(tmp_path / "x.png"), None),
            Source("y", str(tmp_path / "a" / "y.jpg"), None),
            Source("y", str(tmp_path / "b" / "y.jpg"), None)]
    output_folder.assign_names(srcs, say=said.append)
    names = [s.name for s in srcs]
    assert len(set(names)) == 4 and names[:2] == ["x_jpg", "x_png"]
    assert len(said) == 2 and "x.jpg" in said[0] and "x.png" in said[0]
    # a name that belongs to another input's face in the folder is not reused
    again = [Source("y", str(tmp_path / "c" / "y.jpg"), None)]
    output_folder.assign_names(again, {"y": output_folder.source_key(srcs[2].path)})
    assert again[0].name != "y"


def _config():
    from configs import reconstruct as cfg
    return cfg.get_config()


def test_complete_faces_are_skipped_stale_temporaries_removed(tmp_path, monkeypatch):
    for n in ("a", "b"):
        _png(tmp_path / f"{n}.png", 50)
    faces = [_face_outputs(tmp_path, n, tmp_path / f"{n}.png") for n in ("a", "b")]
    os.remove(faces[1]["files"][0])                       # b is incomplete: redone
    output_folder.write_report(tmp_path, {"faces": faces, "failed": []})
    stale = tmp_path / ".a.obj.999999999.0123abcd.tmp"
    stale.write_bytes(b"half")
    fitted = []
    monkeypatch.setattr(reconstruct_job, "_fit_all",
                        lambda sources, *a, **k: fitted.extend(s.name for s in sources))
    said = []
    res = reconstruct_job.run([str(tmp_path)], tmp_path, _config(), say=said.append)
    assert fitted == ["b"] and [os.path.basename(p) for p in res["skipped"]] == ["a.png"]
    assert any("skipped 1 input" in m and "--overwrite" in m for m in said)
    assert not stale.exists()
    report = json.loads((tmp_path / "report.json").read_text())
    assert [f["name"] for f in report["faces"]] == ["a", "b"]     # kept, not replaced
    fitted.clear()
    reconstruct_job.run([str(tmp_path)], tmp_path, _config(),
                        reconstruct_job.Options(overwrite=True), say=said.append)
    assert fitted == ["a", "b"]


def test_output_dir_and_inputs_checked_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(reconstruct_job, "_fit_all", lambda *a, **k: pytest.fail("worked"))
    _png(tmp_path / "a.png")
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    for bad in (afile, afile / "sub"):
        with pytest.raises(output_folder.OutputFolderError, match="f.txt"):
            reconstruct_job.run([str(tmp_path)], bad, _config())
    with pytest.raises(reconstruct.InputError, match="nope.jpg"):
        reconstruct_job.run([str(tmp_path / "nope.jpg")], tmp_path / "out", _config())
    assert not (tmp_path / "out").exists()


def test_one_loop_batches_faces_saves_after_each_batch_and_uses_the_configured_map(
        tmp_path, monkeypatch):
    """facerecon-reconstruct runs `reconstruct.reconstruct_sources` (the loop aggregate uses
    too): faces fitted in batches of the config's size, the report written after every batch,
    the configured landmark embedding passed to the fit, a face-less photo named and skipped."""
    for n in ("a", "b", "c", "d"):
        _png(tmp_path / f"{n}.png", 50)
    calls, saved = [], []

    def prepare(src, model, detector, faces="largest", times=None):
        if src.name == "c":
            raise reconstruct.detection.NoFaceError(f"no face found in {src.path}")
        return [reconstruct.PreparedFace(src.name, src.path, *([None] * 6), "given")]

    def fit_faces(model, layout, faces, cfg, embed, **kw):
        calls.append(([f.name for f in faces], kw["landmark_map"], kw["batch_size"]))
        return np.zeros((len(faces), layout.size), np.float32), {}

    def write_outputs(folder, face, *a):
        return {"name": face.name, "source": face.path, "files": []}

    real_save = reconstruct_job._save

    def save(out, old, results, failures):
        saved.append([r["name"] for r in results])
        return real_save(out, old, results, failures)

    monkeypatch.setattr(reconstruct, "prepare", prepare)
    monkeypatch.setattr(reconstruct, "fit_faces", fit_faces)
    monkeypatch.setattr(reconstruct, "write_outputs", write_outputs)
    monkeypatch.setattr(reconstruct_job, "_save", save)
    monkeypatch.setattr(reconstruct_job.results_page, "write_reconstruct_page", lambda *a: None)
    cfg = _config()
    cfg.batch_size = 2
    cfg.landmark_map = "learned"
    out = tmp_path / "out"
    res = reconstruct_job.run([str(tmp_path)], out, cfg, detector=object(), say=lambda m: None)
    assert [c[0] for c in calls] == [["a", "b"], ["d"]] and all(c[2] == 2 for c in calls)
    assert all(c[1] is not None for c in calls)        # the learned embedding, not None
    assert saved[:2] == [["a", "b"], ["a", "b", "d"]]   # after each batch, then at the end
    assert [f["source"] for f in res["failures"]] == [str(tmp_path / "c.png")]
    assert res["status"] == 1
    calls.clear()
    cfg.landmark_map = "model"
    reconstruct_job.run([str(tmp_path)], tmp_path / "out2", cfg, detector=object(),
                        say=lambda m: None)
    assert calls and all(c[1] is None for c in calls)
