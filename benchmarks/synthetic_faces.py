"""Generated training faces per second: `synthetic.generate` against its renders alone.

  python benchmarks/synthetic_faces.py                 # 1,024 faces at 96 px (configs/identity.py)
  python benchmarks/synthetic_faces.py --faces 256 --size 64

`generate` draws each example's coefficients and scene on the host (numpy), renders a batch
(one jitted program), then adds occluders and sensor noise on the host; it overlaps the host
work of the batches before and after with the batch being rendered (JAX dispatches the render
asynchronously). Baseline in the same process, on the same examples: the renders alone (the
jitted program on every batch, nothing else: the floor an overlap can reach on a machine with
cores to spare). Prints faces/s of each and the ratio; the last line is JSON.
"""
import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from facerecon_jax.geometry import camera
from facerecon_jax.geometry.coefficients import CoeffLayout
from facerecon_jax.models.model_loading import load_face_model
from facerecon_jax.render import renderer
from facerecon_jax.training import synthetic


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=1024)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    model = load_face_model("default")
    layout = CoeffLayout.for_model(model, "rgb")
    m = model.to_jax()
    config = renderer.RenderConfig(camera=camera.Camera().scaled(args.size))
    examples = synthetic.generate(model, layout, args.faces, seed=0, size=args.size,
                                  batch_size=args.batch, start=10_000)   # warm-up: compiles
    coeffs = np.zeros((-(-args.faces // args.batch) * args.batch, layout.size), np.float32)
    coeffs[:args.faces] = examples["coeffs"]
    bgs = jnp.zeros((args.batch, args.size, args.size, 3))

    def renders():
        for b0 in range(0, args.faces, args.batch):
            res = renderer.render_jit(m, jnp.asarray(coeffs[b0:b0 + args.batch]), layout,
                                      config, bgs)
            np.asarray(res["image"])

    timings = {"generate": [], "renders alone": []}
    for r in range(args.repeats):        # interleaved, so the machine's load falls on both
        for name, fn in (("generate", lambda: synthetic.generate(
                              model, layout, args.faces, seed=0, size=args.size,
                              batch_size=args.batch, start=10_000)),
                         ("renders alone", renders)):
            t0 = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in timings.items()}
    print(f"{args.faces} faces at {args.size} px, batch {args.batch}, "
          f"{jax.devices()[0].platform} ({platform.processor() or platform.machine()}), "
          f"best of {args.repeats}")
    for k, v in best.items():
        print(f"{k}: {v:.2f} s = {args.faces / v:.0f} faces/s")
    print(f"generate / renders alone: {best['generate'] / best['renders alone']:.2f}x the time")
    print(json.dumps({"faces": args.faces, "size": args.size, "batch": args.batch,
                      "seconds": best, "faces_per_second":
                      {k: args.faces / v for k, v in best.items()}}))


if __name__ == "__main__":
    main()
