"""Batch inference speed: `facerecon-reconstruct --mode rnet` against the fitting modes.

  python benchmarks/batch_inference.py                       # 32 photos, the paper's R-Net
  python benchmarks/batch_inference.py --checkpoint RUN      # a trained network instead

A folder of `--photos` pictures made from the two example photos (`reconstruct.py`'s
augmented_photos) goes through `reconstruct_job.run` three times, in one process, after a
warm-up on one batch of each mode (so every compiled program exists before the clock runs):
--mode rnet (detection, alignment, one jitted R-Net forward per batch), --mode refine (the
prediction + the config's refine steps) and --mode fit (the config's full fitting from the
network's prediction); a mode written with "+mirror" (e.g. `--modes rnet,rnet+mirror`) runs
with --rnet_mirror (each crop read together with its flipped copy). Textures are off
(--texture none) so the rows compare the stages that differ. Without --checkpoint an
untrained network of `--arch` at `--size` px is saved to a temporary folder: its speed is a
trained one's (with --checkpoint, the rows name that network's own architecture and size).
Prints images/s per stage and mode, the end-to-end images/s and each mode's time over rnet's;
the last line is JSON.
"""
import argparse
import json
import pathlib
import sys
import tempfile
import time

import jax
import optax
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from reconstruct import augmented_photos  # noqa: E402  (benchmarks/reconstruct.py)

from facerecon_jax.geometry.coefficients import CoeffLayout  # noqa: E402
from facerecon_jax.io import config_files  # noqa: E402
from facerecon_jax.models.model_loading import load_face_model  # noqa: E402
from facerecon_jax.pipeline import reconstruct_job  # noqa: E402
from facerecon_jax.training import rnet, train  # noqa: E402


def untrained_checkpoint(folder: pathlib.Path, arch: str, size: int, light: str) -> str:
    layout = CoeffLayout.for_model(load_face_model("default"), light)
    net = rnet.make_rnet(arch, layout.size)
    state = train.create_train_state(jax.random.PRNGKey(0), net, size, optax.adam(1e-4))
    train.save_checkpoint(train.checkpoint_manager(folder), state,
                          {"arch": arch, "width": 64, "image_size": size, "light": light,
                           "num_outputs": layout.size, "step": 0})
    return str(folder)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--modes", default="rnet,refine,fit")
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="facerecon-batch-inference-"))
    cfg = config_files.packaged("reconstruct")
    cfg.batch_size = args.batch
    ckpt = args.checkpoint or untrained_checkpoint(tmp / "rnet", args.arch, args.size, cfg.light)
    meta = train.checkpoint_meta(ckpt)        # the network the rows measure, as saved
    print(f"network: {meta['arch']} ({meta.get('stem', 'imagenet')} stem) at "
          f"{meta['image_size']} px, {ckpt}", flush=True)
    photos = tmp / "photos"
    photos.mkdir()
    for name, img in augmented_photos(args.photos):
        Image.fromarray(img).save(photos / f"{name}.png")
    warm = tmp / "warm"
    warm.mkdir()
    for p in sorted(photos.iterdir())[:args.batch]:
        (warm / p.name).write_bytes(p.read_bytes())
    rows = {}
    for mode in args.modes.split(","):
        opts = reconstruct_job.Options(checkpoint=ckpt, mode=mode.removesuffix("+mirror"),
                                       rnet_mirror=mode.endswith("+mirror"), texture=None)
        reconstruct_job.run([str(warm)], tmp / f"warm_{mode}", cfg, opts, say=lambda m: None)
        t0 = time.perf_counter()
        res = reconstruct_job.run([str(photos)], tmp / f"out_{mode}", cfg, opts,
                                  say=lambda m: None)
        total = time.perf_counter() - t0
        faces = len(res["results"])
        rows[mode] = {"faces": faces, "seconds": total, "images_per_second": faces / total,
                      "stages": res["stages"].as_dict()}
        print(f"{mode}: {faces} faces in {total:.1f} s = {faces / total:.2f} images/s | "
              f"{res['stages'].summary()}", flush=True)
    if "rnet" in rows:
        for mode, r in rows.items():
            print(f"{mode}: {r['seconds'] / rows['rnet']['seconds']:.1f}x the time of rnet")
    print(json.dumps({"photos": args.photos, "batch": args.batch, "checkpoint": args.checkpoint,
                      "arch": meta["arch"], "stem": meta.get("stem", "imagenet"),
                      "size": int(meta["image_size"]),
                      "refine_steps": [cfg.refine_steps_landmark, cfg.refine_steps],
                      "fit_steps": [cfg.steps_landmark, cfg.steps], "modes": rows}))


if __name__ == "__main__":
    main()
