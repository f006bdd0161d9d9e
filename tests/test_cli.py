"""The console scripts as a person meets them (issue 11, items 5, 7, 8, 9, 11): --help exits 0
and shows the tool's flags, config keys and an example; mistakes are one line naming the thing,
a non-zero exit and no traceback; aggregate skips a corrupt coefficient file and counts it."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from facerecon_jax.geometry import coefficients
from facerecon_jax.io import export
from facerecon_jax.models import grid_model

TOOLS = {   # module: (console script, own flags, config keys that matter)
    "reconstruct": ("facerecon-reconstruct", ["--input", "--output_dir", "--overwrite",
                                              "--faces", "--texture"],
                    ["--config.steps", "--config.batch_size", "--config.model",
                     "--config.light"]),
    "aggregate": ("facerecon-aggregate", ["--input", "--output_dir", "--mode"], []),
    "train": ("facerecon-train", ["--workdir", "--config"],
              ["--config.num_steps", "--config.batch_size", "--config.face_model",
               "--config.light"]),
    "render": ("facerecon-render", ["--output_dir", "--coeffs", "--random"], ["--config.light"]),
    "prepare_data": ("facerecon-prepare-data", ["--input", "--output_dir", "--synthetic"], []),
    "evaluate": ("facerecon-evaluate", ["--workdir"], ["--config.n_people"]),
    "example_photos": ("facerecon-example-photos", ["--output_dir"], []),
}


def _run(module, args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", f"launch.{module}", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("module", sorted(TOOLS))
def test_help_shows_the_tools_own_flags_and_exits_0(module, request):
    name, own, keys = TOOLS[module]
    res = _run(module, ["--help"], request.config.rootpath)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert f"{name} --" in out or f"launch.{module} --" in out          # an example command
    for flag in own + keys:
        assert f"  {flag}:" in out, flag
    assert "--helpfull" in out
    for absl_flag in ("--logtostderr", "--verbosity", "--only_check_args"):
        assert absl_flag not in out


def _one_line_error(res, *needles):
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_config_typos_missing_files_and_folders_are_one_line(tmp_path, request):
    root = request.config.rootpath
    wd = tmp_path / "work"
    res = _run("train", ["--config", "configs/debug.py", "--config.steps=5", "--workdir",
                         str(wd)], root)
    _one_line_error(res, "unknown config key 'steps'", "did you mean 'num_steps'?")
    res = _run("train", ["--config", str(tmp_path / "nope.py"), "--workdir", str(wd)], root)
    _one_line_error(res, "nope.py", "no such config file")
    res = _run("train", ["--config", "configs", "--workdir", str(wd)], root)
    _one_line_error(res, "is a folder", "config")
    # no data configured: stopped before anything is created
    res = _run("train", ["--workdir", str(wd)], root)
    _one_line_error(res, "--config.data.dir")
    assert not wd.exists()
    res = _run("render", ["--coeffs", str(tmp_path), "--output_dir", str(wd)], root)
    _one_line_error(res, "--coeffs", "is a folder", "_coeffs.npz")
    assert not wd.exists()
    res = _run("reconstruct", ["--input", str(tmp_path / "missing.jpg"), "--output_dir",
                               str(wd)], root)
    _one_line_error(res, "missing.jpg", "no such file")
    assert not wd.exists()
    # --debug shows the traceback instead
    res = _run("reconstruct", ["--input", str(tmp_path / "missing.jpg"), "--output_dir",
                               str(wd), "--debug"], root)
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_unwritable_output_dir_is_found_before_any_work(tmp_path, request):
    afile = tmp_path / "a_file"
    afile.write_text("x")
    (tmp_path / "in").mkdir()
    for out in (afile, afile / "sub"):
        res = _run("reconstruct", ["--input", str(tmp_path / "in"), "--output_dir", str(out)],
                   request.config.rootpath, timeout=60)
        _one_line_error(res, "--output_dir", str(out), "file")


def test_aggregate_skips_a_corrupt_coefficient_file(tmp_path, request):
    layout = coefficients.CoeffLayout(n_id=4, n_exp=3, n_tex=3, light="mono")
    rng = np.random.default_rng(0)
    person = tmp_path / "in" / "alice"
    person.mkdir(parents=True)
    for k in range(3):
        export.save_coefficients(person / f"img{k}_coeffs.npz", {
            f: np.asarray(v[0]) for f, v in layout.split(
                rng.normal(size=(1, layout.size)).astype(np.float32)).items()})
    (person / "broken_coeffs.npz").write_bytes(b"PK\x03\x04 truncated")
    model = tmp_path / "grid.npz"
    from facerecon_jax.models import face_model
    face_model.save(grid_model.grid_model(8, n_id=4, n_exp=3, n_tex=3), model)
    out = tmp_path / "out"
    res = _run("aggregate", ["--input", str(tmp_path / "in"), "--output_dir", str(out),
                             "--mode", "mean", "--model", str(model)], request.config.rootpath)
    assert res.returncode == 1, res.stdout + res.stderr            # one file skipped
    assert "Traceback" not in res.stderr
    assert "broken_coeffs.npz" in res.stderr and "BadZipFile" in res.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["people"][0]["members"] == ["img0", "img1", "img2"]
    assert report["skipped_files"][0]["file"].endswith("broken_coeffs.npz")


def test_log_file_takes_info_console_keeps_warnings(tmp_path, request):
    script = textwrap.dedent("""
        import logging as std_logging, sys
        from absl import app, logging
        from facerecon_jax.io import cli
        def main(argv):
            cli.log_to_file(sys.argv[1], "train")
            logging.info("orbax: saved checkpoint 5")
            std_logging.getLogger("jax._src.xla_bridge").info("Unable to initialize 'tpu'")
            logging.warning("learning rate is very high")
            print("step 5/5 loss=0.1")
        app.run(main, argv=sys.argv[:1])
        """)
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                         text=True, timeout=120, cwd=request.config.rootpath, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "step 5/5 loss=0.1"
    assert "learning rate is very high" in res.stderr
    assert "orbax" not in res.stderr and "tpu" not in res.stderr
    text = (tmp_path / "train.log").read_text()
    assert "orbax: saved checkpoint 5" in text and "'tpu'" in text
