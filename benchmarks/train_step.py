"""Speed of the full R-Net train step (network + renderer + losses), images per second.

  python benchmarks/train_step.py                  # ResNet-18 and ResNet-50, 224 px, batch 8
  python benchmarks/train_step.py --archs resnet18 --batch 4
  python benchmarks/train_step.py --archs resnet18 --width 32 --size 96 --batch 16 \
      --stems imagenet,patch --no_perceptual        # configs/identity.py's network and step

The time is also split into its parts, each timed alone (forward + backward): the network (a
dummy loss on its output), the renderer with the photometric and landmark terms (gradient w.r.t.
the coefficients), and the perceptual term (face-embedding network on the chips). The parts do
not add up exactly to the whole (XLA fuses across them). The last line is one JSON object.
"""
import argparse
import dataclasses
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import optax

from timing import median_seconds
from facerecon_jax.fit import losses
from facerecon_jax.io import config_files
from facerecon_jax.models import ict_model
from facerecon_jax.photo import face_embedding
from facerecon_jax.training import synthetic, train
from facerecon_jax.geometry.coefficients import CoeffLayout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", default="resnet18,resnet50")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--width", type=int, default=64, help="base filters (32: the debug network)")
    ap.add_argument("--stems", default="imagenet",
                    help="comma-separated R-Net stems (rnet.STEMS), each timed in this process")
    ap.add_argument("--no_perceptual", action="store_true",
                    help="the step without the perceptual term (configs/debug.py, identity.py)")
    args = ap.parse_args()
    fm = ict_model.load_default()
    layout = CoeffLayout.for_model(fm, "mono")
    ex = synthetic.generate(fm, layout, args.batch, seed=0, condition="indoor", size=args.size)
    batch = {"image": jnp.asarray(ex["image"], jnp.float32) / 255,
             "landmarks": jnp.asarray(ex["landmarks"]), "attention": jnp.asarray(ex["attention"])}
    embed = face_embedding.load_face_embedding()
    res = {"device": str(jax.devices()[0]), "cores": os.cpu_count(), "batch": args.batch,
           "width": args.width, "perceptual": not args.no_perceptual,
           "image_size": args.size, "face_model": fm.info["name"], "archs": {}}
    print(f"{res['device']} ({res['cores']} cores), batch {args.batch}, {args.size} px")
    cfg = config_files.packaged("paper")          # the paper's step, at this size and width
    cfg.update(dict(arch="resnet18", width=args.width, light="mono", image_size=args.size,
                    perceptual=not args.no_perceptual, render_backend="scatter"))
    net0, _, hybrid, camera = train.make_training(cfg, fm, embed, None)
    no_per = losses.make_hybrid_loss(fm.to_jax(), layout, camera=camera,
                                     weights=dataclasses.replace(losses.LossWeights(), per=0.0))
    x = jnp.asarray(ex["coeffs"]) * 0.5
    render_part = jax.jit(jax.value_and_grad(lambda x: no_per(x, batch)[0]))
    t_render = median_seconds(render_part, x)
    chips = face_embedding.extract_chip(batch["image"] * 255,
                                        face_embedding.face_chip_transforms(batch["landmarks"]))
    per_part = jax.jit(jax.value_and_grad(
        lambda c: jnp.sum(face_embedding.FaceEmbeddingNet().apply(embed, c))))
    t_per = median_seconds(per_part, chips)
    runs = [(a, s) for a in args.archs.split(",") for s in args.stems.split(",")]
    for arch, stem in runs:
        net = dataclasses.replace(net0, stage_sizes=train.rnet.ARCHS[arch][0],
                                  block=train.rnet.ARCHS[arch][1], stem=stem)
        state = train.create_train_state(jax.random.PRNGKey(0), net, args.size,
                                         optax.adam(1e-4))
        step = jax.jit(functools.partial(train.train_step, hybrid_loss=hybrid))
        t0 = time.perf_counter()
        state2, _ = step(state, batch)
        jax.block_until_ready(state2.params)
        compile_s = time.perf_counter() - t0
        t_step = median_seconds(lambda s: step(s, batch)[1]["loss"], state, repeats=9)

        def net_loss(params):
            out, _ = net.apply({"params": params, "batch_stats": state.batch_stats},
                               batch["image"], train=True, mutable=["batch_stats"])
            return jnp.sum(out ** 2)
        t_net = median_seconds(jax.jit(jax.value_and_grad(net_loss)), state.params, repeats=9)
        r = {"images_per_second": args.batch / t_step, "step_seconds": t_step,
             "compile_seconds": compile_s, "network_seconds": t_net,
             "renderer_photometric_landmark_seconds": t_render,
             "perceptual_seconds": t_per}
        name = arch if args.stems == "imagenet" else f"{arch} {stem} stem"
        res["archs"][name] = r
        print(f"{name:9s}: {r['images_per_second']:.2f} images/s (step {t_step:.2f} s; "
              f"network {t_net:.2f} s, renderer + photometric + landmarks {t_render:.2f} s, "
              f"perceptual {t_per:.2f} s; compile {compile_s:.0f} s)")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
