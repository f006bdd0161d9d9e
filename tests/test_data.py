"""Shards, host sharding, deterministic resumable batches, augmentation, prefetch, prepare_data."""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import skimage.data
from PIL import Image

from facerecon_jax.geometry import coefficients
from facerecon_jax.models import face_model
from facerecon_jax.training import data, synthetic

SIZE = 48


def _examples(n, size=SIZE, coeffs=False, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ex = {"image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
              "landmarks": rng.uniform(5, size - 5, (68, 2)).astype(np.float32),
              "attention": rng.uniform(0, 1, (size, size)).astype(np.float32),
              "trans_params": np.array([300, 200, 1.3, 150, 90], np.float32),
              "name": f"img{i:03d}"}
        if coeffs:
            ex["coeffs"] = rng.normal(size=7).astype(np.float32)
        out.append(ex)
    return out


def _write(path, examples, shard_size, **kw):
    w = data.ShardWriter(path, shard_size, **kw)
    for ex in examples:
        w.add(ex)
    w.skip("broken.jpg", "cannot read image")
    return w.close()


def test_shard_round_trip(tmp_path):
    exs = _examples(10, coeffs=True)
    index = _write(tmp_path, exs, 4, metadata={"note": "test"})
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["index.json", "shard-00000-of-00003.npz", "shard-00001-of-00003.npz",
                     "shard-00002-of-00003.npz"]          # no temporary files left behind
    on_disk = json.loads((tmp_path / "index.json").read_text())
    assert on_disk == index
    assert [s["count"] for s in index["shards"]] == [4, 4, 2]
    assert index["num_examples"] == 10 and index["image_size"] == SIZE and index["has_coeffs"]
    assert index["skipped"] == [{"source": "broken.jpg", "reason": "cannot read image"}]
    assert index["note"] == "test" and "y down" in index["landmark_convention"]
    z = np.load(tmp_path / "shard-00001-of-00003.npz")
    assert z["image"].dtype == np.uint8 and z["attention"].dtype == np.uint8
    assert z["landmarks"].dtype == np.float32 and z["trans_params"].shape == (4, 5)
    ds = data.Dataset(tmp_path, 0, 1)
    assert ds.num_examples == ds.num_host_examples == 10
    for i, ex in enumerate(exs):
        got = ds.example(i)
        np.testing.assert_array_equal(got["image"], ex["image"])
        np.testing.assert_array_equal(got["landmarks"], ex["landmarks"])
        np.testing.assert_array_equal(got["coeffs"], ex["coeffs"])
        np.testing.assert_allclose(got["attention"] / 255.0, ex["attention"], atol=0.5 / 255)
        assert str(got["name"]) == ex["name"]
    # an existing folder is not overwritten by accident; mixed example layouts are refused
    with pytest.raises(FileExistsError):
        data.ShardWriter(tmp_path, 4)
    w = data.ShardWriter(tmp_path, 4, overwrite=True)
    w.add(exs[0])
    with pytest.raises(ValueError, match="keys/shapes"):
        w.add(_examples(1)[0])
    assert w.close()["num_examples"] == 1
    assert len(list(tmp_path.glob("shard-*.npz"))) == 1


def test_host_sharding_partitions_the_shards(tmp_path):
    _write(tmp_path, _examples(7), 1)          # 7 shards
    for count in (1, 2, 3, 7):
        per_host = [data.Dataset(tmp_path, p, count).my_shards for p in range(count)]
        flat = sorted(s for h in per_host for s in h)
        assert flat == list(range(7))
        assert all(all(s % count == p for s in h) for p, h in enumerate(per_host))
        sizes = [data.Dataset(tmp_path, p, count).num_host_examples for p in range(count)]
        assert sum(sizes) == 7
    with pytest.raises(ValueError, match="7 shards cannot feed 8 hosts"):
        data.Dataset(tmp_path, 0, 8)


def test_resume_gives_the_same_batches(tmp_path):
    _write(tmp_path, _examples(11, coeffs=True), 3)
    ds = data.Dataset(tmp_path, 0, 1, shuffle_shards=2)
    assert ds.steps_per_epoch(4) == 2
    it = ds.batches(4, seed=5, augment=True)
    run = [next(it) for _ in range(7)]           # crosses three epoch boundaries
    fresh = data.Dataset(tmp_path, 0, 1, shuffle_shards=2)   # a restarted process
    resumed = fresh.batches(4, seed=5, start_step=4, augment=True)
    for k in range(4, 7):
        b = next(resumed)
        assert set(b) == set(run[k])
        for key in b:
            np.testing.assert_array_equal(b[key], run[k][key], err_msg=f"step {k} {key}")
    # every epoch visits distinct examples, the order changes between epochs and seeds
    o0, o1 = ds.epoch_order(5, 0), ds.epoch_order(5, 1)
    assert sorted(o0) == list(range(11)) and not np.array_equal(o0, o1)
    assert not np.array_equal(o0, ds.epoch_order(6, 0))
    b = run[0]
    assert b["image"].dtype == np.float32 and b["image"].shape == (4, SIZE, SIZE, 3)
    assert 0 <= b["image"].min() and b["image"].max() <= 1 and b["attention"].max() <= 1
    assert b["coeffs"].shape == (4, 7) and b["shape_valid"].shape == (4,)
    # without augmentation the stored examples come back as they are, and the gt is valid
    plain = next(ds.batches(4, seed=5, augment=False))
    ids = ds.batch_ids(4, 5, 0)
    np.testing.assert_array_equal(plain["image"][0] * 255.0, ds.example(ids[0])["image"])
    assert plain["coeffs_valid"].min() == 1 and plain["shape_valid"].min() == 1
    # drop_remainder=False: the last batch of an epoch is smaller
    sizes = [len(x["image"]) for x in ds.batches(4, 0, drop_remainder=False, num_epochs=1)]
    assert sizes == [4, 4, 3]


COLOURS = {30: (255, 0, 0), 36: (0, 255, 0), 45: (0, 0, 255), 48: (255, 255, 0),
           54: (0, 255, 255), 8: (255, 0, 255)}


def test_augmentation_keeps_landmarks_on_the_image_content(tmp_path):
    """Distinctly coloured dots at six landmarks; after shift / scale / rotation / flip, each
    landmark of the augmented batch sits on the dot of the point it now names."""
    size = 96
    rng = np.random.default_rng(0)
    exs = []
    for i in range(4):
        lm = rng.uniform(25, 70, (68, 2)).round()
        chosen = list(COLOURS)
        while True:   # keep the dots apart
            lm[chosen] = rng.integers(22, 74, (len(chosen), 2))
            d = np.linalg.norm(lm[chosen][:, None] - lm[chosen][None], axis=-1)
            if d[np.triu_indices(len(chosen), 1)].min() > 9:
                break
        img = np.zeros((size, size, 3), np.uint8)
        for k, c in COLOURS.items():
            x, y = lm[k].astype(int)
            img[y - 2:y + 3, x - 2:x + 3] = c
        exs.append({"image": img, "landmarks": lm, "attention": np.ones((size, size)),
                    "trans_params": np.zeros(5), "name": str(i)})
    _write(tmp_path, exs, 4)
    ds = data.Dataset(tmp_path, 0, 1)
    n_flipped = n_checked = 0
    for step, batch in zip(range(8), ds.batches(2, seed=1)):
        for j, i in enumerate(ds.batch_ids(2, 1, step)):
            m = batch["augment_matrix"][j]
            flipped = m[0, 0] < 0
            n_flipped += flipped
            assert not np.allclose(m, [[1, 0, 0], [0, 1, 0]])
            src = exs[i]["landmarks"]
            for k in COLOURS:
                # the point now named k was the stored point perm[k] if the image was flipped
                origin = data.FLIP_PERMUTATION[k] if flipped else k
                expected = np.array(COLOURS[origin]) / 255.0
                x, y = np.round(batch["landmarks"][j, k]).astype(int)
                np.testing.assert_allclose(batch["image"][j, y, x], expected, atol=0.25,
                                           err_msg=f"step {step} example {i} landmark {k}")
                # and the landmark is the stored one under the batch's matrix
                p = src[origin] @ m[:, :2].T + m[:, 2]
                np.testing.assert_allclose(batch["landmarks"][j, k], p, atol=1e-3)
                n_checked += 1
            # the attention moved with the image: black (outside) where the image is
            assert batch["attention"][j].min() < 0.5 and batch["attention"][j].max() > 0.99
    assert 0 < n_flipped < 16 and n_checked == 16 * len(COLOURS)


def test_flip_permutation(default_model):
    p = data.FLIP_PERMUTATION
    np.testing.assert_array_equal(p[p], np.arange(68))          # an involution
    assert sorted(p) == list(range(68))
    assert set(np.nonzero(p == np.arange(68))[0]) == {8, 27, 28, 29, 30, 33, 51, 57, 62, 66}
    lm = np.random.default_rng(0).uniform(0, 100, (68, 2))
    np.testing.assert_allclose(data.flip_landmarks(data.flip_landmarks(lm, 100), 100), lm)
    # the landmarks of a (nearly) symmetric face, the model's mean face seen from the front,
    # mirrored and renamed land on themselves; without the renaming they do not
    from facerecon_jax.geometry import camera
    from facerecon_jax.render import renderer
    m = default_model.to_jax()
    lay = coefficients.CoeffLayout.for_model(m, "mono")
    verts = renderer.face_vertices(m, lay.split(lay.zeros((1,))), camera.Camera())
    lm = np.asarray(verts["landmarks"][0], np.float64)
    mirrored = data.flip_landmarks(lm, 224)
    assert np.abs(mirrored - lm).max() < 1.5      # 1 px: the camera centre is 112, not 111.5
    plain = lm.copy()
    plain[:, 0] = 223 - plain[:, 0]
    assert np.linalg.norm(plain - lm, axis=1).mean() > 20


def test_synthetic_shards_and_prefetch(tmp_path, small_grid):
    lay = coefficients.CoeffLayout.for_model(small_grid, "mono")
    index = synthetic.write_synthetic_shards(tmp_path, small_grid, lay, 5, seed=2,
                                             condition="cooperative", shard_size=2, size=32,
                                             chunk=4)
    assert index["source"] == "synthetic" and index["num_examples"] == 5
    assert index["coeff_dim"] == lay.size and index["synthetic"]["condition"] == "cooperative"
    ds = data.Dataset(tmp_path, 0, 1)
    ref = synthetic.generate(small_grid, lay, 5, seed=2, condition="cooperative", size=32)
    np.testing.assert_array_equal(ds.example(3)["coeffs"], ref["coeffs"][3])
    np.testing.assert_array_equal(ds.example(3)["image"], ref["image"][3])
    batches = list(data.prefetch_to_device(ds.batches(2, seed=0, num_epochs=2), size=2))
    assert len(batches) == 4
    b = batches[0]
    assert b["image"].shape == (1, 2, 32, 32, 3) and b["coeffs"].shape == (1, 2, lay.size)
    host = ds.make_batch(ds.batch_ids(2, 0, 0), 0, 0)
    np.testing.assert_array_equal(np.asarray(b["image"])[0], host["image"])

    def broken():
        yield next(ds.batches(2, 0))
        raise RuntimeError("reader failed")
    it = data.prefetch_to_device(broken())
    next(it)
    with pytest.raises(RuntimeError, match="reader failed"):
        next(it)

    # closing the consumer early stops the producer and waits for it: nothing is left running
    def producers():
        return [t for t in threading.enumerate() if t.name == "prefetch_to_device"]
    it = data.prefetch_to_device(ds.batches(2, seed=0, num_epochs=50), size=1)
    next(it)
    assert producers()
    it.close()
    assert not producers()


def test_prefetch_splits_over_devices(request):
    code = (
        "import numpy as np, jax\n"
        "from facerecon_jax.training import data\n"
        "batches = [{'x': np.arange(8 * 3, dtype=np.float32).reshape(8, 3) + 100 * s}"
        " for s in range(3)]\n"
        "out = list(data.prefetch_to_device(iter(batches)))\n"
        "assert len(out) == 3 and out[0]['x'].shape == (4, 2, 3)\n"
        "for s, b in enumerate(out):\n"
        "    shards = sorted(b['x'].addressable_shards, key=lambda q: q.index[0].start)\n"
        "    for k, shard in enumerate(shards):\n"
        "        assert shard.device == jax.local_devices()[k]\n"
        "        want = batches[s]['x'][2 * k:2 * k + 2]\n"
        "        np.testing.assert_array_equal(np.asarray(shard.data)[0], want)\n"
        "f = jax.pmap(lambda v: jax.lax.psum(v.sum(), 'd'), axis_name='d')\n"
        "assert float(f(out[0]['x'])[0]) == batches[0]['x'].sum()\n"
        "print('ok')\n")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", code], cwd=request.config.rootpath, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stdout + res.stderr


def _prepare(args, cwd):
    return subprocess.run([sys.executable, "-m", "launch.prepare_data", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_prepare_data_photos_skips_bad_files(tmp_path, request):
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(skimage.data.astronaut()).save(inp / "astronaut.png")
    (inp / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg" * 20)
    Image.fromarray(np.full((80, 100, 3), 127, np.uint8)).save(inp / "blank.png")
    out = tmp_path / "shards"
    res = _prepare(["--input", str(inp), "--output_dir", str(out), "--shard_size", "8"],
                   request.config.rootpath)
    assert res.returncode == 0, res.stdout + res.stderr
    index = json.loads((out / "index.json").read_text())
    assert index["num_examples"] == 1 and index["shards"] == [
        {"file": "shard-00000-of-00001.npz", "count": 1}]
    skipped = {os.path.basename(s["source"]): s["reason"] for s in index["skipped"]}
    assert set(skipped) == {"corrupt.jpg", "blank.png"}
    assert "no face found" in skipped["blank.png"] and "cannot read" in skipped["corrupt.jpg"]
    assert "SKIPPED" in res.stdout and "corrupt.jpg" in res.stdout
    ds = data.Dataset(out, 0, 1)
    ex = ds.example(0)
    assert str(ex["name"]) == "astronaut" and ex["image"].shape == (224, 224, 3)
    lm = ex["landmarks"]
    assert np.all((lm > 0) & (lm < 224))
    assert lm[8, 1] > lm[30, 1] > lm[36, 1]            # chin below nose below eyes (y down)
    assert ex["attention"].max() == 255 and ex["trans_params"][:2].tolist() == [512, 512]
    # nothing usable: non-zero exit, still an index listing what was skipped
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.png").write_bytes(b"garbage")
    res = _prepare(["--input", str(bad), "--output_dir", str(tmp_path / "none")],
                   request.config.rootpath)
    assert res.returncode == 1
    assert json.loads((tmp_path / "none" / "index.json").read_text())["num_examples"] == 0


def test_prepare_data_synthetic(tmp_path, request, small_grid):
    model_path = face_model.save(small_grid, tmp_path / "grid.npz")
    out = tmp_path / "syn"
    res = _prepare(["--synthetic", "3", "--size", "32", "--shard_size", "2", "--model",
                    str(model_path), "--condition", "outdoor", "--seed", "4", "--output_dir",
                    str(out)], request.config.rootpath)
    assert res.returncode == 0, res.stdout + res.stderr
    index = json.loads((out / "index.json").read_text())
    assert index["num_examples"] == 3 and len(index["shards"]) == 2 and index["has_coeffs"]
    lay = coefficients.CoeffLayout.for_model(small_grid, "mono")
    ref = synthetic.generate(small_grid, lay, 3, seed=4, condition="outdoor", size=32)
    np.testing.assert_array_equal(data.Dataset(out, 0, 1).example(2)["coeffs"], ref["coeffs"][2])


def test_views_per_person_batches_hold_whole_people_and_resume(tmp_path):
    """Planted people (3, 4 or 2 images each, across shards): batches of 2 people x 2 images,
    each person's images side by side, nobody twice in an epoch, a person with fewer images
    than asked left out, the same batches on resume; shards without `person` refused."""
    exs = _examples(9, coeffs=True)
    persons = [0, 0, 0, 1, 1, 1, 1, 2, 3]      # 2 and 3 have one image each
    for ex, p in zip(exs, persons):
        ex["person"] = p
    index = _write(tmp_path / "p", exs, 5)
    assert index["has_person"]
    ds = data.Dataset(tmp_path / "p", 0, 1, shuffle_shards=4)
    np.testing.assert_array_equal(ds.persons(), persons)
    order = ds.epoch_order(1, 0, views_per_person=2)
    who = np.asarray(persons)[order]
    assert len(order) == 4 and sorted(who.tolist()) == [0, 0, 1, 1]
    assert who[0] == who[1] and who[2] == who[3] and len(set(order.tolist())) == 4
    assert ds.steps_per_epoch(4, views_per_person=2) == 1
    run = list(zip(range(5), ds.batches(4, seed=1, views_per_person=2)))
    for step, b in run:
        ids = ds.batch_ids(4, 1, step, views_per_person=2)
        p = np.asarray(persons)[ids]
        assert p[0] == p[1] and p[2] == p[3] and p[0] != p[2]
        np.testing.assert_array_equal(b["coeffs"], np.stack([exs[i]["coeffs"] for i in ids]))
        assert b["mirrored"].shape == (4,)
    resumed = data.Dataset(tmp_path / "p", 0, 1, shuffle_shards=4).batches(
        4, seed=1, start_step=3, views_per_person=2)
    for step in (3, 4):
        np.testing.assert_array_equal(next(resumed)["image"], run[step][1]["image"])
    with pytest.raises(ValueError, match="multiple of views_per_person"):
        ds.batch_ids(3, 1, 0, views_per_person=2)
    _write(tmp_path / "q", _examples(4), 4)
    with pytest.raises(ValueError, match="person"):
        data.Dataset(tmp_path / "q", 0, 1).epoch_order(0, 0, views_per_person=2)
