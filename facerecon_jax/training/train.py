"""Training R-Net without 3D ground truth: pure functions and one TrainState.

`train_step` is written once as a pure function of (state, batch) with an axis name: gradients,
the loss and the metrics are averaged with lax.pmean over that axis (BatchNorm averages its
batch statistics over it too), and a non-finite loss or gradient leaves the state untouched and
raises the `finite` flag, on which the host loop stops. `p_train_step` is that step pmapped over
the local devices, built once at module level: it takes the state, the batch, the face model and
the face-embedding parameters as arguments (each replicated on the devices) and the loss
settings as one static, hashable `StepSpec`, so a second run in the same process reuses the
compiled program. Multi-host runs call jax.distributed.initialize first (launch/train.py), and
each host reads its own shards, so a TPU pod slice runs the same program.

Checkpoints (orbax CheckpointManager): params, optimizer state, batch statistics and the step,
which is also the data position (the input pipeline is a pure function of (seed, step)). Saves are
atomic (orbax finalises a temporary directory by renaming it), the last `keep` are kept, and a
run started in a workdir that holds a checkpoint resumes from it.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import pathlib
import sys
import time
from typing import Any, Callable, Dict, Optional

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax.training import train_state
from absl import logging

from facerecon_jax.geometry import camera as cam
from facerecon_jax.fit import losses
from facerecon_jax.geometry import metrics, mirror_image, morphable
from facerecon_jax.training import data, rnet
from facerecon_jax.geometry.coefficients import CoeffLayout
from facerecon_jax.models import mirror


class TrainingDivergedError(RuntimeError):
    """A loss or gradient became NaN/Inf; the last good checkpoint is kept."""


class TrainState(train_state.TrainState):
    """Flax's TrainState with BatchNorm statistics and, when `ema_decay` > 0, an exponential
    moving average of the parameters (`ema_params`), which checkpoints keep and prediction uses
    (`load_predictor`): the weights' step-to-step noise at a constant learning rate averaged
    out, as big_vision and most image regressors do."""
    batch_stats: Any = None
    ema_params: Any = None
    ema_decay: float = flax.struct.field(pytree_node=False, default=0.0)


def ema_rate(decay: float, step):
    """The average's decay at optimiser step `step` (0-based): `decay`, but at most
    (1 + step) / (10 + step), so that early on the average is not held at the initial weights
    (TensorFlow's ExponentialMovingAverage with num_updates)."""
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def start_ema(state: TrainState) -> TrainState:
    """`state` with its parameter average (when it keeps one) set to its parameters."""
    if not state.ema_decay:
        return state
    return state.replace(ema_params=jax.tree_util.tree_map(jnp.copy, state.params))


def update_ema(state: TrainState) -> TrainState:
    """`state` (after an optimiser step, params new, step already advanced) with its
    parameter average moved towards the new parameters."""
    if not state.ema_decay:
        return state
    d = ema_rate(state.ema_decay, state.step - 1)
    return state.replace(ema_params=jax.tree_util.tree_map(
        lambda e, p: d * e + (1.0 - d) * p, state.ema_params, state.params))


def make_schedule(config: ml_collections.ConfigDict, steps_per_epoch: int):
    """Constant (paper) or step decay: lr x decay_factor every decay_epochs (Deep3DFaceRecon)."""
    if config.lr_decay_epochs:
        every = max(1, int(config.lr_decay_epochs * steps_per_epoch))
        return optax.exponential_decay(config.learning_rate, every, config.lr_decay_factor,
                                       staircase=True)
    return optax.constant_schedule(config.learning_rate)


@functools.partial(jax.jit, static_argnums=(0, 2))
def init_variables(net: rnet.RNet, rng, image_size: int):
    """The network's initial variables for `rng`, compiled once per (network, size) in a process.

    The initialisers draw from an RBG key seeded from `rng` (the same `rng` gives the same
    variables): compiling threefry's unrolled hash for every kernel of a ResNet-18 took 15 s on a
    CPU, the bit generator 3 s (and the eager init, compiling each operation alone, 25 s)."""
    key = jax.random.key(jax.random.bits(rng, (), jnp.uint32), impl="rbg")
    return net.init(key, jnp.zeros((1, image_size, image_size, 3), jnp.float32))


def create_train_state(rng, net: rnet.RNet, image_size: int, tx,
                       ema_decay: float = 0.0) -> TrainState:
    """A new state; `ema_decay` > 0 keeps a moving average of the parameters (`update_ema`)."""
    variables = init_variables(net, rng, image_size)
    state = TrainState.create(apply_fn=net.apply, params=variables["params"], tx=tx,
                              batch_stats=variables.get("batch_stats", {}),
                              ema_decay=float(ema_decay))
    # a strongly typed step, so the jitted step's output state has the input's types
    return start_ema(state.replace(step=jnp.zeros((), jnp.int32)))


def load_backbone(state: TrainState, path: str) -> TrainState:
    """Copy user-supplied backbone weights (a Flax checkpoint of an RNet's variables, saved with
    orbax StandardSave or as a msgpack file) into the state; the head is kept zero."""
    p = pathlib.Path(path).expanduser()
    if p.is_file():
        restored = flax.serialization.msgpack_restore(p.read_bytes())
    else:
        restored = ocp.StandardCheckpointer().restore(p.resolve())
    params = restored.get("params", restored)
    stats = restored.get("batch_stats", state.batch_stats)

    def merge(target, source, prefix=""):
        out = {}
        for k, v in target.items():
            if k == "head" or k not in source:
                out[k] = v
            elif isinstance(v, dict):
                out[k] = merge(v, source[k], prefix + k + "/")
            else:
                if np.shape(source[k]) != np.shape(v):
                    raise ValueError(f"{path}: {prefix}{k} has shape {np.shape(source[k])}, "
                                     f"the network expects {np.shape(v)}")
                out[k] = jnp.asarray(source[k], v.dtype)
        return out
    return state.replace(params=merge(state.params, params),
                         batch_stats=merge(state.batch_stats, stats))


def shape_difference_mm(model, id_a, exp_a, id_b, exp_b, centred: bool = True):
    """(B, V, 3) difference in mm between two unposed shapes (identity and expression); with
    `centred`, each shape's mean is removed first (the held-out report's shape error)."""
    s = morphable.shape(model, id_a, exp_a)
    t = morphable.shape(model, id_b, exp_b)
    if centred:
        s, t = s - s.mean(-2, keepdims=True), t - t.mean(-2, keepdims=True)
    return (s - t) * 100.0                                                  # dm -> mm


MIRROR_RESIDUAL_MAX = 0.05   # `supervised.mirror_flips` needs a model this symmetric (relative
                             # error of its identity's mirror map; the default model's: 0.005)


@dataclasses.dataclass(frozen=True)
class Supervision:
    """The optional supervised term on generated faces (their coefficients are known), added to
    the weakly supervised hybrid loss for the first `steps` steps (0: all of them):
    weight x `losses.supervised_coefficients` (squared coefficient error) + vertex_weight x the
    mean squared distance (mm^2) between predicted and true unposed shape (identity and
    expression), which weighs each mode by how much it moves the face;
    `vertex_fields` "id": the shape of the identity alone (expression held at 0 in both).
    The shape is linear in the coefficients, so that distance is the quadratic form of the
    coefficient offset in the basis's Gram matrix (`morphable.shape_gram`, K x K): `from_config`
    computes it once from the face model (`metric`, with `metric_key` its fingerprint, so that
    steps for two face models are two specs); without it the loss computes it from `model`.
    `mirror_maps` (`models.mirror.coefficient_mirror`, with `mirror_flips` in the config): a
    picture the augmentation flipped (batch "mirrored") is compared with its mirror image's
    coefficients (`mirror_image.mirror_coefficients` of the truth, `camera` the crops'), its
    shape always and its pose where the flip was all that moved it (batch "flip_only"); without
    the maps flipped pictures count only in the coefficients that hold ("shape_valid",
    "coeffs_valid").
    `alone_steps`: the first that many steps train on the supervised term alone (the weakly
    supervised terms, and their render, are left out: such a step costs ~0.55x a hybrid step
    at the debug config's size on a CPU); the term stays on, beside the paper's loss, until
    `steps`.
    Off in the paper's configs."""
    layout: CoeffLayout
    weight: float
    steps: int = 0
    vertex_weight: float = 0.0
    model: Any = dataclasses.field(default=None, compare=False, hash=False)
    vertex_fields: str = "id+exp"
    alone_steps: int = 0
    metric: Any = dataclasses.field(default=None, compare=False, hash=False)
    mirror_maps: Any = dataclasses.field(default=None, compare=False, hash=False)
    camera: Optional[cam.Camera] = None
    metric_key: str = ""            # fingerprint of `metric` and `mirror_maps`

    @classmethod
    def from_config(cls, config, layout, face_model=None) -> Optional["Supervision"]:
        s = config.get("supervised")
        if not s or not (s.weight or s.get("vertex_weight", 0.0)):
            return None
        fields = s.get("vertex_fields", "id+exp")
        if fields not in ("id+exp", "id"):
            raise ValueError(f"supervised.vertex_fields must be 'id+exp' or 'id', got {fields!r}")
        steps, alone = int(s.steps), int(s.get("alone_steps", 0))
        if alone < 0 or (steps > 0 and alone > steps):
            raise ValueError(f"supervised.alone_steps ({alone}) must be between 0 and "
                             f"supervised.steps ({steps}; 0: the whole run)")
        vertex_weight = float(s.get("vertex_weight", 0.0))
        metric, maps, camera, key = None, None, None, hashlib.sha1()
        if face_model is not None and vertex_weight:
            metric = np.asarray(morphable.shape_gram(face_model.to_jax(), fields == "id+exp"))
            key.update(metric.tobytes())
        if face_model is not None and s.get("mirror_flips", False):
            maps = mirror.coefficient_mirror(face_model)
            if maps.residual > MIRROR_RESIDUAL_MAX:
                raise ValueError(
                    f"supervised.mirror_flips: the face model {face_model.info.get('name', '')!r}"
                    f" is not left-right symmetric enough to read a flipped picture's "
                    f"coefficients (mirror residual {maps.residual:.3f} > "
                    f"{MIRROR_RESIDUAL_MAX}); set supervised.mirror_flips False")
            camera = training_camera(config)
            for a in jax.tree_util.tree_leaves(maps):
                key.update(np.asarray(a).tobytes())
        fingerprint = key.hexdigest() if metric is not None or maps is not None else ""
        return cls(layout, float(s.weight), steps, vertex_weight,
                   None if face_model is None else face_model.to_jax(), fields, alone,
                   metric, maps, camera, fingerprint)

    def targets(self, batch):
        """(true coefficients, shape weight, pose weight) per image of `batch`: flipped pictures
        read as their mirror images' with `mirror_maps`, else left out where nothing holds."""
        coeffs = batch["coeffs"]
        one = jnp.ones(coeffs.shape[:1], coeffs.dtype)
        sv, pv = batch.get("shape_valid", one), batch.get("coeffs_valid", one)
        if self.mirror_maps is None or "mirrored" not in batch:
            return coeffs, sv, pv
        flipped = batch["mirrored"]
        mirrored = mirror_image.mirror_coefficients(coeffs, self.layout, self.mirror_maps,
                                                    self.camera)
        coeffs = jnp.where(flipped[:, None] > 0, mirrored, coeffs)
        return (coeffs, jnp.maximum(sv, flipped),
                jnp.maximum(pv, batch.get("flip_only", jnp.zeros_like(one))))

    def loss(self, x, batch, step):
        coeffs, sv, pv = self.targets(batch)
        per_image = self.weight * losses.supervised_coefficients(x, coeffs, self.layout, sv, pv)
        if self.vertex_weight:
            both = self.vertex_fields == "id+exp"
            g = (jnp.asarray(self.metric) if self.metric is not None
                 else morphable.shape_gram(self.model, both))
            p, t = self.layout.split(x), self.layout.split(coeffs)
            d = p["id"] - t["id"]
            if both:
                d = jnp.concatenate([d, p["exp"] - t["exp"]], -1)
            per_image = per_image + self.vertex_weight * sv * jnp.einsum(
                "bi,ij,bj->b", d, g, d, precision="highest")
        on = 1.0 if self.steps <= 0 else jnp.asarray(step < self.steps, x.dtype)
        return on * jnp.mean(per_image), per_image


@dataclasses.dataclass(frozen=True)
class Consistency:
    """The optional identity-consistency term of multi-image training: batches hold `views`
    images of each person next to each other (data.views_per_person), and weight x the squared
    distance of each image's identity coefficients from its person's mean
    (`losses.group_consistency`; mirrored pictures left out) is added to the loss."""
    layout: CoeffLayout
    weight: float
    views: int

    @classmethod
    def from_config(cls, config, layout) -> Optional["Consistency"]:
        w = float(config.get("identity_consistency", 0.0))
        views = int(config.data.get("views_per_person", 1))
        if not w:
            return None
        if views < 2:
            raise ValueError(f"identity_consistency {w} needs several images per person: set "
                             f"data.views_per_person >= 2 (it is {views})")
        return cls(layout, w, views)

    def loss(self, x, batch):
        per_image = self.weight * losses.group_consistency(
            self.layout.split(x)["id"], self.views,
            None if "mirrored" not in batch else 1.0 - batch["mirrored"])
        return jnp.mean(per_image), per_image


def train_step(state: TrainState, batch: Dict[str, jnp.ndarray], *, hybrid_loss: Callable,
               axis_name: Optional[str] = None, supervision: Optional[Supervision] = None,
               consistency: Optional[Consistency] = None):
    """One optimiser step. Returns (state, metrics); metrics['finite'] is 0 when the update was
    refused because the loss or a gradient was not finite. With `supervision`, the batch holds
    the true coefficients ("coeffs", "coeffs_valid", "shape_valid") and the supervised term is
    added (metrics["supervised"]: its weighted per-image mean, before the warm-up switch).
    With `consistency`, the batch holds k images per person in turn (metrics["consistency"])."""

    def loss_fn(params):
        x, new_vars = state.apply_fn({"params": params, "batch_stats": state.batch_stats},
                                     batch["image"], train=True, mutable=["batch_stats"])
        loss, terms = hybrid_loss(x, batch)
        if supervision is not None:       # terms["supervised"]: weighted, per image
            sup, terms["supervised"] = supervision.loss(x, batch, state.step)
            loss = loss + sup
        if consistency is not None:
            con, terms["consistency"] = consistency.loss(x, batch)
            loss = loss + con
        return loss, (terms, new_vars["batch_stats"])

    (loss, (terms, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {"loss": loss, **{k: jnp.mean(v) for k, v in terms.items()}}
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
        metrics = jax.lax.pmean(metrics, axis_name)
        batch_stats = jax.lax.pmean(batch_stats, axis_name)
    finite = jnp.isfinite(metrics["loss"])
    for g in jax.tree_util.tree_leaves(grads):
        finite &= jnp.all(jnp.isfinite(g))
    new_state = update_ema(state.apply_gradients(grads=grads, batch_stats=batch_stats))
    state = jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), new_state, state)
    metrics["finite"] = finite.astype(jnp.float32)
    metrics["grad_norm"] = optax.tree.norm(grads)
    return state, metrics


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """The static (hashable) settings of one training run's step: the hybrid loss's layout,
    camera, weights and render backend, and the optional supervised and consistency terms (the
    supervised term's face model is the step's argument, not part of the spec)."""
    layout: CoeffLayout
    camera: cam.Camera
    weights: losses.LossWeights
    backend: str = "scatter"
    supervision: Optional[Supervision] = None
    consistency: Optional[Consistency] = None
    weak: bool = True             # False: no weakly supervised terms (the first
                                  # `Supervision.alone_steps` steps; `supervised_alone_spec`)


def supervised_alone_spec(spec: StepSpec) -> Optional[StepSpec]:
    """The step spec of the steps that train on the supervised term alone
    (`Supervision.alone_steps`), or None when there are none."""
    if spec.supervision is None or spec.supervision.alone_steps <= 0:
        return None
    return dataclasses.replace(spec, weak=False)


def no_weak_loss(x, batch):
    """The weakly supervised loss of a supervised-alone step: nothing."""
    del batch
    return jnp.zeros((), x.dtype), {}


def spec_hybrid_loss(spec: StepSpec, face_model, embed_params=None):
    """The hybrid loss of a run's step: `losses.make_hybrid_loss` with the spec's settings
    around the face model (a FaceModel of arrays) and the face-embedding parameters (used only
    when the perceptual weight is on)."""
    return losses.make_hybrid_loss(face_model, spec.layout, camera=spec.camera,
                                   weights=spec.weights, backend=spec.backend,
                                   embed_params=embed_params if spec.weights.per > 0 else None)


def spec_train_step(state: TrainState, batch, face_model, embed_params, spec: StepSpec,
                    axis_name: Optional[str] = "batch"):
    """`train_step` with the hybrid loss built from `spec` (`spec_hybrid_loss`; none when
    `spec.weak` is False)."""
    hybrid = spec_hybrid_loss(spec, face_model, embed_params) if spec.weak else no_weak_loss
    sup = (None if spec.supervision is None
           else dataclasses.replace(spec.supervision, model=face_model))
    return train_step(state, batch, hybrid_loss=hybrid, axis_name=axis_name, supervision=sup,
                      consistency=spec.consistency)


# state, batch, face model and embedding parameters carry a leading device axis (`replicate`,
# `data.shard_for_devices`); the spec is static. Compiled once per (shapes, spec).
p_train_step = jax.pmap(spec_train_step, axis_name="batch", static_broadcasted_argnums=(4,),
                        donate_argnums=(0,))


# --------------------------------------------------------------------------- checkpoints

def checkpoint_manager(workdir, keep: int = 3) -> ocp.CheckpointManager:
    opts = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                        enable_async_checkpointing=False)
    return ocp.CheckpointManager(pathlib.Path(workdir).resolve() / "checkpoints", options=opts,
                                 item_names=("state", "meta"))


def save_checkpoint(mngr: ocp.CheckpointManager, state: TrainState, meta: dict) -> None:
    step = int(jax.device_get(state.step))
    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(_savable(state)),
                                            meta=ocp.args.JsonSave(meta)))
    mngr.wait_until_finished()


def _savable(state: TrainState, ema: Optional[bool] = None) -> dict:
    out = {"step": state.step, "params": state.params, "opt_state": state.opt_state,
           "batch_stats": state.batch_stats}
    keep = state.ema_params is not None if ema is None else ema
    if keep:      # (restoring a saved average into a state without one: its shapes are params')
        out["ema_params"] = state.params if state.ema_params is None else state.ema_params
    return out


def _read_meta(mngr: ocp.CheckpointManager, step) -> dict:
    return mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]


def restore_checkpoint(mngr: ocp.CheckpointManager, state: TrainState, step=None, log=None):
    """(state, meta) from the latest (or given) checkpoint, or (state, None) if there is none.
    A checkpoint saved without a parameter average (meta "ema" false), restored into a state
    that keeps one, starts the average at the restored parameters (said through `log`)."""
    step = mngr.latest_step() if step is None else step
    if step is None:
        return state, None
    meta = _read_meta(mngr, step)
    saved_ema = bool(meta.get("ema", False))
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct,
                                      _savable(state, ema=saved_ema))
    s = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract)))["state"]
    state = state.replace(step=s["step"], params=s["params"], opt_state=s["opt_state"],
                          batch_stats=s["batch_stats"],
                          ema_params=s.get("ema_params") if state.ema_decay else None)
    if state.ema_decay and not saved_ema:
        state = start_ema(state)
        if log is not None:
            log(f"the checkpoint at step {step} has no parameter average: it starts at that "
                f"step's parameters (ema_decay {state.ema_decay})")
    return state, meta


def _open_checkpoints(checkpoint_dir, step=None):
    """(checkpoints folder, read-only manager, step: the latest unless given) of a training
    workdir or its checkpoints folder."""
    d = pathlib.Path(checkpoint_dir).expanduser().resolve()
    if (d / "checkpoints").is_dir():
        d = d / "checkpoints"
    if not d.is_dir():
        raise FileNotFoundError(f"no R-Net checkpoints in {checkpoint_dir}")
    mngr = ocp.CheckpointManager(d, options=ocp.CheckpointManagerOptions(read_only=True),
                                 item_names=("state", "meta"))
    step = mngr.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"no R-Net checkpoint found in {d}")
    return d, mngr, step


def checkpoint_meta(checkpoint_dir, step=None) -> dict:
    """What a run's checkpoint says about its network (arch, stem, image_size, light,
    num_outputs, ...), without restoring its parameters."""
    _, mngr, step = _open_checkpoints(checkpoint_dir, step)
    return _read_meta(mngr, step)


def load_predictor(checkpoint_dir, step=None, ema: bool = True, mirror_model=None):
    """(predict(images (B,H,W,3) in [0,1]) -> coefficients, meta) from a training workdir or its
    checkpoints folder, for reconstruct's --checkpoint and for evaluation. The parameters are
    the run's moving average when it kept one (config.ema_decay > 0) and `ema`, else the
    optimiser's. With `mirror_model` (the face model the network predicts for), each prediction
    is the average of the picture's and of its mirror image's read back as this face
    (`predict_coefficients_mirrored`): two forward passes."""
    d, mngr, step = _open_checkpoints(checkpoint_dir, step)
    meta = _read_meta(mngr, step)
    net = rnet.make_rnet(meta["arch"], meta["num_outputs"], width=meta.get("width", 64),
                         head=meta.get("head", "mean"), stem=meta.get("stem", "imagenet"))
    restored = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore()))["state"]
    params = restored["params"]
    if ema and meta.get("ema", False):
        params = restored["ema_params"]
    variables = {"params": params, "batch_stats": restored["batch_stats"]}

    size = int(meta["image_size"])
    if mirror_model is not None:
        layout = CoeffLayout.for_model(mirror_model, meta["light"])
        if layout.size != meta["num_outputs"]:
            raise ValueError(f"the R-Net in {d} predicts {meta['num_outputs']} coefficients, "
                             f"the face model {mirror_model.info.get('name')} with "
                             f"{meta['light']} light has {layout.size}")
        maps = mirror.coefficient_mirror(mirror_model)

        def predict(images):
            """(B, H, W, 3) RGB in [0, 1] -> (B, D), averaged with the mirror image's."""
            return predict_coefficients_mirrored(net, variables,
                                                 jnp.asarray(images, jnp.float32), size,
                                                 layout, maps)
        return predict, meta

    def predict(images):
        """(B, H, W, 3) RGB in [0, 1] (resized to the training size if needed) -> (B, D)."""
        return predict_coefficients(net, variables, jnp.asarray(images, jnp.float32), size)
    return predict, meta


@functools.partial(jax.jit, static_argnums=(0, 3))
def predict_coefficients(net: rnet.RNet, variables, images, size: int):
    """R-Net's forward pass (inference mode) on images (B, H, W, 3) in [0, 1], resized to the
    network's `size` first when they differ: (B, D) coefficients. Compiled once per network
    architecture and batch shape, whichever checkpoint the variables come from."""
    return net.apply(variables, at_size(images, size), train=False)


def at_size(images, size: int):
    """Images (B, H, W, 3) resized (antialiased) to size x size when they are not already."""
    if images.shape[1:3] == (size, size):
        return images
    return jax.image.resize(images, (images.shape[0], size, size, 3), "linear", antialias=True)


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def predict_coefficients_mirrored(net: rnet.RNet, variables, images, size: int,
                                  layout: CoeffLayout, maps: mirror.CoefficientMirror):
    """`predict_coefficients` averaged with the prediction for each picture flipped left-right,
    read back as the face in the picture (`mirror_image.mirror_coefficients`, the camera of the
    network's size): a face and its mirror image are two faces of the model, so the network's
    two readings of one picture agree where it is right and partly cancel where it errs."""
    images = at_size(images, size)
    b = images.shape[0]
    x = net.apply(variables, jnp.concatenate([images, images[:, :, ::-1]]), train=False)
    back = mirror_image.mirror_coefficients(x[b:], layout, maps, cam.Camera().scaled(size))
    return 0.5 * (x[:b] + back)


# --------------------------------------------------------------------------- the loop

@dataclasses.dataclass
class TrainResult:
    step: int
    history: list
    workdir: str


def replicate(tree):
    """A copy of `tree` on every local device, stacked on a leading axis, laid out exactly like
    the pmapped step's outputs (flax.jax_utils.replicate's layout differs, and the step would
    compile a second time on its second call)."""
    devices = jax.local_devices()
    sharding = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(devices), ("batch",)),
                                          jax.sharding.PartitionSpec("batch"))
    return jax.device_put(jax.tree_util.tree_map(
        lambda a: np.broadcast_to(np.asarray(a)[None], (len(devices),) + np.shape(a)), tree),
        sharding)


def training_camera(config: ml_collections.ConfigDict) -> cam.Camera:
    """The camera of the crops a config trains on (the 224 px camera scaled to image_size)."""
    return cam.Camera().scaled(config.image_size)


def step_spec(config: ml_collections.ConfigDict, face_model) -> StepSpec:
    """The train step's static settings for a config (loss weights, optional terms)."""
    layout = CoeffLayout.for_model(face_model, config.light)
    weights = losses.LossWeights.named(config.loss_weights)
    if not config.perceptual:
        weights = dataclasses.replace(weights, per=0.0)
    if config.loss_weight_overrides:
        weights = dataclasses.replace(weights, **dict(config.loss_weight_overrides))
    return StepSpec(layout, training_camera(config), weights, config.render_backend,
                    Supervision.from_config(config, layout, face_model),
                    Consistency.from_config(config, layout))


def make_training(config: ml_collections.ConfigDict, face_model, embed_params=None,
                  axis_name: Optional[str] = "batch"):
    """(net, layout, hybrid_loss, camera) for a config (the hybrid loss as `p_train_step`
    builds it, for calling `train_step` directly)."""
    spec = step_spec(config, face_model)
    hybrid = spec_hybrid_loss(spec, face_model.to_jax(), embed_params)
    return config_rnet(config, spec.layout.size, axis_name), spec.layout, hybrid, spec.camera


def config_rnet(config: ml_collections.ConfigDict, num_outputs: int,
                axis_name: Optional[str] = "batch") -> rnet.RNet:
    """The R-Net a training config describes (architecture, width, head, stem)."""
    return rnet.make_rnet(config.arch, num_outputs, axis_name=axis_name, width=config.width,
                          head=config.head, stem=config.stem)


DATA_SETTINGS = ("batch_size", "image_size", "seed", "num_epochs")


def data_settings_changed(saved: dict, config: ml_collections.ConfigDict) -> list:
    """["key old -> new", ...] for the settings that decide which examples a step sees (the
    `data` fields, batch size, image size, seed) where a checkpoint's config (`saved`, as stored
    in its meta) differs from `config`."""
    now = json.loads(config.to_json_best_effort())

    def flat(d):
        return {**{k: d[k] for k in DATA_SETTINGS if k in d},
                **{f"data.{k}": v for k, v in (d.get("data") or {}).items()}}
    before, after = flat(saved), flat(now)
    return [f"{k} {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after))
            if k in before and before.get(k) != after.get(k)]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, dataset,
                       face_model, embed_params=None, max_steps: Optional[int] = None,
                       log: Optional[Callable[[str], None]] = None,
                       summary_writer=None) -> TrainResult:
    """Train (resuming from `workdir` if it holds a checkpoint) up to config.num_steps.

    dataset: an object with `batches(batch_size, seed, start_step)` yielding host batches
    (dicts of numpy arrays), e.g. `facerecon_jax.training.data.Dataset`.
    `max_steps`: stop earlier (used to simulate an interrupted run).
    """
    log = log or logging.info
    spec = step_spec(config, face_model)
    supervision, consistency = spec.supervision, spec.consistency
    views = int(config.data.get("views_per_person", 1))
    if supervision is not None and not getattr(dataset, "has_coeffs", False):
        raise ValueError("the supervised term (config.supervised.weight > 0) needs ground-truth "
                         "coefficients: train on generated faces (data.synthetic_examples or "
                         "facerecon-prepare-data --synthetic), or set supervised.weight 0")
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    n_local = jax.local_device_count()
    host_batch = config.batch_size // jax.process_count()
    if host_batch % n_local:
        raise ValueError(f"batch_size {config.batch_size} must split over {jax.process_count()} "
                         f"hosts x {n_local} devices")
    if views > 1 and (host_batch // n_local) % views:
        raise ValueError(f"each device's {host_batch // n_local} images must be whole people of "
                         f"data.views_per_person {views}: make batch_size a multiple of "
                         f"{views * n_local * jax.process_count()}")
    layout = spec.layout
    net = config_rnet(config, layout.size)
    by_person = {"views_per_person": views} if views > 1 else {}
    if hasattr(dataset, "steps_per_epoch"):
        steps_per_epoch = max(1, dataset.steps_per_epoch(host_batch, **by_person))
    else:
        steps_per_epoch = max(1, getattr(dataset, "num_examples", config.batch_size)
                              // config.batch_size)
    num_steps = (config.num_epochs * steps_per_epoch if config.num_epochs
                 else config.num_steps)
    tx = optax.adam(make_schedule(config, steps_per_epoch))
    ema_decay = float(config.get("ema_decay", 0.0))
    state = create_train_state(jax.random.PRNGKey(config.seed), net, config.image_size, tx,
                               ema_decay)
    if config.backbone_checkpoint:
        state = start_ema(load_backbone(state, config.backbone_checkpoint))
    mngr = checkpoint_manager(workdir, config.keep_checkpoints)
    state, meta = restore_checkpoint(mngr, state, log=log)
    start = int(state.step)
    if meta is not None:
        log(f"resumed from {workdir / 'checkpoints'} at step {start}")
        changed = data_settings_changed(meta.get("config", {}), config)
        if changed:
            msg = (f"the data settings differ from the checkpoint's ({'; '.join(changed)}): the "
                   f"run goes on from step {start} over the data as now configured")
            log("WARNING: " + msg)
    meta_out = {"arch": config.arch, "num_outputs": layout.size, "image_size": config.image_size,
                "light": config.light, "width": config.width, "head": config.head,
                "stem": config.stem, "seed": config.seed, "ema": bool(ema_decay),
                "face_model": face_model.info.get("name", ""),
                "config": json.loads(config.to_json_best_effort())}
    rstate = replicate(state)
    r_model = replicate(face_model.to_jax())
    r_embed = replicate(embed_params) if spec.weights.per > 0 else None
    end = num_steps if max_steps is None else min(num_steps, max_steps)
    history = []
    t0 = time.perf_counter()
    keys = ("image", "landmarks", "attention") + (
        ("coeffs", "coeffs_valid", "shape_valid", "flip_only") if supervision is not None
        else ()) + (("mirrored",) if consistency is not None or supervision is not None else ())
    host_batches = dataset.batches(host_batch, seed=config.seed, start_step=start,
                                   **({"augment": config.data.augment}
                                      if "data" in config and hasattr(dataset, "make_batch")
                                      else {}), **by_person)
    device_batches = data.prefetch_to_device(
        ({k: v for k, v in b.items() if k in keys} for b in host_batches), size=2)
    unchecked = []            # (step, metrics on the device) since the last fetch
    alone = supervised_alone_spec(spec)
    for step in range(start, end):
        s = alone if alone is not None and step < supervision.alone_steps else spec
        rstate, metrics = p_train_step(rstate, next(device_batches), r_model, r_embed, s)
        unchecked.append((step + 1, metrics))
        done = step + 1
        log_now = done % config.log_every == 0 or done == end
        save_now = done % config.checkpoint_every == 0 or done == end
        if not (log_now or save_now):
            continue
        # one transfer for every step since the last one; the NaN guard checks them all
        # before anything is logged or saved
        fetched = jax.device_get([m for _, m in unchecked])
        for (s, _), mm in zip(unchecked, fetched):
            m = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in mm.items()}
            if m["finite"] < 1:
                raise TrainingDivergedError(
                    f"non-finite loss or gradient at step {s} (loss={m['loss']}); training "
                    f"stopped without applying the update. The last good checkpoint (step "
                    f"{mngr.latest_step()}) in {workdir / 'checkpoints'} is kept; resume from "
                    f"it after checking the data and the learning rate.")
            history.append({"step": s, **m})
        unchecked.clear()
        m = history[-1]
        if log_now:
            elapsed = time.perf_counter() - t0
            rate = (done - start) / elapsed
            eta = (end - done) / rate if rate > 0 else float("nan")
            terms = " ".join(f"{k}={m[k]:.4g}" for k in ("loss", "photo", "lan", "per", "coef",
                                                          "tex", "gamma", "supervised",
                                                          "consistency")
                             if k in m)
            log(f"step {done}/{end} {terms} | {rate * config.batch_size:.1f} images/s | "
                f"ETA {eta / 60:.1f} min")
            if summary_writer is not None:
                for k, v in m.items():
                    summary_writer.add_scalar(f"train/{k}", v, done)
                summary_writer.add_scalar("train/images_per_second",
                                          rate * config.batch_size, done)
                summary_writer.flush()
        if save_now:
            save_checkpoint(mngr, flax.jax_utils.unreplicate(rstate), {**meta_out, "step": done})
    return TrainResult(end, history, str(workdir))


def evaluate_synthetic(predict, face_model, layout: CoeffLayout, examples: Dict[str, np.ndarray],
                       camera: cam.Camera, batch: int = 32) -> Dict[str, float]:
    """Landmark error (NME, inter-ocular) and shape error (RMSE of the unposed shape in mm,
    after removing the mean offset) of R-Net predictions against synthetic ground truth, and
    the same for the mean face (x = 0) as the baseline."""
    from facerecon_jax.render import renderer  # noqa: PLC0415

    m = face_model.to_jax()
    images = examples["image"].astype(np.float32) / 255.0 if examples["image"].dtype == np.uint8 \
        else examples["image"]
    preds = predict_all(predict, images, batch)
    gt = jnp.asarray(examples["coeffs"])

    def rmse_mm(id_a, exp_a, id_b, exp_b):
        d = np.asarray(shape_difference_mm(m, id_a, exp_a, id_b, exp_b))
        return float(np.mean(np.sqrt(np.mean(np.sum(d ** 2, -1), -1))))

    def scores(x):
        parts, tparts = layout.split(jnp.asarray(x)), layout.split(gt)
        lm = np.asarray(renderer.face_vertices(m, parts, camera)["landmarks"])
        nme = metrics.landmark_nme(lm, np.asarray(examples["landmarks"]))
        zero = jnp.zeros_like(parts["exp"])
        return (float(np.mean(nme)), rmse_mm(parts["id"], parts["exp"], tparts["id"],
                                             tparts["exp"]),
                rmse_mm(parts["id"], zero, tparts["id"], zero))

    nme, rmse, rmse_id = scores(preds)
    nme0, rmse0, rmse_id0 = scores(np.zeros_like(preds))
    corr = identity_correlations(layout, preds, examples["coeffs"])
    return {"landmark_nme": nme, "shape_rmse_mm": rmse, "mean_face_landmark_nme": nme0,
            "mean_face_shape_rmse_mm": rmse0, "identity_shape_rmse_mm": rmse_id,
            "mean_face_identity_shape_rmse_mm": rmse_id0,
            "identity_correlation_first10": corr,
            "identity_correlation_first10_se": [correlation_standard_error(r, len(images))
                                                for r in corr],
            "examples": int(len(images))}


def identity_correlations(layout: CoeffLayout, x, truth, modes: int = 10) -> list:
    """Correlation over the rows of coefficient vectors x (N, D) of each of the first `modes`
    identity coefficients with the truth's (N, D); 0 where x does not vary."""
    pid = np.asarray(layout.split(np.asarray(x))["id"])
    tid = np.asarray(layout.split(np.asarray(truth))["id"])
    return [float(np.corrcoef(pid[:, k], tid[:, k])[0, 1]) if pid[:, k].std() > 0 else 0.0
            for k in range(min(modes, pid.shape[1]))]


def correlation_standard_error(r: float, n: int) -> float:
    """Large-sample standard error of a correlation r measured over n pairs drawn from a
    bivariate normal: (1 - r^2) / sqrt(n - 1). Over 128 faces a correlation near 0.5 is known
    to +-0.07, over 1,024 to +-0.02."""
    return float((1.0 - r * r) / np.sqrt(max(n - 1, 1)))


def predict_all(predict, images, batch: int = 32) -> np.ndarray:
    """R-Net's `predict` over images (N, H, W, 3) (uint8 or [0, 1]) in batches -> (N, D)."""
    images = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images
    return np.concatenate([np.asarray(predict(jnp.asarray(images[i:i + batch])))
                           for i in range(0, len(images), batch)])


def evaluate_people(predict, face_model, layout: CoeffLayout, examples: Dict[str, np.ndarray],
                    views: int, n_init: int = 10) -> Dict[str, float]:
    """Multi-image R-Net on generated people (`examples` from `synthetic.generate` with
    views_per_person = `views`): the identity-only shape error (mm, as `evaluate_synthetic`)
    of each image's prediction, of each person's average of them (shape averaging) and of the
    paper's per-person k-means centre (`aggregate.aggregate_person`, identity fields), against
    the mean face's."""
    from facerecon_jax.aggregation import aggregate  # noqa: PLC0415
    m = face_model.to_jax()
    preds = predict_all(predict, examples["image"])
    pid = np.asarray(layout.split(jnp.asarray(preds))["id"])
    tid = np.asarray(layout.split(jnp.asarray(examples["coeffs"]))["id"])
    n_people = len(pid) // views

    def rmse_mm(ids, true_ids):
        zero = jnp.zeros((len(ids), face_model.n_exp), jnp.float32)
        d = np.asarray(shape_difference_mm(m, jnp.asarray(ids), zero, jnp.asarray(true_ids),
                                           zero))
        return float(np.mean(np.sqrt(np.mean(np.sum(d ** 2, -1), -1))))

    truth = tid[::views]
    groups = preds[:n_people * views].reshape(n_people, views, -1)
    centres = np.stack([aggregate.aggregate_person([str(j) for j in range(views)], g, layout,
                                                   n_init=n_init).vector for g in groups])
    return {"people": int(n_people), "views_per_person": int(views),
            "single_identity_shape_rmse_mm": rmse_mm(pid, tid),
            "averaging_identity_shape_rmse_mm": rmse_mm(groups.mean(1)[:, layout.slices()["id"]],
                                                        truth),
            "kmeans_identity_shape_rmse_mm": rmse_mm(
                np.asarray(layout.split(jnp.asarray(centres))["id"]), truth),
            "mean_face_identity_shape_rmse_mm": rmse_mm(np.zeros_like(truth), truth)}


def run_training(config: ml_collections.ConfigDict, workdir, max_steps: Optional[int] = None
                 ) -> int:
    """The whole facerecon-train run once flags are parsed (and multi-host JAX initialised):
    the face model, the data, the loop with TensorBoard summaries, and the held-out report
    (<workdir>/eval.json) when the run is complete. Returns the exit status (3: diverged)."""
    from facerecon_jax.io import export  # noqa: PLC0415
    from facerecon_jax.models.model_loading import load_face_model  # noqa: PLC0415
    from facerecon_jax.photo import face_embedding  # noqa: PLC0415
    workdir = pathlib.Path(workdir)

    def log(msg):
        if jax.process_index() == 0:
            print(msg, flush=True)
    face_model = load_face_model(config.face_model)
    dataset = training_data(config, workdir, face_model, log)
    embed = face_embedding.load_face_embedding() if config.perceptual else None
    writer = None
    if jax.process_index() == 0:
        from tensorboardX import SummaryWriter  # noqa: PLC0415
        writer = SummaryWriter(str(workdir / "tensorboard"))
    try:
        result = train_and_evaluate(config, str(workdir), dataset, face_model, embed,
                                    max_steps=max_steps, log=log, summary_writer=writer)
    except TrainingDivergedError as e:
        logging.error("%s", e)
        print(f"facerecon-train: error: {e}", file=sys.stderr)
        return 3
    if config.eval_examples and jax.process_index() == 0 and result.step >= config.num_steps:
        report = held_out_report(config, workdir, face_model)
        export.write_text(workdir / "eval.json", json.dumps(report, indent=2))
        log("held-out synthetic faces: " + json.dumps(report))
    return 0


def training_data(config: ml_collections.ConfigDict, workdir, face_model, log=print):
    """The Dataset a config trains on: shards from facerecon-prepare-data (config.data.dir), or
    config.data.synthetic_examples generated faces kept in the workdir (generated again, with
    a warning, when the workdir holds another number of them)."""
    from facerecon_jax.io import cli, progress  # noqa: PLC0415
    from facerecon_jax.training import synthetic  # noqa: PLC0415
    if config.data.synthetic_examples:
        layout = CoeffLayout.for_model(face_model, config.light)
        data_dir = (pathlib.Path(workdir)
                    / f"synthetic_{config.data.synthetic_condition}_{config.image_size}")
        index = data_dir / "index.json"
        views = int(config.data.get("views_per_person", 1))
        want = (config.data.synthetic_examples, views)
        have = None
        if index.exists():
            meta = json.loads(index.read_text())
            have = (meta["num_examples"],
                    int(meta.get("synthetic", {}).get("views_per_person", 1)))
        if have is not None and have != want:
            log(f"WARNING: {data_dir} holds {have[0]} synthetic faces ({have[1]} per person), the "
                f"config asks for {want[0]} ({want[1]} per person): generating them again")
        if have != want:
            logging.info("generating %d synthetic faces into %s",
                         config.data.synthetic_examples, data_dir)
            bar = progress.Progress(config.data.synthetic_examples, unit="face")
            synthetic.write_synthetic_shards(data_dir, face_model, layout,
                                             config.data.synthetic_examples, seed=config.seed,
                                             condition=config.data.synthetic_condition,
                                             size=config.image_size, overwrite=True,
                                             views_per_person=views, progress=bar)
            bar.close()
    else:
        data_dir = pathlib.Path(config.data.dir)
    dataset = data.Dataset(data_dir, augment_config=data.augment_config_from(config.data))
    if dataset.image_size != config.image_size:
        raise cli.UsageError(f"{data_dir} holds {dataset.image_size} px images, the config "
                             f"trains at {config.image_size} px: set --config.image_size")
    return dataset


def held_out_faces(config: ml_collections.ConfigDict, face_model, layout: CoeffLayout,
                   size: Optional[int] = None) -> Dict[str, np.ndarray]:
    """The config's config.eval_examples held-out generated faces (another seed than
    training's), at `size` (default: the config's image_size): what `held_out_report` scores."""
    from facerecon_jax.training import synthetic  # noqa: PLC0415
    return synthetic.generate(face_model, layout, config.eval_examples,
                              seed=config.seed + 10_000,
                              condition=config.data.synthetic_condition,
                              size=size or config.image_size)


def held_out_report(config: ml_collections.ConfigDict, workdir, face_model) -> dict:
    """R-Net of `workdir` on config.eval_examples held-out generated faces (another seed than
    training's): landmark NME and shape RMSE against the mean face's; with config.eval_people
    and eval_views_per_person, also held-out people in several images each
    (`evaluate_people`: single image, averaging and k-means against the mean face); with
    config.eval_mirror, every figure again for the mirror-averaged predictions
    (report["mirror_average"]; `load_predictor`'s mirror_model)."""
    from facerecon_jax.training import synthetic  # noqa: PLC0415
    layout = CoeffLayout.for_model(face_model, config.light)
    held = held_out_faces(config, face_model, layout)
    people, views = int(config.get("eval_people", 0)), int(config.get("eval_views_per_person", 0))
    groups = None
    if people and views:
        groups = synthetic.generate(face_model, layout, people * views, seed=config.seed + 20_000,
                                    condition=config.data.synthetic_condition,
                                    size=config.image_size, views_per_person=views)

    def scores(predict):
        out = evaluate_synthetic(predict, face_model, layout, held, training_camera(config))
        if groups is not None:
            out["multi_image"] = evaluate_people(predict, face_model, layout, groups, views)
        return out
    report = scores(load_predictor(workdir)[0])
    if config.get("eval_mirror", False):
        report["mirror_average"] = scores(load_predictor(workdir, mirror_model=face_model)[0])
    return report
