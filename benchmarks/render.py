"""Renderer speed: forward, and forward+backward of the photometric loss, ms per image.

  python benchmarks/render.py            # BFM-sized mesh and the default model, 224x224, batch 8
  python benchmarks/render.py --quick    # smaller, for a smoke run

Meshes: a synthetic BFM-sized face (grid_model(189): 35,721 vertices, 70,688 triangles; BFM's
front model has 35,709 and 70,789) and the default ICT model. Baseline, in the same run: a naive
all-pairs rasterizer (every pixel against every triangle) timed on a few rows and extrapolated to
the whole batch. The last line is one JSON object with every figure.
"""
import argparse
import json
import os
import platform

import jax
import jax.numpy as jnp
import numpy as np

from timing import median_seconds
from facerecon_jax.fit import losses
from facerecon_jax.geometry import coefficients
from facerecon_jax.models import grid_model, ict_model
from facerecon_jax.render import rasterizer, renderer


def _coeffs(model, layout, batch, seed=0):
    rng = np.random.default_rng(seed)
    parts = layout.split(layout.zeros((batch,)))
    parts["id"] = jnp.asarray(rng.normal(size=(batch, model.n_id)), jnp.float32)
    parts["tex"] = jnp.asarray(rng.normal(size=(batch, model.n_tex)), jnp.float32)
    parts["angles"] = jnp.asarray(rng.uniform(-0.3, 0.3, (batch, 3)), jnp.float32)
    parts["gamma"] = jnp.asarray(rng.normal(size=(batch, layout.n_gamma)) * 0.1, jnp.float32)
    return layout.join(parts)


def _photo(out, target):
    return losses.photometric(out["image"], target, out["alpha"])


def naive_rows(screen, triangles, rows, width):
    """All-pairs visibility for `rows` image rows: (rows * width) x T candidate tests."""
    s = rasterizer._setup(screen[None], triangles, 10 ** 6, width, None)
    nb = rasterizer.id_bits(triangles.shape[0])
    tri = jnp.arange(triangles.shape[0], dtype=jnp.int32)

    def one_row(r):
        px = jnp.arange(width, dtype=jnp.float32)[:, None]
        py = jnp.full_like(px, r)
        t = rasterizer._TriSetup(*[a[0][None, :] for a in s])
        keys = rasterizer._candidate_keys(t, tri[None], px, py, True, 31 - nb, nb)
        return jnp.min(keys, axis=1)
    return jax.lax.map(one_row, jnp.arange(rows, dtype=jnp.float32))


def bench_model(name, model, batch, size, light="rgb"):
    m = model.to_jax()
    layout = coefficients.CoeffLayout.for_model(m, light)
    cfg = renderer.RenderConfig(camera=renderer.cam.Camera().scaled(size))
    x = _coeffs(m, layout, batch)
    target = jnp.full((batch, size, size, 3), 0.5, jnp.float32)
    fwd = jax.jit(lambda x: renderer.render(m, x, layout, cfg)["image"])

    def loss(x):
        return jnp.mean(_photo(renderer.render(m, x, layout, cfg), target))
    fwd_bwd = jax.jit(jax.value_and_grad(loss))
    vis = jax.jit(lambda x: renderer.rasterize(
        m, renderer.face_vertices(m, layout.split(x), cfg.camera)["screen"], cfg).tri_id)
    t_vis = median_seconds(vis, x)
    t_fwd = median_seconds(fwd, x)
    t_fb = median_seconds(fwd_bwd, x)
    out = {"vertices": m.n_vertices, "triangles": m.n_triangles,
           "visibility_ms_per_image": 1e3 * t_vis / batch,
           "forward_ms_per_image": 1e3 * t_fwd / batch,
           "forward_backward_ms_per_image": 1e3 * t_fb / batch}
    print(f"{name:>10}: {m.n_vertices} vertices, {m.n_triangles} triangles | visibility "
          f"{out['visibility_ms_per_image']:.1f} | forward {out['forward_ms_per_image']:.1f} | "
          f"forward+backward {out['forward_backward_ms_per_image']:.1f} ms/image")
    return out, (m, layout, cfg, x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--naive_rows", type=int, default=4)
    args = ap.parse_args()
    size = 112 if args.quick else 224
    grid_n = 95 if args.quick else 189
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} "
          f"({os.cpu_count()} cores, {platform.processor() or platform.machine()}), "
          f"{size}x{size}, batch {args.batch}")
    results = {"image_size": size, "batch": args.batch, "device": str(jax.devices()[0]),
               "cores": os.cpu_count()}
    results["bfm_sized"], (m, layout, cfg, x) = bench_model("BFM-sized", grid_model.grid_model(
        grid_n), args.batch, size)
    results["default_model"], _ = bench_model("default", ict_model.load_default(), args.batch,
                                              size)
    # Baseline: naive all-pairs visibility on a few rows of one image, extrapolated.
    screen = renderer.face_vertices(m, layout.split(x[:1]), cfg.camera)["screen"][0]
    naive = jax.jit(lambda s: naive_rows(s, m.triangles, args.naive_rows, size))
    t_naive = median_seconds(naive, screen, repeats=3)
    naive_ms = 1e3 * t_naive * size / args.naive_rows
    results["naive_all_pairs_visibility_ms_per_image"] = naive_ms
    results["visibility_speedup_vs_naive"] = naive_ms / results["bfm_sized"][
        "visibility_ms_per_image"]
    print(f"naive all-pairs visibility (BFM-sized, {args.naive_rows} rows extrapolated): "
          f"{naive_ms:.0f} ms/image, {results['visibility_speedup_vs_naive']:.0f}x slower than "
          f"ours")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
