"""Every file in configs/ builds, and runs one tiny step of what it configures (a training
step, a fit, a render): a broken or renamed key cannot land. Sizes are overridden to tiny ones;
every other key is the file's own."""
import dataclasses
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from facerecon_jax.geometry import camera as cam
from facerecon_jax.fit import fitting
from facerecon_jax.geometry import coefficients
from facerecon_jax.io import config_files
from facerecon_jax.models import grid_model
from facerecon_jax.pipeline import render_job
from facerecon_jax.training import data, synthetic, train

CONFIG_DIR = pathlib.Path(__file__).resolve().parent.parent / "configs"
FILES = sorted(p for p in CONFIG_DIR.glob("*.py") if p.name != "__init__.py")
SIZE = 32


@pytest.fixture(scope="module")
def grid():
    return grid_model.grid_model(10, n_id=4, n_exp=3, n_tex=3)


@pytest.fixture(scope="module")
def shards(grid, tmp_path_factory):
    out = {}
    for light in ("mono", "rgb"):
        d = tmp_path_factory.mktemp(f"shards_{light}")
        layout = coefficients.CoeffLayout.for_model(grid, light)
        synthetic.write_synthetic_shards(d, grid, layout, 4, seed=1, condition="indoor",
                                         shard_size=4, size=SIZE, overwrite=True)
        out[light] = data.Dataset(d, process_index=0, process_count=1)
    return out


def test_every_config_file_is_covered():
    names = {p.stem for p in FILES}
    assert {"paper", "debug", "deep3d", "tpu_pod", "reconstruct", "evaluate", "render"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_config_runs_one_tiny_step(path, grid, shards, tmp_path):
    c = config_files.get_config(path)
    if "num_steps" in c:                              # training: one step, traced
        # (tracing builds the network, the loss, the schedule and the whole step from the
        # file's keys without compiling; tests/test_train.py runs real steps of debug.py)
        c.arch, c.width, c.image_size, c.batch_size = "resnet18", 2, SIZE, 2
        c.perceptual = False
        model = grid
        if c.supervised.get("mirror_flips", False):
            # flipped pictures read through the model's mirror maps want a left-right symmetric
            # model: 48 identity modes span every smooth displacement of the grid, mirrors too
            model = grid_model.grid_model(10, n_id=48, n_exp=3, n_tex=3)
        net, layout, loss, _ = train.make_training(c, model, None, axis_name=None)
        tx = optax.adam(train.make_schedule(c, steps_per_epoch=10))
        state = jax.eval_shape(lambda: train.create_train_state(
            jax.random.PRNGKey(c.seed), net, SIZE, tx, c.get("ema_decay", 0.0)))
        batch = next(shards[c.light].batches(2, augment=c.data.augment))
        batch = {k: jnp.asarray(batch[k]) for k in ("image", "landmarks", "attention")}
        new_state, metrics = jax.eval_shape(
            functools.partial(train.train_step, hybrid_loss=loss), state, batch)
        assert metrics["loss"].shape == () and layout.size > 0
        assert jax.tree_util.tree_structure(new_state.params) == \
            jax.tree_util.tree_structure(state.params)
        if c.get("ema_decay", 0.0):                  # the weights' average, kept beside them
            assert jax.tree_util.tree_structure(new_state.ema_params) == \
                jax.tree_util.tree_structure(state.params)
    elif "steps_landmark" in c or "fit" in c:        # fitting (reconstruct, evaluate)
        fit = c.fit if "fit" in c else c
        fit.steps_landmark, fit.steps, fit.perceptual = 2, 1, False
        cfg = fitting.FitConfig.from_config(fit)
        layout = coefficients.CoeffLayout.for_model(grid, fit.light)
        batch = next(shards[fit.light].batches(2, augment=False))
        cfg = dataclasses.replace(cfg, camera=cam.Camera().scaled(SIZE), size=None)
        b = fitting.prepare_batch(batch["image"], batch["landmarks"], batch["attention"])
        x, hist = fitting.fit(grid, layout, b, cfg)
        assert np.all(np.isfinite(np.asarray(x)))
        assert hist["hybrid"]["total"].shape == (1, 2)
    else:                                             # rendering
        c.size = SIZE
        layout, parts = render_job.face_parts(
            grid, coefficients.CoeffLayout.for_model(grid, c.light), random=True, seed=1)
        written = render_job.render_and_write(grid, layout, parts, c, tmp_path, "face")
        assert all(pathlib.Path(w).exists() for w in written)
