"""Vertex normals' layout: their gradient, and the fitting step they are part of.

  python benchmarks/vertex_normals.py [--batch 8] [--size 112]

`morphable.vertex_normals` gathers vertex-major arrays ((V, N, 3): all of a batch's copies of a
vertex or a face in one contiguous row). The baseline, defined here and used only here, is the
batch-major layout it replaced ((N, V, 3), gathering along the vertex axis of each mesh), the
same arithmetic in the same order. Both in one process, on the default model: the normals'
forward and gradient, and one step of the hybrid fit (`losses.make_hybrid_loss`'s value and
gradient at the fit size) with each. Prints median ms and the ratio baseline / vertex-major,
then one JSON line.
"""
import argparse
import json
import pathlib
import platform
import sys
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from timing import median_seconds  # noqa: E402
from facerecon_jax.fit import fitting, losses  # noqa: E402
from facerecon_jax.geometry import camera as cam, morphable  # noqa: E402
from facerecon_jax.geometry.coefficients import CoeffLayout  # noqa: E402
from facerecon_jax.models.model_loading import load_face_model  # noqa: E402


def batch_major_normals(vertices, triangles, vertex_faces, *, area_weighted: bool = False):
    """The baseline: the layout `morphable.vertex_normals` had until 2026-12-01."""
    v0 = vertices[..., triangles[:, 0], :]
    v1 = vertices[..., triangles[:, 1], :]
    v2 = vertices[..., triangles[:, 2], :]
    fn = jnp.cross(v1 - v0, v2 - v0)
    if not area_weighted:
        fn = fn / jnp.sqrt(jnp.sum(fn * fn, axis=-1, keepdims=True) + 1e-20)
    fn = jnp.concatenate([fn, jnp.zeros(fn.shape[:-2] + (1, 3), fn.dtype)], axis=-2)
    vn = jnp.sum(fn[..., vertex_faces, :], axis=-2)
    return vn / jnp.sqrt(jnp.sum(vn * vn, axis=-1, keepdims=True) + 1e-20)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=112, help="fit size (configs/reconstruct.py's)")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    model = load_face_model("default").to_jax()
    layout = CoeffLayout.for_model(model, "rgb")
    rng = np.random.default_rng(0)
    b = args.batch
    shape = jnp.asarray(np.asarray(model.mean_shape)[None]
                        + 0.002 * rng.standard_normal((b,) + model.mean_shape.shape), jnp.float32)
    w = jnp.asarray(rng.standard_normal(shape.shape), jnp.float32)
    impls = {"batch-major (baseline)": batch_major_normals,
             "vertex-major": morphable.vertex_normals}
    ref = np.asarray(batch_major_normals(shape, model.triangles, model.vertex_faces))
    camera = cam.Camera().scaled(args.size)
    x = layout.zeros((b,)) + 0.3 * jnp.asarray(
        rng.standard_normal((b, layout.size)) * (np.arange(layout.size) < model.n_id),
        jnp.float32)
    batch = {"image": jnp.asarray(rng.random((b, args.size, args.size, 3)), jnp.float32),
             "landmarks": jnp.asarray(rng.random((b, 68, 2)) * args.size, jnp.float32),
             "attention": jnp.ones((b, args.size, args.size), jnp.float32)}
    lmap = fitting.landmark_map_for(model, "calibrated")
    rows = {}
    for name, fn in impls.items():
        out = np.asarray(fn(shape, model.triangles, model.vertex_faces))
        assert np.allclose(out, ref, atol=1e-5), name

        def normals(s, fn=fn):
            return fn(s, model.triangles, model.vertex_faces)

        def grad_normals(s, fn=fn):
            return jax.grad(lambda s_: jnp.sum(fn(s_, model.triangles, model.vertex_faces) * w))(s)
        # the whole fitting step, with this layout patched into the vertex stage
        with mock.patch.object(morphable, "vertex_normals", fn):
            loss = losses.make_hybrid_loss(model, layout, camera=camera, landmark_map=lmap)
            step = jax.jit(jax.value_and_grad(loss, has_aux=True))
            t_step = median_seconds(step, x, batch, repeats=args.repeats)
        rows[name] = {
            "normals_ms": 1e3 * median_seconds(jax.jit(normals), shape, repeats=args.repeats),
            "normals_grad_ms": 1e3 * median_seconds(jax.jit(grad_normals), shape,
                                                    repeats=args.repeats),
            "fit_step_ms": 1e3 * t_step}
    base, new = rows["batch-major (baseline)"], rows["vertex-major"]
    print(f"default model ({model.n_vertices} vertices, {model.n_triangles} triangles), batch "
          f"{b}, fit step at {args.size} px, {jax.devices()[0].platform}")
    print("layout | normals (ms) | normals' gradient (ms) | hybrid fit step (ms)")
    for name, r in rows.items():
        print(f"{name} | {r['normals_ms']:.1f} | {r['normals_grad_ms']:.1f} | "
              f"{r['fit_step_ms']:.1f}")
    ratios = {k: base[k] / new[k] for k in base}
    print("baseline / vertex-major | " + " | ".join(f"{ratios[k]:.2f}x" for k in base))
    print(json.dumps({"machine": platform.processor() or platform.machine(), "batch": b,
                      "size": args.size, "rows": rows, "ratios": ratios}))


if __name__ == "__main__":
    main()
