"""Train R-Net without 3D ground truth.

  facerecon-train --config configs/debug.py --workdir /tmp/rnet_debug          # CPU, minutes
  facerecon-train --config configs/paper.py --config.data.dir shards/ --workdir runs/paper
  facerecon-train --config configs/tpu_pod.py --config.data.dir gs://... --workdir ... \\
      --coordinator_address host0:1234 --num_processes 16 --process_id $ID

A workdir that already holds checkpoints is resumed (parameters, optimizer state, batch
statistics, step = data position). A NaN/Inf loss or gradient stops the run with a message and
keeps the last good checkpoint. Summaries for TensorBoard are written to <workdir>/tensorboard.
The console shows the progress lines and warnings; everything else is logged to
<workdir>/train.log. A resumed run whose data settings differ from the checkpoint's says so.
"""
import os
import pathlib

from absl import flags

from facerecon_jax.io import cli

_CONFIG = cli.define_config(
    "facerecon-train", os.path.join(os.path.dirname(__file__), "..", "configs", "paper.py"),
    "Training config file; override fields with --config.name=value.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, summaries and the report go here.")
_COORD = flags.DEFINE_string("coordinator_address", None, "Multi-host: host:port of process 0.")
_NPROC = flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes.")
_PID = flags.DEFINE_integer("process_id", None, "Multi-host: this process's index.")
_MAX_STEPS = flags.DEFINE_integer("max_steps", None, "Stop after this step (testing resume).")
flags.mark_flag_as_required("workdir")

TOOL = cli.Tool("facerecon-train", __doc__, {
    "num_steps": "training steps",
    "batch_size": "images per step, over all devices and hosts",
    "learning_rate": "Adam learning rate",
    "arch": "resnet18 | resnet34 | resnet50",
    "image_size": "crop size in pixels",
    "face_model": "face model: default (ICT), a .npz, or BFM files",
    "light": "mono (9 SH coefficients, the paper's) or rgb (27)",
    "data.dir": "shards from facerecon-prepare-data",
    "data.synthetic_examples": "> 0: train on this many generated faces instead",
})


def main(argv):
    del argv
    cfg = _CONFIG.value
    if not cfg.data.synthetic_examples:
        if not cfg.data.dir:
            raise cli.UsageError("no data: set --config.data.dir (shards from "
                                 "facerecon-prepare-data) or --config.data.synthetic_examples")
        if "://" not in cfg.data.dir and not (pathlib.Path(cfg.data.dir) / "index.json").is_file():
            raise cli.UsageError(f"--config.data.dir {cfg.data.dir}: no index.json there; give a "
                                 "folder written by facerecon-prepare-data")
    workdir = cli.output_dir(_WORKDIR.value, "--workdir")
    # before JAX starts: its messages and orbax's go to the log file, not the console
    log_file = cli.log_to_file(workdir, f"train.{_PID.value}" if _PID.value else "train")
    print(f"log: {log_file}", flush=True)
    import jax

    if _COORD.value or (_NPROC.value or 1) > 1:
        jax.distributed.initialize(coordinator_address=_COORD.value,
                                   num_processes=_NPROC.value, process_id=_PID.value)
    from facerecon_jax.training import train
    return train.run_training(cfg, workdir, max_steps=_MAX_STEPS.value)


def run():
    cli.run(main, TOOL)


if __name__ == "__main__":
    run()
