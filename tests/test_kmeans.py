"""Tests of facerecon_jax.aggregation.kmeans (small shapes: the whole file runs in seconds on 2
cores)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from facerecon_jax.aggregation import kmeans as km


def _planted(n_per, k, d, sep=20.0, noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    centres = sep * rng.standard_normal((k, d))
    truth = np.repeat(np.arange(k), n_per)
    x = centres[truth] + noise * rng.standard_normal((k * n_per, d))
    perm = rng.permutation(len(truth))
    return x[perm].astype(np.float32), truth[perm]


@pytest.fixture(scope="module")
def blobs():
    x, _ = make_blobs(n_samples=400, n_features=6, centers=8, cluster_std=2.5,
                      center_box=(-8.0, 8.0), random_state=3)
    return x.astype(np.float32)


def _inertia(x, c, labels):
    x = np.asarray(x, np.float64)
    return float(((x - np.asarray(c, np.float64)[np.asarray(labels)]) ** 2).sum())


def test_planted_clusters_recovered():
    x, truth = _planted(n_per=40, k=6, d=8)
    r = km.kmeans(x, 6, key=jax.random.key(0))
    assert adjusted_rand_score(truth, np.asarray(r.labels)) == 1.0
    assert r.centroids.shape == (6, 8) and r.centroids.dtype == jnp.float32
    assert r.labels.shape == (240,)
    np.testing.assert_allclose(float(r.inertia), _inertia(x, r.centroids, r.labels), rtol=1e-4)
    # Centroids are the cluster means.
    lab = np.asarray(r.labels)
    means = np.stack([x[lab == j].mean(0) for j in range(6)])
    np.testing.assert_allclose(np.asarray(r.centroids), means, rtol=1e-4, atol=1e-4)


def test_vmapped_restarts_equal_python_loop(blobs):
    key = jax.random.key(7)
    n_init = 4
    best = km.kmeans(blobs, 8, key=key, n_init=n_init)
    loop = [km.kmeans_single(blobs, 8, kk) for kk in jax.random.split(key, n_init)]
    inertias = np.array([float(r.inertia) for r in loop])
    i = int(np.argmin(inertias))
    np.testing.assert_allclose(float(best.inertia), inertias[i], rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(best.labels), np.asarray(loop[i].labels))
    np.testing.assert_allclose(np.asarray(best.centroids), np.asarray(loop[i].centroids),
                               rtol=1e-5, atol=1e-5)
    assert int(best.n_iter) == int(loop[i].n_iter)


def test_inertia_close_to_sklearn_on_blobs():
    x, _ = make_blobs(n_samples=2000, n_features=16, centers=20, cluster_std=3.0,
                      center_box=(-10.0, 10.0), random_state=0)
    x = x.astype(np.float32)
    ours = float(km.kmeans(x, 20, key=jax.random.key(0), n_init=10).inertia)
    sk = KMeans(n_clusters=20, n_init=10, init="k-means++", random_state=0).fit(x).inertia_
    assert ours <= 1.01 * sk, (ours, sk)


def _check_finite(r, k, n):
    assert np.all(np.isfinite(np.asarray(r.centroids)))
    assert np.isfinite(float(r.inertia))
    lab = np.asarray(r.labels)
    assert lab.shape == (n,) and lab.min() >= 0 and lab.max() < k


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_more_clusters_than_distinct_points_no_nan(init):
    base = np.array([[0.0, 0.0], [5.0, 1.0], [-3.0, 4.0]], np.float32)
    x = np.repeat(base, 10, axis=0)  # 30 points, 3 distinct
    r = km.kmeans(x, 5, key=jax.random.key(1), n_init=3, init=init)
    _check_finite(r, 5, 30)
    assert float(r.inertia) == pytest.approx(0.0, abs=1e-4)
    if init == "k-means++":  # all points identical (same shapes: no new compilation)
        r = km.kmeans(np.ones_like(x), 5, key=jax.random.key(0), n_init=3, init=init)
        _check_finite(r, 5, 30)
        np.testing.assert_allclose(np.asarray(r.centroids), 1.0)
        assert float(r.inertia) == 0.0


def test_bad_init_empty_clusters_reseeded():
    x, truth = _planted(n_per=20, k=4, d=3, sep=10.0, seed=1)
    # Two centroids at the data, two far away: those start empty.
    bad = np.stack([x[truth == 0][0], x[truth == 1][0],
                    np.full(3, 1e4), np.full(3, -1e4)]).astype(np.float32)
    r = km.kmeans_single(x, 4, jax.random.key(0), init_centroids=bad)
    _check_finite(r, 4, 80)
    assert np.all(np.abs(np.asarray(r.centroids)) < 1e3)  # the far ones were re-seeded
    assert np.all(np.bincount(np.asarray(r.labels), minlength=4) > 0)
    assert adjusted_rand_score(truth, np.asarray(r.labels)) == 1.0


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_same_key_identical_different_keys_differ(blobs, init):
    a = km.kmeans_single(blobs, 8, jax.random.key(5), init=init)
    b = km.kmeans_single(blobs, 8, jax.random.key(5), init=init)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    others = [km.kmeans_single(blobs, 8, jax.random.key(s), init=init) for s in range(6, 10)]
    assert any(not np.array_equal(np.asarray(o.labels), np.asarray(a.labels)) or
               float(o.inertia) != float(a.inertia) for o in others)


def test_chunked_equals_unchunked(blobs):
    key = jax.random.key(11)  # chunk 48 does not divide 400: exercises the padding
    whole = km.kmeans_single(blobs, 8, key)
    chunked = km.kmeans_single(blobs, 8, key, chunk_size=48)
    np.testing.assert_array_equal(np.asarray(whole.labels), np.asarray(chunked.labels))
    np.testing.assert_allclose(float(whole.inertia), float(chunked.inertia), rtol=1e-6)
    assert int(whole.n_iter) == int(chunked.n_iter)
    # Under vmap too.
    vm = km.kmeans(blobs, 8, key=key, n_init=4, chunk_size=48)
    vw = km.kmeans(blobs, 8, key=key, n_init=4)
    np.testing.assert_array_equal(np.asarray(vm.labels), np.asarray(vw.labels))


def test_auto_chunk_size_bounds_block():
    n, k = 20000, 5000
    c = km.auto_chunk_size(n, k)
    assert 1 <= c < n and c * k * 4 <= km.DISTANCE_BLOCK_BYTES
    c10 = km.auto_chunk_size(n, k, batch=10)
    assert 10 * c10 * k * 4 <= km.DISTANCE_BLOCK_BYTES
    assert km.auto_chunk_size(100, 10) == 100


def test_gram_seeding_matches_direct(blobs):
    key = jax.random.key(2)
    assert not km.use_gram(400, 8)  # the default here: a pass over x per seeding step
    g = km.kmeans_single(blobs, 8, key, gram_seeding=True)
    d = km.kmeans_single(blobs, 8, key)
    np.testing.assert_array_equal(np.asarray(g.labels), np.asarray(d.labels))
    np.testing.assert_allclose(np.asarray(g.centroids), np.asarray(d.centroids), rtol=1e-5,
                               atol=1e-5)
    assert km.use_gram(20000, 5000) and not km.use_gram(100000, 5000)
    assert km.use_gram(5000, 1000, n_init=10)


def test_max_iter_zero_is_the_seeding(blobs):
    r = km.kmeans_single(blobs, 8, jax.random.key(2), max_iter=0)
    assert int(r.n_iter) == 0
    # The seeding's own assignment, consistent with its centroids (which are data points).
    np.testing.assert_allclose(float(r.inertia), _inertia(blobs, r.centroids, r.labels),
                               rtol=1e-4)
    c = np.asarray(r.centroids)
    assert all(np.any(np.all(np.isclose(blobs, ci, atol=1e-5), axis=1)) for ci in c)


def test_invalid_arguments():
    x = np.zeros((5, 2), np.float32)
    with pytest.raises(ValueError):
        km.kmeans(x, 6, key=jax.random.key(0))
    with pytest.raises(ValueError):
        km.kmeans(x, 2, key=jax.random.key(0), init="kmeans||")
    with pytest.raises(ValueError):
        km.kmeans(x, 2, key=jax.random.key(0), init_centroids=np.zeros((3, 2), np.float32))


def _largest_centroid(x, k, key):
    r = km.kmeans(x, k, key=key)
    return r.centroids[km.largest_cluster(x, r)]


def test_largest_cluster_majority():
    rng = np.random.default_rng(0)
    a = np.array([1.0, -2.0, 0.5], np.float32)
    near = a + 0.05 * rng.standard_normal((4, 3)).astype(np.float32)
    far = np.array([[30.0, 30.0, 30.0], [31.0, 29.0, 30.5]], np.float32)
    x = np.concatenate([far[:1], near[:2], far[1:], near[2:]])  # majority not first
    c = _largest_centroid(x, 2, jax.random.key(0))
    np.testing.assert_allclose(np.asarray(c), near.mean(0), rtol=1e-5, atol=1e-5)


def test_largest_cluster_tie_prefers_tighter():
    tight = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [0.0, 0.1, 1.0]], np.float32)
    loose = np.array([[20.0, 20.0, 1.0], [23.0, 20.0, 1.0], [20.0, 23.0, 1.0]], np.float32)
    c = _largest_centroid(np.concatenate([loose, tight]), 2, jax.random.key(0))
    np.testing.assert_allclose(np.asarray(c), tight.mean(0), rtol=1e-5, atol=1e-5)


def test_paper_scale_people_are_recovered():
    x, truth = _planted(n_per=5, k=10, d=12, sep=10.0, noise=0.3, seed=4)
    r = km.kmeans(x, 10, key=jax.random.key(0))
    centroids, labels = r.centroids, r.labels
    assert centroids.shape == (10, 12) and labels.shape == (50,)
    assert adjusted_rand_score(truth, np.asarray(labels)) == 1.0
    lab = np.asarray(labels)
    means = np.stack([x[lab == j].mean(0) for j in range(10)])
    np.testing.assert_allclose(np.asarray(centroids), means, rtol=1e-4, atol=1e-4)
