"""The train step across devices, resume after a kill, and the NaN guard (tiny shapes)."""
import dataclasses
import os
import subprocess
import sys
import textwrap

import jax
import ml_collections
import numpy as np
import pytest

from configs import debug
from facerecon_jax.models import grid_model
from facerecon_jax.training import data, rnet, synthetic, train
from facerecon_jax.geometry.coefficients import CoeffLayout

SIZE = 32


def tiny_config(**kw):
    """configs/debug.py (the smallest shipped config), shrunk: what the tests change is named."""
    c = debug.get_config()
    c.update(dict(width=4, light="mono", image_size=SIZE, batch_size=8, learning_rate=1e-3,
                  num_steps=4, log_every=2, checkpoint_every=2, keep_checkpoints=5,
                  eval_examples=0))
    c.data.synthetic_examples = 0          # the tests pass their own (tiny) dataset
    c.data.augment = True                  # exercise the augmentation path
    c.supervised.update(steps=1000, alone_steps=0)   # the term beside the hybrid loss
    c.update(kw)
    return c


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model = grid_model.grid_model(12, n_id=4, n_exp=3, n_tex=3)
    layout = CoeffLayout.for_model(model, "mono")
    d = tmp_path_factory.mktemp("shards")
    synthetic.write_synthetic_shards(d, model, layout, 24, seed=1, condition="indoor",
                                     shard_size=8, size=SIZE, overwrite=True)
    return model, data.Dataset(d, process_index=0, process_count=1)


def test_resume_after_kill_gives_the_same_trajectory(tiny, tmp_path):
    """A killed run resumes on the same trajectory: losses, and the weights' moving average
    (`ema_decay`), which prediction then uses."""
    import jax.numpy as jnp

    model, ds = tiny
    cfg = tiny_config(ema_decay=0.9)
    full = train.train_and_evaluate(cfg, str(tmp_path / "a"), ds, model, log=lambda m: None)
    part = train.train_and_evaluate(cfg, str(tmp_path / "b"), ds, model, max_steps=2,
                                    log=lambda m: None)
    assert part.step == 2 and len(part.history) == 2
    said = []
    rest = train.train_and_evaluate(cfg, str(tmp_path / "b"), ds, model, log=said.append)
    assert not any("differ" in m for m in said)
    assert [h["step"] for h in rest.history] == [3, 4]      # resumed, did not start over
    resumed = [h["loss"] for h in part.history + rest.history]
    np.testing.assert_allclose(resumed, [h["loss"] for h in full.history], rtol=1e-5)
    images = jnp.asarray(next(ds.batches(8, seed=3, augment=False))["image"])
    full_ema, meta = train.load_predictor(tmp_path / "a")
    resumed_ema, _ = train.load_predictor(tmp_path / "b")
    full_raw, _ = train.load_predictor(tmp_path / "a", ema=False)
    assert meta["ema"] is True
    np.testing.assert_allclose(np.asarray(resumed_ema(images)), np.asarray(full_ema(images)),
                               rtol=1e-4, atol=1e-6)
    assert np.abs(np.asarray(full_ema(images)) - np.asarray(full_raw(images))).max() > 1e-6
    # resumed with other data settings: said, not silent (issue 11, item 11)
    changed = tiny_config(data=ml_collections.ConfigDict({"augment": False}))
    train.train_and_evaluate(changed, str(tmp_path / "b"), ds, model, log=said.append)
    assert any("data settings differ" in m and "data.augment True -> False" in m for m in said)
    pa, _ = train.load_predictor(tmp_path / "a")
    pb, _ = train.load_predictor(tmp_path / "b")
    x = np.random.default_rng(0).uniform(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(pa(x)), np.asarray(pb(x)), rtol=1e-4, atol=1e-6)


class _PoisonedDataset:
    """Wraps a dataset; the batch of one step has a NaN pixel."""

    def __init__(self, ds, bad_step):
        self.ds, self.bad_step = ds, bad_step
        self.num_examples = ds.num_examples
        self.has_coeffs = ds.has_coeffs

    def steps_per_epoch(self, b):
        return self.ds.steps_per_epoch(b)

    def batches(self, batch_size, seed, start_step=0, **kw):
        for step, b in enumerate(self.ds.batches(batch_size, seed, start_step, **kw), start_step):
            if step == self.bad_step:
                b = dict(b)
                b["image"] = b["image"].copy()
                b["image"][0, 5, 5, 0] = np.nan
            yield b


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tiny, tmp_path):
    model, ds = tiny
    cfg = tiny_config(num_steps=6, checkpoint_every=2)
    with pytest.raises(train.TrainingDivergedError,
                       match=r"step 4.*last good checkpoint \(step 2\)"):
        train.train_and_evaluate(cfg, str(tmp_path), _PoisonedDataset(ds, bad_step=3), model,
                                 log=lambda m: None)
    mngr = train.checkpoint_manager(tmp_path)
    assert mngr.all_steps() == [2]
    predict, meta = train.load_predictor(tmp_path)
    assert meta["step"] == 2
    assert train.checkpoint_meta(tmp_path) == meta          # the same record, no parameters
    assert train.checkpoint_meta(tmp_path / "checkpoints", step=2)["step"] == 2
    with pytest.raises(FileNotFoundError, match="no R-Net checkpoints"):
        train.checkpoint_meta(tmp_path / "elsewhere")
    out = np.asarray(predict(np.zeros((1, SIZE, SIZE, 3), np.float32)))
    assert np.all(np.isfinite(out))


def test_pmapped_step_on_8_devices_equals_single_device_step(tmp_path):
    """Run in a fresh process with 8 host CPU devices."""
    script = textwrap.dedent(f"""
        import functools, jax, jax.numpy as jnp, numpy as np, optax, flax
        from facerecon_jax.fit import losses
        from facerecon_jax.models import grid_model
        from facerecon_jax.training import data, rnet, synthetic, train
        from facerecon_jax.geometry import camera as cam
        from facerecon_jax.geometry.coefficients import CoeffLayout
        assert jax.local_device_count() == 8, jax.devices()
        model = grid_model.grid_model(12, n_id=4, n_exp=3, n_tex=3)
        layout = CoeffLayout.for_model(model, "mono")
        ex = synthetic.generate(model, layout, 16, seed=2, condition="indoor", size={SIZE})
        batch = {{"image": ex["image"].astype(np.float32) / 255, "landmarks": ex["landmarks"],
                 "attention": ex["attention"]}}
        hybrid = losses.make_hybrid_loss(model.to_jax(), layout, camera=cam.Camera().scaled({SIZE}))
        tx = optax.sgd(0.05)
        single_net = rnet.make_rnet("resnet18", layout.size, width=4)
        multi_net = rnet.make_rnet("resnet18", layout.size, axis_name="batch", width=4)
        s0 = train.create_train_state(jax.random.PRNGKey(0), single_net, {SIZE}, tx)
        # a non-zero head so that gradients reach the whole backbone
        leaves = jax.tree_util.tree_leaves
        head = jax.tree_util.tree_map(
            lambda p: 0.01 * jax.random.normal(jax.random.PRNGKey(1), p.shape), s0.params["head"])
        s0 = s0.replace(params={{**s0.params, "head": head}})
        one, m1 = jax.jit(functools.partial(train.train_step, hybrid_loss=hybrid))(s0, batch)
        sm = s0.replace(apply_fn=multi_net.apply)
        # the module-level pmapped step: model and spec as arguments
        spec = train.StepSpec(layout, cam.Camera().scaled({SIZE}), losses.LossWeights())
        r_model = train.replicate(model.to_jax())
        traced, build = [], losses.make_hybrid_loss     # the loss is built only when tracing
        losses.make_hybrid_loss = lambda *a, **k: (traced.append(1), build(*a, **k))[1]
        many, m8 = train.p_train_step(train.replicate(sm), data.shard_for_devices(batch),
                                      r_model, None, spec)
        many = flax.jax_utils.unreplicate(many)
        # a second run with an equal spec (another object) reuses the compiled program
        spec2 = train.StepSpec(layout, cam.Camera().scaled({SIZE}), losses.LossWeights())
        train.p_train_step(train.replicate(sm), data.shard_for_devices(batch), r_model, None,
                           spec2)
        assert len(traced) == 1, len(traced)
        np.testing.assert_allclose(float(m1["loss"]), float(m8["loss"][0]), rtol=1e-5)
        for a, b in zip(leaves(one.params), leaves(many.params)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
        for a, b in zip(leaves(one.batch_stats), leaves(many.batch_stats)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
        moved = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in
                    zip(leaves(one.params), leaves(s0.params)))
        assert moved > 1e-4, moved
        print("OK", float(m1["loss"]))
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=900, cwd=str(tmp_path))
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout[-3000:] + res.stderr[-5000:]


def test_head_is_zero_initialised():
    net = rnet.make_rnet("resnet18", 30, width=4)
    v = train.init_variables(net, jax.random.PRNGKey(0), SIZE)
    out = jax.jit(net.apply)(v, np.random.default_rng(0).uniform(size=(3, SIZE, SIZE, 3)))
    assert np.all(np.asarray(out) == 0)
    assert np.abs(np.asarray(v["params"]["stem"]["kernel"])).max() > 0  # drawn, not zero


def test_flatten_head_generalises_the_mean_head():
    """head="flatten" feeds every cell of the last feature map to the linear head: it starts at
    zero too, and with each cell's weights set to the mean head's / number of cells it is the
    mean head (global average pooling) exactly; a typo'd head is refused."""
    mean_net = rnet.make_rnet("resnet18", 30, width=4)
    flat_net = rnet.make_rnet("resnet18", 30, width=4, head="flatten")
    img = np.random.default_rng(0).uniform(size=(3, 64, 64, 3)).astype(np.float32)
    vm = train.init_variables(mean_net, jax.random.PRNGKey(0), 64)
    vf = train.init_variables(flat_net, jax.random.PRNGKey(0), 64)
    assert np.all(np.asarray(jax.jit(flat_net.apply)(vf, img)) == 0)
    kernel = np.asarray(vf["params"]["head"]["kernel"])
    channels = vm["params"]["head"]["kernel"].shape[0]
    cells = (64 // 32) ** 2                                   # a 2 x 2 map at 64 px
    assert kernel.shape == (cells * channels, 30)
    w = np.random.default_rng(1).normal(size=(channels, 30)).astype(np.float32)
    b = np.random.default_rng(2).normal(size=(30,)).astype(np.float32)
    pm = dict(vm["params"], head={"kernel": w, "bias": b})
    pf = dict(vm["params"], head={"kernel": np.tile(w / cells, (cells, 1)), "bias": b})
    out_mean = jax.jit(mean_net.apply)({"params": pm, "batch_stats": vm["batch_stats"]}, img)
    out_flat = jax.jit(flat_net.apply)({"params": pf, "batch_stats": vm["batch_stats"]}, img)
    np.testing.assert_allclose(np.asarray(out_flat), np.asarray(out_mean), rtol=1e-4, atol=1e-5)
    assert np.abs(np.asarray(out_mean)).max() > 1e-2
    with pytest.raises(ValueError, match="head"):
        rnet.make_rnet("resnet18", 30, head="flat")


def test_patch_stem_maps_each_4x4_patch_linearly_and_loads_from_its_checkpoint(tmp_path):
    """stem="patch": the first feature map is the stem kernel applied to each non-overlapping
    4 x 4 patch of the normalised image (numpy's einsum over the patches, an independent
    reading of it), at the 1/4 resolution the paper's stem reaches after its max pooling, so
    the rest of the network is the same tree of the same shapes; a checkpoint records the stem
    and `load_predictor` rebuilds it (the same predictions); a typo'd stem is refused."""
    import jax.numpy as jnp
    import optax

    size = 32
    patch = rnet.make_rnet("resnet18", 30, width=4, stem="patch")
    paper = rnet.make_rnet("resnet18", 30, width=4)
    vp = train.init_variables(patch, jax.random.PRNGKey(0), size)
    vi = train.init_variables(paper, jax.random.PRNGKey(0), size)
    kernel = np.asarray(vp["params"]["stem"]["kernel"])
    assert kernel.shape == (4, 4, 3, 4)
    shapes = lambda v: {jax.tree_util.keystr(k): np.shape(x)            # noqa: E731
                        for k, x in jax.tree_util.tree_leaves_with_path(v)}
    sp, si = shapes(vp), shapes(vi)
    assert set(sp) == set(si)
    assert {k for k in sp if sp[k] != si[k]} == {"['params']['stem']['kernel']"}

    img = np.random.default_rng(0).uniform(size=(2, size, size, 3)).astype(np.float32)
    _, inter = jax.jit(lambda v, x: patch.apply(
        v, x, capture_intermediates=lambda m, _: m.name == "stem",
        mutable=["intermediates"]))(vp, img)
    got = np.asarray(inter["intermediates"]["stem"]["__call__"][0])
    x = (img - np.asarray(rnet.IMAGENET_MEAN)) / np.asarray(rnet.IMAGENET_STD)
    cells = x.reshape(2, size // 4, 4, size // 4, 4, 3)
    want = np.einsum("bpiqjc,ijco->bpqo", cells, kernel)
    assert got.shape == (2, size // 4, size // 4, 4)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

    # a head that is not zero, so the predictions say which network was rebuilt
    params = dict(vp["params"], head={
        "kernel": np.random.default_rng(1).normal(size=(32, 30)).astype(np.float32),
        "bias": np.zeros(30, np.float32)})
    state = train.TrainState.create(apply_fn=patch.apply, params=params, tx=optax.adam(1e-3),
                                    batch_stats=vp["batch_stats"])
    state = state.replace(step=jnp.zeros((), jnp.int32))
    train.save_checkpoint(train.checkpoint_manager(tmp_path), state, {
        "arch": "resnet18", "num_outputs": 30, "image_size": size, "width": 4,
        "head": "mean", "stem": "patch", "ema": False})
    predict, meta = train.load_predictor(tmp_path)
    want = jax.jit(patch.apply)({"params": params, "batch_stats": vp["batch_stats"]}, img)
    np.testing.assert_allclose(np.asarray(predict(img)), np.asarray(want), rtol=1e-5,
                               atol=1e-6)
    assert np.abs(np.asarray(want)).max() > 1e-3
    with pytest.raises(ValueError, match="stem"):
        rnet.make_rnet("resnet18", 30, stem="patchify")


def test_resnet10_has_one_basic_block_per_stage():
    """arch "resnet10": ResNet-18's four stages with one basic block each instead of two (the
    blocks of the parameter tree: 4 against 8), at the same widths."""
    def blocks(arch):
        v = train.init_variables(rnet.make_rnet(arch, 30, width=4), jax.random.PRNGKey(0), 32)
        return {k: np.shape(b["Conv_0"]["kernel"]) for k, b in v["params"].items()
                if k.startswith("BasicBlock_")}
    b10, b18 = blocks("resnet10"), blocks("resnet18")
    assert len(b10) == 4 and len(b18) == 8
    assert [b10[f"BasicBlock_{i}"][-1] for i in range(4)] == [4, 8, 16, 32]
    assert [b18[f"BasicBlock_{2 * i}"][-1] for i in range(4)] == [4, 8, 16, 32]


def test_identity_correlations_of_planted_predictions():
    """Per-mode correlation with the truth: 1 for the truth itself (any positive scale), -1
    for its negation, 0 for a mode predicted as a constant; other fields do not enter."""
    layout = CoeffLayout.for_model(grid_model.grid_model(6, n_id=4, n_exp=2, n_tex=2), "mono")
    truth = np.random.default_rng(0).normal(size=(20, layout.size))
    pred = truth.copy()
    sl = layout.slices()["id"]
    ids = pred[:, sl]
    ids[:, 1] *= -1.0
    ids[:, 2] = 0.3
    ids[:, 3] *= 5.0
    pred[:, sl] = ids
    pred[:, sl.stop:] = 0.0
    np.testing.assert_allclose(train.identity_correlations(layout, pred, truth),
                               [1.0, -1.0, 0.0, 1.0], atol=1e-12)



def test_correlation_standard_error_matches_the_spread_of_repeated_draws():
    """The report's standard error of a correlation against a simulation: 2,000 draws of n
    pairs with a planted correlation rho; the spread of the measured r is (1 - rho^2) /
    sqrt(n - 1) within 8% (the formula's large-sample error and the simulation's noise)."""
    rng = np.random.default_rng(1)
    for rho, n in ((0.5, 128), (0.8, 64), (0.3, 1024)):
        a = rng.normal(size=(2000, n))
        b = rho * a + np.sqrt(1 - rho ** 2) * rng.normal(size=(2000, n))
        a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
        r = np.sum(a * b, 1) / np.sqrt(np.sum(a * a, 1) * np.sum(b * b, 1))
        np.testing.assert_allclose(train.correlation_standard_error(rho, n), np.std(r),
                                   rtol=0.08)

def test_supervised_warm_up_adds_the_coefficient_error_then_stops(tiny, tmp_path):
    """The supervised term (generated faces' true coefficients): R-Net's head starts at zero,
    so at step 0 it adds weight x mean ||coeffs||^2 + vertex_weight x the mean squared shape
    offset (mm^2) to the hybrid loss; past `steps` it adds nothing."""
    import jax.numpy as jnp
    import optax

    model, ds = tiny
    cfg = tiny_config()
    net, layout, hybrid, _ = train.make_training(cfg, model, None, axis_name=None)
    state = train.create_train_state(jax.random.PRNGKey(0), net, SIZE, optax.sgd(0.0))
    host = next(ds.batches(8, seed=0, augment=False))
    batch = {k: jnp.asarray(host[k]) for k in ("image", "landmarks", "attention", "coeffs",
                                               "coeffs_valid", "shape_valid")}
    sup = train.Supervision(layout, weight=0.5, steps=1, vertex_weight=0.25,
                            model=model.to_jax())
    # jitted: compiling the step once costs ~1/4 of running it eagerly (op by op)
    _, plain = jax.jit(lambda s, b: train.train_step(s, b, hybrid_loss=hybrid))(state, batch)
    sup_step = jax.jit(lambda s, b: train.train_step(s, b, hybrid_loss=hybrid, supervision=sup))
    _, on = sup_step(state, batch)
    # closed forms at x = 0: coefficient error ||coeffs||^2; shape error: the true identity and
    # expression offsets from the mean shape, in mm
    gt = host["coeffs"]
    coef = np.sum(gt ** 2, -1)
    t = layout.split(gt)
    offset = (np.einsum("bk,kvc->bvc", np.asarray(t["id"]), np.asarray(model.id_basis))
              + np.einsum("bk,kvc->bvc", np.asarray(t["exp"]), np.asarray(model.exp_basis)))
    vert = np.mean(np.sum((offset * 100.0) ** 2, -1), -1)
    want = float(np.mean(0.5 * coef + 0.25 * vert))
    assert float(np.mean(0.25 * vert)) > 0.01 * want         # both parts count
    np.testing.assert_allclose(float(on["supervised"]), want, rtol=1e-4)
    np.testing.assert_allclose(float(on["loss"]), float(plain["loss"]) + want, rtol=1e-4)
    _, off = sup_step(state.replace(step=jnp.ones((), jnp.int32)), batch)
    np.testing.assert_allclose(float(off["loss"]), float(plain["loss"]), rtol=1e-6)

    class _Photos:      # a dataset without coefficients (photo shards)
        has_coeffs = False
        num_examples = 8
    c = tiny_config()
    c.supervised.weight = 1.0
    with pytest.raises(ValueError, match="ground-truth"):
        train.train_and_evaluate(c, str(tmp_path / "run"), _Photos(), model)
    assert not (tmp_path / "run").exists()          # refused before anything was written


def test_supervised_alone_steps_leave_the_weak_terms_out_then_hand_over(tiny, tmp_path):
    """`supervised.alone_steps`: those first steps train on the supervised term only (no render:
    the logged loss is exactly the supervised term, no photometric term is logged); then the
    paper's loss with the term beside it until `supervised.steps`, then the paper's loss alone;
    a run interrupted among the supervised-alone steps resumes on the same trajectory."""
    model, ds = tiny
    cfg = tiny_config(num_steps=5)
    cfg.supervised.update(weight=0.5, vertex_weight=0.25, steps=4, alone_steps=2)
    full = train.train_and_evaluate(cfg, str(tmp_path / "a"), ds, model, log=lambda m: None)
    assert [h["step"] for h in full.history] == [1, 2, 3, 4, 5]
    for h in full.history[:2]:
        assert "photo" not in h and "lan" not in h
        np.testing.assert_allclose(h["loss"], h["supervised"], rtol=1e-6)
    for h in full.history[2:4]:                 # both: the loss holds the supervised term
        assert "photo" in h and h["loss"] > h["supervised"]
    last = full.history[4]                      # past `steps`: the paper's loss alone
    assert "photo" in last and last["loss"] < last["supervised"]
    part = train.train_and_evaluate(cfg, str(tmp_path / "b"), ds, model, max_steps=1,
                                    log=lambda m: None)
    rest = train.train_and_evaluate(cfg, str(tmp_path / "b"), ds, model, log=lambda m: None)
    np.testing.assert_allclose([h["loss"] for h in part.history + rest.history],
                               [h["loss"] for h in full.history], rtol=1e-5)
    cfg.supervised.alone_steps = 5
    with pytest.raises(ValueError, match="alone_steps"):
        train.train_and_evaluate(cfg, str(tmp_path / "c"), ds, model, log=lambda m: None)


def test_identity_consistency_term_and_multi_image_batches(tmp_path):
    """Generated people in 2 views each: the consistency term is weight x the squared distance
    of each image's identity from its person's mean (closed form on the batch), training with
    it runs and logs it, and it is refused without several images per person."""
    import jax.numpy as jnp
    import optax

    model = grid_model.grid_model(12, n_id=4, n_exp=3, n_tex=3)
    layout = CoeffLayout.for_model(model, "mono")
    d = tmp_path / "people"
    synthetic.write_synthetic_shards(d, model, layout, 16, seed=2, condition="indoor",
                                     shard_size=8, size=SIZE, overwrite=True, views_per_person=2)
    ds = data.Dataset(d, process_index=0, process_count=1)
    cfg = tiny_config(identity_consistency=0.5, num_steps=2)
    cfg.data.views_per_person = 2
    net, _, hybrid, _ = train.make_training(cfg, model, None, axis_name=None)
    state = train.create_train_state(jax.random.PRNGKey(0), net, SIZE, optax.sgd(0.0))
    # a head that reads the picture: identity predictions differ per image
    params = dict(state.params)
    params["head"] = dict(params["head"], kernel=jax.random.normal(
        jax.random.PRNGKey(1), params["head"]["kernel"].shape) * 0.1)
    state = state.replace(params=params)
    host = next(ds.batches(8, seed=0, augment=True, views_per_person=2))
    batch = {k: jnp.asarray(host[k]) for k in ("image", "landmarks", "attention", "mirrored")}
    con = train.Consistency.from_config(cfg, layout)
    _, plain = jax.jit(lambda s, b: train.train_step(s, b, hybrid_loss=hybrid))(state, batch)
    _, on = jax.jit(lambda s, b: train.train_step(s, b, hybrid_loss=hybrid,
                                                  consistency=con))(state, batch)
    x, _ = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats},
                          batch["image"], train=True, mutable=["batch_stats"])   # as the step
    x = np.asarray(x)
    ids, keep = np.asarray(layout.split(x)["id"]), 1.0 - host["mirrored"]
    want = []
    for g in range(4):
        v, k = ids[2 * g:2 * g + 2], keep[2 * g:2 * g + 2]
        mean = (v * k[:, None]).sum(0) / max(k.sum(), 1.0)
        want += list(np.sum((v - mean) ** 2, -1) * k)
    assert np.max(want) > 1e-6
    np.testing.assert_allclose(float(on["consistency"]), 0.5 * np.mean(want), rtol=1e-3,
                               atol=1e-7)
    np.testing.assert_allclose(float(on["loss"]), float(plain["loss"]) + 0.5 * np.mean(want),
                               rtol=1e-4)
    res = train.train_and_evaluate(cfg, str(tmp_path / "run"), ds, model, log=lambda m: None)
    assert res.step == 2 and all("consistency" in h for h in res.history)
    bad = tiny_config(identity_consistency=0.5)
    with pytest.raises(ValueError, match="views_per_person"):
        train.train_and_evaluate(bad, str(tmp_path / "bad"), ds, model)


def test_multi_image_report_scores_single_average_and_kmeans(tiny):
    """Planted predictions: the truth plus independent noise per view. Averaging the views
    must beat one view, and predicting the mean face must score as the mean face."""
    model, _ = tiny
    layout = CoeffLayout.for_model(model, "mono")
    g = synthetic.generate(model, layout, 24, seed=5, condition="indoor", size=SIZE,
                           views_per_person=4)
    rng = np.random.default_rng(0)
    noisy = g["coeffs"] + rng.normal(0, 0.8, g["coeffs"].shape).astype(np.float32)
    lookup = {g["image"][i].tobytes(): noisy[i] for i in range(len(noisy))}

    def predict(images):
        imgs = np.round(np.asarray(images) * 255).astype(np.uint8)
        return np.stack([lookup[im.tobytes()] for im in imgs])
    r = train.evaluate_people(predict, model, layout, g, 4, n_init=2)
    assert r["people"] == 6
    assert r["averaging_identity_shape_rmse_mm"] < 0.8 * r["single_identity_shape_rmse_mm"]
    assert r["kmeans_identity_shape_rmse_mm"] < r["single_identity_shape_rmse_mm"]
    zero = train.evaluate_people(lambda im: np.zeros((len(im), layout.size), np.float32),
                                 model, layout, g, 4, n_init=2)
    for k in ("single", "averaging", "kmeans"):
        np.testing.assert_allclose(zero[f"{k}_identity_shape_rmse_mm"],
                                   zero["mean_face_identity_shape_rmse_mm"], rtol=1e-5)


def test_supervised_shape_error_of_the_identity_alone(tiny):
    """vertex_fields "id": at the zero-initialised head the vertex part is the mean squared
    identity offset from the mean shape (mm^2), the expression left out; the same with the
    basis's Gram matrix computed once from the face model (`from_config`, what training runs)."""
    import jax.numpy as jnp

    model, ds = tiny
    layout = CoeffLayout.for_model(model, "mono")
    host = next(ds.batches(8, seed=0, augment=False))
    x = jnp.zeros_like(jnp.asarray(host["coeffs"]))
    batch = {k: jnp.asarray(host[k]) for k in ("coeffs", "coeffs_valid", "shape_valid")}
    sup = train.Supervision(layout, weight=0.0, vertex_weight=1.0, model=model.to_jax(),
                            vertex_fields="id")
    t = layout.split(host["coeffs"])
    offset = np.einsum("bk,kvc->bvc", np.asarray(t["id"]), np.asarray(model.id_basis)) * 100.0
    want = float(np.mean(np.mean(np.sum(offset ** 2, -1), -1)))
    np.testing.assert_allclose(float(sup.loss(x, batch, 0)[0]), want, rtol=1e-4)
    both = dataclasses.replace(sup, vertex_fields="id+exp")      # expression counts there
    offset = offset + np.einsum("bk,kvc->bvc", np.asarray(t["exp"]),
                                np.asarray(model.exp_basis)) * 100.0
    want_both = float(np.mean(np.mean(np.sum(offset ** 2, -1), -1)))
    assert abs(want_both - want) > 1e-3 * want
    np.testing.assert_allclose(float(both.loss(x, batch, 0)[0]), want_both, rtol=1e-4)
    # what training builds: the Gram matrix computed once from the face model, the same sums
    c = tiny_config()
    c.supervised.update(weight=0.0, vertex_weight=1.0)
    for fields, expect in (("id", want), ("id+exp", want_both)):
        c.supervised.vertex_fields = fields
        built = train.Supervision.from_config(c, layout, model)
        assert built.metric is not None
        np.testing.assert_allclose(float(built.loss(x, batch, 0)[0]), expect, rtol=1e-4)
    # a step is compiled per spec: another face model's metric makes another spec
    other = model.replace(id_basis=np.asarray(model.id_basis) * 1.5)
    assert train.Supervision.from_config(c, layout, other) != built
    assert train.Supervision.from_config(c, layout, model) == built
    c = tiny_config()
    c.supervised.update(weight=0.1, vertex_fields="exp")
    with pytest.raises(ValueError, match="vertex_fields"):
        train.Supervision.from_config(c, layout)


def test_moving_average_of_the_weights_follows_the_trajectory(tiny, tmp_path):
    """`ema_decay`: the state's parameter average is the recurrence e <- d e + (1 - d) p over
    the optimiser's parameters, d = min(decay, (1 + t) / (10 + t)) at step t, computed again
    here on the host from the recorded trajectory; a checkpoint without one starts it at its
    parameters (resuming and prediction: test_resume_after_kill_gives_the_same_trajectory)."""
    import jax.numpy as jnp
    import optax

    import flax.linen as nn

    class Small(nn.Module):       # R-Net's interface (images, train) at a tiny cost: the
        @nn.compact               # average is the same tree operation for any network
        def __call__(self, images, train=False):
            h = nn.Dense(6)(images.reshape(images.shape[0], -1))
            return nn.Dense(4)(nn.BatchNorm(use_running_average=not train)(h))

    model, ds = tiny
    cfg = tiny_config()
    state = train.create_train_state(jax.random.PRNGKey(0), Small(), SIZE, optax.adam(1e-2),
                                     ema_decay=0.7)
    host = ds.batches(8, seed=0, augment=False)
    keys = ("image", "landmarks", "attention")
    params = [jax.tree_util.tree_map(np.asarray, state.params)]
    def pull(x, batch):          # any loss that moves the weights (not the point here)
        return jnp.mean((x - 1.0) ** 2), {}
    step = jax.jit(lambda st, b: train.train_step(st, b, hybrid_loss=pull))
    for _ in range(5):
        batch = {k: jnp.asarray(v) for k, v in next(host).items() if k in keys}
        state, _ = step(state, batch)
        params.append(jax.tree_util.tree_map(np.asarray, state.params))
    want = params[0]
    for t, p in enumerate(params[1:]):
        d = min(0.7, (1 + t) / (10 + t))
        want = jax.tree_util.tree_map(lambda e, q: d * e + (1 - d) * q, want, p)
    got = jax.tree_util.tree_map(np.asarray, state.ema_params)
    for g, w, p in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want),
                       jax.tree_util.tree_leaves(params[-1])):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)
    moved = [np.abs(w - p).max() for w, p in zip(jax.tree_util.tree_leaves(want),
                                                 jax.tree_util.tree_leaves(params[-1]))]
    assert max(moved) > 1e-4                       # the average is not the last parameters

    # a checkpoint saved without an average, resumed with one: the average starts there, said
    tx = optax.adam(train.make_schedule(cfg, 1))
    plain = train.TrainState.create(apply_fn=state.apply_fn, params=state.params, tx=tx,
                                    batch_stats=state.batch_stats)
    plain = plain.replace(step=jnp.zeros((), jnp.int32))
    mngr = train.checkpoint_manager(tmp_path / "c")
    train.save_checkpoint(mngr, plain, {"ema": False})
    said = []
    zeros = jax.tree_util.tree_map(jnp.zeros_like, plain.params)
    blank = plain.replace(params=zeros, ema_params=zeros, ema_decay=0.9)
    restored, _ = train.restore_checkpoint(mngr, blank, log=said.append)
    assert any("no parameter average" in m for m in said)
    for e, p, q in zip(jax.tree_util.tree_leaves(restored.ema_params),
                       jax.tree_util.tree_leaves(restored.params),
                       jax.tree_util.tree_leaves(plain.params)):
        np.testing.assert_array_equal(np.asarray(e), np.asarray(q))
        np.testing.assert_array_equal(np.asarray(p), np.asarray(q))


def test_flipped_pictures_supervised_with_their_mirror_images(default_model, tiny, tmp_path):
    """`supervised.mirror_flips`: the augmentation's flips alone (data.augment_* ranges 0) give
    every picture flip_only = 1 and the stored picture's columns reversed; the supervised term
    then scores a flipped picture against the mirror image's coefficients (0 there, > 0 at the
    stored ones; the pose counts), and with the flag off leaves its shape and pose out. A model
    that is not left-right symmetric is refused."""
    import jax.numpy as jnp

    from facerecon_jax.geometry import camera as cam
    from facerecon_jax.geometry import mirror_image
    from facerecon_jax.models import mirror

    c = tiny_config()
    c.data.update(augment_shift=0.0, augment_rotation=0.0, augment_scale=(1.0, 1.0),
                  augment_flip=1.0)
    layout = CoeffLayout.for_model(default_model, "mono")
    d = tmp_path / "faces"
    synthetic.write_synthetic_shards(d, default_model, layout, 4, seed=3, condition="indoor",
                                     size=SIZE, overwrite=True)
    ds = data.Dataset(d, process_index=0, process_count=1,
                      augment_config=data.augment_config_from(c.data))
    flipped = next(ds.batches(4, seed=0, augment=True))
    plain = next(ds.batches(4, seed=0, augment=False))
    assert flipped["mirrored"].min() == 1 and flipped["flip_only"].min() == 1
    assert flipped["coeffs_valid"].max() == 0 and flipped["shape_valid"].max() == 0
    order = {ds.example(i)["image"].tobytes(): i for i in range(4)}
    for img in flipped["image"]:                              # each a stored picture reversed
        stored = (img[:, ::-1] * 255).round().astype(np.uint8)
        assert stored.tobytes() in order
    batch = {k: jnp.asarray(flipped[k]) for k in ("coeffs", "coeffs_valid", "shape_valid",
                                                  "flip_only", "mirrored")}
    c.supervised.update(weight=1.0, vertex_weight=0.1, vertex_fields="id", mirror_flips=True,
                        steps=0)
    sup = train.Supervision.from_config(c, layout, default_model)
    truth = batch["coeffs"]
    maps = mirror.coefficient_mirror(default_model)
    seen = mirror_image.mirror_coefficients(truth, layout, maps, cam.Camera().scaled(SIZE))
    assert float(sup.loss(seen, batch, 0)[0]) < 1e-8
    assert float(sup.loss(truth, batch, 0)[0]) > 1.0
    turned = layout.join(dict(layout.split(seen), angles=layout.split(seen)["angles"] + 0.1))
    np.testing.assert_allclose(float(sup.loss(turned, batch, 0)[0]), 3 * 0.1 ** 2, rtol=1e-3)
    # flag off: a flipped picture counts in nothing that would need its mirror image
    c.supervised.mirror_flips = False
    off = train.Supervision.from_config(c, layout, default_model)
    assert off.mirror_maps is None and off != sup
    assert float(off.loss(truth, batch, 0)[0]) == 0.0
    assert plain["mirrored"].max() == 0 and plain["flip_only"].max() == 0
    c.supervised.mirror_flips = True
    with pytest.raises(ValueError, match="not left-right symmetric"):
        train.Supervision.from_config(c, layout, tiny[0])
    for bad in ({"augment_flip": 1.5}, {"augment_scale": (1.1, 0.9)}, {"augment_shift": -1.0}):
        with pytest.raises(ValueError, match="bad augmentation ranges"):
            data.augment_config_from(bad)
