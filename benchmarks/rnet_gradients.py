"""Which loss terms teach R-Net identity: per-term gradient norms on the network's head.

  python benchmarks/rnet_gradients.py --workdir RUN [--config configs/debug.py] [--step N]

On a batch of held-out generated faces (the held-out report's seed) at a checkpoint of a
training run (`--step`, default the latest; `--step 0` with `--fresh` for a freshly initialised
network), the gradient of each weighted loss term (photometric, landmarks, coefficient prior,
texture, supervised coefficient and shape error) with respect to the head's kernel, split by
the output columns it feeds: identity, expression, texture, pose (angles + translation) and
light. A term whose gradient on the identity columns is small next to the others cannot teach
identity, whatever its value. Prints a table and, last, one JSON line.
"""
import argparse
import dataclasses
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from facerecon_jax.fit import losses  # noqa: E402
from facerecon_jax.io import config_files  # noqa: E402
from facerecon_jax.models.model_loading import load_face_model  # noqa: E402
from facerecon_jax.training import synthetic, train  # noqa: E402

GROUPS = {"identity": ("id",), "expression": ("exp",), "texture": ("tex",),
          "pose": ("angles", "trans"), "light": ("gamma",)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--config", default=str(pathlib.Path(__file__).resolve().parents[1]
                                             / "configs" / "debug.py"))
    ap.add_argument("--step", type=int, default=None)
    ap.add_argument("--fresh", action="store_true", help="a freshly initialised network")
    ap.add_argument("--examples", type=int, default=32)
    args = ap.parse_args()
    config = config_files.get_config(args.config)
    face_model = load_face_model(config.face_model)
    net, layout, hybrid, _ = train.make_training(config, face_model, None, axis_name=None)
    spec = train.step_spec(config, face_model)
    state = train.create_train_state(jax.random.PRNGKey(config.seed), net, config.image_size,
                                     optax.adam(train.make_schedule(config, 1)))
    if not args.fresh:
        state, _ = train.restore_checkpoint(train.checkpoint_manager(args.workdir), state,
                                            args.step)
    held = synthetic.generate(face_model, layout, args.examples, seed=config.seed + 10_000,
                              condition=config.data.synthetic_condition, size=config.image_size)
    batch = {"image": jnp.asarray(held["image"], jnp.float32) / 255.0,
             "landmarks": jnp.asarray(held["landmarks"]),
             "attention": jnp.asarray(held["attention"]),
             "coeffs": jnp.asarray(held["coeffs"])}
    sup = (None if spec.supervision is None                    # on at every step
           else dataclasses.replace(spec.supervision, steps=0))

    def term(params, name):
        x = state.apply_fn({"params": params, "batch_stats": state.batch_stats},
                           batch["image"], train=False)
        if name == "supervised":
            return sup.loss(x, batch, 0)[0]
        _, terms = hybrid(x, batch)      # weighted as the loss weighs it (losses.total)
        return jnp.mean(losses.total({name: terms[name]}, spec.weights))

    names = ["photo", "lan", "coef", "tex"] + (["supervised"] if sup is not None else [])
    cols = {g: np.concatenate([np.arange(layout.slices()[f].start, layout.slices()[f].stop)
                               for f in fields]) for g, fields in GROUPS.items()}
    rows = {}
    for name in names:
        value, grads = jax.value_and_grad(term)(state.params, name)
        k = np.asarray(grads["head"]["kernel"])
        rows[name] = {"value": float(value),
                      **{g: float(np.linalg.norm(k[:, c])) for g, c in cols.items()}}
    print(f"step {int(state.step)}; gradient norm on the head's kernel, by output columns")
    print(f"{'term':<12}{'value':>10}" + "".join(f"{g:>12}" for g in GROUPS))
    for name, r in rows.items():
        print(f"{name:<12}{r['value']:>10.4g}" + "".join(f"{r[g]:>12.3g}" for g in GROUPS))
    print(json.dumps({"workdir": args.workdir, "step": int(state.step), "terms": rows}))


if __name__ == "__main__":
    main()
