"""Speed of a supervised-alone train step (configs/identity.py's first 17,000 steps): the
supervised shape term as the quadratic form of the basis's Gram matrix (`Supervision.metric`,
what training runs) against the same term summed over the vertices
(`train.shape_difference_mm`, before 2026-12-02), in one process, interleaved, best of
`--rounds`; the rest of the step (network, coefficient term, Adam, moving average) the same.

  python benchmarks/supervised_step.py                       # configs/identity.py
  python benchmarks/supervised_step.py --config configs/debug.py --steps 50

The last line is one JSON object.
"""
import argparse
import dataclasses
import json
import os
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from facerecon_jax.fit import losses  # noqa: E402
from facerecon_jax.io import config_files  # noqa: E402
from facerecon_jax.models.model_loading import load_face_model  # noqa: E402
from facerecon_jax.training import data, synthetic, train  # noqa: E402


@dataclasses.dataclass(frozen=True)
class PerVertexSupervision(train.Supervision):
    """The baseline: the shape term from both shapes' vertices (V x K per shape and image)."""

    def loss(self, x, batch, step):
        coeffs, sv, pv = self.targets(batch)
        per_image = self.weight * losses.supervised_coefficients(x, coeffs, self.layout, sv, pv)
        p, t = self.layout.split(x), self.layout.split(coeffs)
        pe, te = ((p["exp"], t["exp"]) if self.vertex_fields == "id+exp"
                  else (jnp.zeros_like(p["exp"]), jnp.zeros_like(t["exp"])))
        d = train.shape_difference_mm(self.model, p["id"], pe, t["id"], te, centred=False)
        per_image = per_image + self.vertex_weight * sv * jnp.mean(jnp.sum(d ** 2, -1), -1)
        return jnp.mean(per_image), per_image


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(pathlib.Path(__file__).resolve().parents[1]
                                            / "configs" / "identity.py"))
    ap.add_argument("--steps", type=int, default=100, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    cfg = config_files.get_config(args.config)
    fm = load_face_model(cfg.face_model)
    spec = train.supervised_alone_spec(train.step_spec(cfg, fm))
    if spec is None or not spec.supervision.vertex_weight:
        raise SystemExit(f"{args.config} has no supervised-alone steps with a shape term")
    layout = spec.layout
    ex = synthetic.generate(fm, layout, cfg.batch_size * 4, seed=0,
                            condition=cfg.data.synthetic_condition, size=cfg.image_size)
    keys = ("image", "landmarks", "attention", "coeffs")
    batches = [data.shard_for_devices(
        {**{k: (ex[k][i:i + cfg.batch_size] / 255.0 if k == "image"
                else ex[k][i:i + cfg.batch_size]).astype("float32") for k in keys},
         "coeffs_valid": jnp.ones((cfg.batch_size,)), "shape_valid": jnp.ones((cfg.batch_size,))})
        for i in range(0, len(ex["image"]), cfg.batch_size)]
    sup = spec.supervision
    base = PerVertexSupervision(**{f.name: getattr(sup, f.name)
                                   for f in dataclasses.fields(sup)})
    variants = {"Gram matrix (K x K)": spec,
                "per vertex (V x K)": dataclasses.replace(spec, supervision=base)}
    net = train.config_rnet(cfg, layout.size)
    r_model = train.replicate(fm.to_jax())
    states, best = {}, {}
    for name, s in variants.items():          # compile each once
        st = train.replicate(train.create_train_state(
            jax.random.PRNGKey(0), net, cfg.image_size, optax.adam(cfg.learning_rate),
            float(cfg.get("ema_decay", 0.0))))
        st, m = train.p_train_step(st, batches[0], r_model, None, s)
        jax.block_until_ready(m)
        states[name], best[name] = st, float("inf")
    for _ in range(args.rounds):
        for name, s in variants.items():
            st = states[name]
            t = time.perf_counter()
            for i in range(args.steps):
                st, m = train.p_train_step(st, batches[i % len(batches)], r_model, None, s)
            jax.block_until_ready(m)
            best[name] = min(best[name], (time.perf_counter() - t) / args.steps)
            states[name] = st
    res = {"config": pathlib.Path(args.config).name, "device": str(jax.devices()[0]),
           "cores": os.cpu_count(), "batch": cfg.batch_size, "image_size": cfg.image_size,
           "vertex_fields": sup.vertex_fields, "steps_per_round": args.steps,
           "ms_per_step": {k: v * 1e3 for k, v in best.items()}}
    gram, vert = best["Gram matrix (K x K)"], best["per vertex (V x K)"]
    for name, sec in best.items():
        print(f"{name}: {sec * 1e3:.1f} ms/step, {cfg.batch_size / sec:.0f} images/s")
    print(f"speed-up of the step: {vert / gram:.2f}x")
    res["speedup"] = vert / gram
    print(json.dumps(res))


if __name__ == "__main__":
    main()
