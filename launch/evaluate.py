"""Reproduce the paper's Tables 1 and 2 on rendered heads whose true shape we know.

  facerecon-evaluate --workdir eval/                               # ~30 min on 2 CPU cores
  facerecon-evaluate --workdir eval/ --config.n_people 4 --config.images_per_person 2  # quick
  facerecon-evaluate --workdir eval/ --config.checkpoint runs/rnet   # adds the R-Net row

Writes <workdir>/report.md (Table 1: single image, Table 2: multi-image, with the mean-face,
true-landmark and model-floor rows), results.json, cumulative_error.png, error_heatmap.png, and
the benchmark itself (<workdir>/benchmark/<condition>/*.png, scans/person<k>.ply) so meshes from
other tools can be scored (--config.external_meshes). With --config.ablation_people N, the
ablation table of configs/evaluate.py's variants on N of the people.
"""
import json
import os
import sys

from absl import flags

from facerecon_jax.io import cli

_CONFIG = cli.define_config(
    "facerecon-evaluate", os.path.join(os.path.dirname(__file__), "..", "configs", "evaluate.py"),
    "Evaluation config (configs/evaluate.py).")
_WORKDIR = flags.DEFINE_string("workdir", "eval", "Where the report and plots go.")

TOOL = cli.Tool("facerecon-evaluate", __doc__, {
    "n_people": "people per condition",
    "images_per_person": "photos of each person",
    "checkpoint": "an R-Net workdir: adds its row",
    "fit.steps": "fitting steps (hybrid stage) per photo",
    "fit.model": "face model of the fits",
})


def main(argv):
    del argv
    from facerecon_jax.eval import evaluation, evaluation_report
    from facerecon_jax.io import export, progress
    from facerecon_jax.models.model_loading import load_face_model

    cfg = _CONFIG.value
    wd = cli.output_dir(_WORKDIR.value, "--workdir")
    n_cond = len(cfg.conditions)
    j = cfg.images_per_person
    oracle = min(cfg.oracle_images, j) if cfg.oracle_images > 0 else j
    per_cond = cfg.n_people * (j + oracle + (j if cfg.joint_per_condition else 0)
                               + (2 * j if cfg.checkpoint else 0))   # R-Net's two short fits
    bar = progress.Progress(n_cond * per_cond + (n_cond * cfg.n_people * j if n_cond > 1 else 0),
                            unit="fit")

    def log(msg):
        sys.stderr.write("\n" + msg + "\n")
    res = evaluation.run_benchmark(cfg, wd, log=log, progress=bar.update)
    bar.close()
    export.write_text(wd / "results_benchmark.json", json.dumps(res))   # before the ablation
    ablation = evaluation.run_ablation(cfg, log=log) if cfg.ablation_people else None
    report = evaluation_report.write_report(res, cfg, wd, load_face_model(cfg.fit.model),
                                            " ".join(["facerecon-evaluate"] + sys.argv[1:]),
                                            ablation)
    print(report.read_text())
    return 0


def run():
    cli.run(main, TOOL)


if __name__ == "__main__":
    run()
