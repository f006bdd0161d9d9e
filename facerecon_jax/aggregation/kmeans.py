"""k-means in JAX, for the paper's multi-image aggregation (docs/design.md §11).

R-Net gives one coefficient vector per image; k-means with K = number of people turns M*j such
vectors into M per-person vectors (the cluster centroids). Everything runs inside one `jax.jit`:

  seeding     greedy k-means++ as scikit-learn does it (each new centre: 2 + int(log k) candidates
              sampled proportionally to D^2, keep the one that lowers the potential most), a
              `lax.fori_loop` over the k centres keeping only the running min-distance vector
              and each point's nearest centre so far (O(n) memory per step; the candidates'
              dot products are one matrix product, or, when it pays and fits GRAM_MAX_BYTES,
              rows of the data's precomputed Gram matrix); or `init="random"` (k distinct
              points). The seeding's assignment is Lloyd's first assignment.
  Lloyd       a `lax.while_loop`: assignment by ||x||^2 - 2 x.c + ||c||^2 (a matrix product,
              chunked over points with `lax.map` when n*k is large), centroid update by
              `segment_sum`, empty clusters re-seeded with the points farthest from their centres
              (never NaN). Stops when the assignments no longer change, or when the summed squared
              centroid shift is <= tol * (mean per-feature variance of the data) as scikit-learn
              does, or after max_iter updates.
  restarts    `jax.vmap` over per-restart keys `jax.random.split(key, n_init)`; the restart with
              the lowest inertia wins (the first one on ties).

The data are centred (mean subtracted) before clustering, as scikit-learn does, so that the
float32 distance expansion loses little precision; the mean is added back to the centroids.
Deterministic for a given key. float32 throughout.

`largest_cluster` picks the most populous cluster (ties: the tighter one); how clusters become
people is `aggregate`'s business.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax

# A chunk's (points x centroids) float32 distance block stays below this many bytes.
DISTANCE_BLOCK_BYTES = 64 * 1024 * 1024
# k-means++ may precompute the (n, n) float32 Gram matrix of the data up to this size (n=20,000:
# 1.6 GB); above it each seeding step makes one pass over the data instead.
GRAM_MAX_BYTES = 2 * 1024 ** 3

_INITS = ("k-means++", "random")


class KMeansResult(NamedTuple):
    centroids: jax.Array  # (k, d) float32
    labels: jax.Array  # (n,) int32, index of each point's centroid
    inertia: jax.Array  # () float32, sum of squared distances of the points to their centroids
    n_iter: jax.Array  # () int32, number of centroid updates that were applied


def auto_chunk_size(n: int, k: int, batch: int = 1,
                    block_bytes: int = DISTANCE_BLOCK_BYTES) -> int:
    """Points per chunk so that `batch` (restarts) float32 blocks of chunk x k stay within
    block_bytes."""
    rows = block_bytes // (4 * max(k, 1) * max(batch, 1))
    return int(max(1, min(n, rows)))


def _n_local_trials(k: int) -> int:
    return 2 + int(math.log(k))


# ----------------------------------------------------------------------------------------------
# Seeding
# ----------------------------------------------------------------------------------------------

def _kmeans_plusplus(x, xx, k, key, gram=None):
    """Greedy k-means++ (scikit-learn's variant). x: (n, d) centred data, xx: (n,) squared norms,
    gram: None or the (n, n) matrix x x^T (then a candidate's dot products are one row of it
    instead of a pass over x).

    Returns the indices (k,) of the chosen points and each point's nearest chosen point (labels,
    (n,) int32: the first assignment step comes for free)."""
    n = x.shape[0]
    trials = _n_local_trials(k)
    key_first, key_rest = jax.random.split(key)
    first = jax.random.randint(key_first, (), 0, n)
    # All the uniforms the loop will need, drawn at once (k x trials numbers).
    uniforms = jax.random.uniform(key_rest, (k, trials), dtype=jnp.float32)

    def dist_to(idx):  # squared distances (len(idx), n) from points idx to every point
        if gram is None:
            dots = jnp.dot(x[idx], x.T, precision=lax.Precision.HIGHEST)
        else:
            dots = gram[idx]
        return jnp.maximum(xx[idx][:, None] - 2.0 * dots + xx[None, :], 0.0)

    closest = dist_to(first[None])[0]
    closest = closest.at[first].set(0.0)
    ids = jnp.zeros((k,), jnp.int32).at[0].set(first)
    labels = jnp.zeros((n,), jnp.int32)

    def step(c, carry):
        ids, labels, closest = carry
        cums = jnp.cumsum(closest)
        vals = uniforms[c] * cums[-1]
        cand = jnp.searchsorted(cums, vals, side="right").astype(jnp.int32)
        cand = jnp.minimum(cand, n - 1)
        d = jnp.minimum(closest[None, :], dist_to(cand))  # (trials, n)
        d = d.at[jnp.arange(trials), cand].set(0.0)
        pots = jnp.sum(d, axis=1)
        best = jnp.argmin(pots)
        new_closest = d[best]
        labels = jnp.where(new_closest < closest, c, labels)  # ties stay with the lower index
        return ids.at[c].set(cand[best]), labels, new_closest

    ids, labels, _ = lax.fori_loop(1, k, step, (ids, labels, closest))
    return ids, labels


def _random_init(n, k, key):
    return jax.random.choice(key, n, (k,), replace=False).astype(jnp.int32)


# ----------------------------------------------------------------------------------------------
# Lloyd
# ----------------------------------------------------------------------------------------------

def _assign(x, x_chunks, c):
    """Nearest centroid of every point and the squared distance to it.

    x: (n, d); x_chunks: None or (n_chunks, chunk, d) zero-padded copy of x; c: (k, d)."""
    n = x.shape[0]
    cc = jnp.sum(c * c, axis=1)
    neg2c = -2.0 * c

    def block_labels(xb):
        s = jnp.dot(xb, neg2c.T, precision=lax.Precision.HIGHEST) + cc[None, :]
        return jnp.argmin(s, axis=1).astype(jnp.int32)

    if x_chunks is None:
        labels = block_labels(x)
    else:
        labels = lax.map(block_labels, x_chunks).reshape(-1)[:n]
    # Exact squared distance to the chosen centroid (no cancellation), for inertia / re-seeding.
    diff = x - c[labels]
    mind = jnp.sum(diff * diff, axis=1)
    return labels, mind


def _update(x, labels, mind, c_old):
    """Mean of each cluster; empty clusters take the points farthest from their centres."""
    n = x.shape[0]
    k = c_old.shape[0]
    counts = jax.ops.segment_sum(jnp.ones((n,), jnp.int32), labels, num_segments=k)
    empty = counts == 0
    n_far = min(k, n)
    _, far = lax.top_k(mind, n_far)  # farthest points first
    rank = jnp.cumsum(empty.astype(jnp.int32)) - 1
    target = jnp.where(empty, far[jnp.clip(rank, 0, n_far - 1)], n)  # n: out of range, dropped
    labels = labels.at[target].set(jnp.arange(k, dtype=jnp.int32), mode="drop")
    counts = jax.ops.segment_sum(jnp.ones((n,), jnp.int32), labels, num_segments=k)
    sums = jax.ops.segment_sum(x, labels, num_segments=k)
    means = sums / jnp.maximum(counts, 1).astype(x.dtype)[:, None]
    return jnp.where((counts > 0)[:, None], means, c_old)


class _LloydState(NamedTuple):
    it: jax.Array  # centroid updates done
    c: jax.Array  # (k, d) centroids
    labels: jax.Array  # (n,) nearest centroid of each point (assigned against c)
    mind: jax.Array  # (n,) squared distance to it
    done: jax.Array


def _lloyd(x, x_chunks, c0, labels0, tol_abs, max_iter):
    """Lloyd iterations from centroids c0 and the assignment labels0 against them (None: compute).

    One iteration: update the centroids from the labels, then assign against the new centroids;
    stop when that assignment equals the previous one, when the update moved the centroids by
    <= tol_abs (summed squares), or after max_iter updates. The returned labels, inertia and
    centroids always belong together (the last assignment was made against the returned c)."""
    if labels0 is None:
        labels0, mind0 = _assign(x, x_chunks, c0)
    else:
        diff = x - c0[labels0]
        mind0 = jnp.sum(diff * diff, axis=1)

    def cond(s):
        return jnp.logical_not(s.done)

    def body(s):
        c = _update(x, s.labels, s.mind, s.c)
        shift = jnp.sum((c - s.c) ** 2)
        labels, mind = _assign(x, x_chunks, c)
        it = s.it + 1
        done = jnp.all(labels == s.labels) | (shift <= tol_abs) | (it >= max_iter)
        return _LloydState(it, c, labels, mind, done)

    s0 = _LloydState(jnp.zeros((), jnp.int32), c0, labels0, mind0,
                     jnp.asarray(max_iter <= 0))
    s = lax.while_loop(cond, body, s0)
    return KMeansResult(s.c, s.labels, jnp.sum(s.mind), s.it)


# ----------------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------------

class _Prepared(NamedTuple):
    xc: jax.Array  # (n, d) centred data
    xx: jax.Array  # (n,) squared norms of xc
    x_chunks: Optional[jax.Array]  # (n_chunks, chunk, d) zero-padded xc, or None: one block
    gram: Optional[jax.Array]  # (n, n) xc xc^T for the seeding, or None
    mean: jax.Array  # (d,)
    tol_abs: jax.Array  # () tol * mean per-feature variance


def use_gram(n: int, k: int, n_init: int = 1, gram_seeding: Optional[bool] = None) -> bool:
    """Whether k-means++ seeding reads candidate dot products from a precomputed Gram matrix.

    Automatic (None): when the (n, n) float32 matrix fits GRAM_MAX_BYTES and computing it costs
    fewer flops than the seeding's candidate products (n_init * (k - 1) * trials rows of n)."""
    if gram_seeding is not None:
        return bool(gram_seeding)
    return 4 * n * n <= GRAM_MAX_BYTES and n <= n_init * (k - 1) * _n_local_trials(k)


def _prepare(x, k, *, chunk_size, n_init, tol, init, init_centroids, gram_seeding):
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise ValueError(f"x must be (n, d), got shape {x.shape}")
    n, d = x.shape
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if init not in _INITS:
        raise ValueError(f"init must be one of {_INITS}, got {init!r}")
    if init_centroids is not None and tuple(init_centroids.shape) != (k, d):
        raise ValueError(f"init_centroids must be {(k, d)}, got {tuple(init_centroids.shape)}")
    mean = jnp.mean(x, axis=0)
    xc = x - mean
    xx = jnp.sum(xc * xc, axis=1)
    tol_abs = jnp.asarray(tol, jnp.float32) * jnp.mean(jnp.var(x, axis=0))
    chunk = auto_chunk_size(n, k, n_init) if chunk_size is None else int(chunk_size)
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if chunk >= n:
        x_chunks = None
    else:
        n_chunks = -(-n // chunk)
        pad = n_chunks * chunk - n
        x_chunks = jnp.pad(xc, ((0, pad), (0, 0))).reshape(n_chunks, chunk, d)
    gram = None
    if (init == "k-means++" and init_centroids is None and k > 1
            and use_gram(n, k, n_init, gram_seeding)):
        gram = jnp.dot(xc, xc.T, precision=lax.Precision.HIGHEST)
    return _Prepared(xc, xx, x_chunks, gram, mean, tol_abs)


def _run_single(p: _Prepared, k, key, max_iter, init, init_centroids):
    labels0 = None
    if init_centroids is not None:
        c0 = jnp.asarray(init_centroids, jnp.float32) - p.mean
    elif init == "k-means++":
        ids, labels0 = _kmeans_plusplus(p.xc, p.xx, k, key, p.gram)
        c0 = p.xc[ids]
    else:
        c0 = p.xc[_random_init(p.xc.shape[0], k, key)]
    return _lloyd(p.xc, p.x_chunks, c0, labels0, p.tol_abs, max_iter)


_STATIC = ("k", "max_iter", "init", "chunk_size", "gram_seeding")


@functools.partial(jax.jit, static_argnames=_STATIC)
def kmeans_single(x, k, key, *, max_iter=300, tol=1e-4, init="k-means++", chunk_size=None,
                  gram_seeding=None, init_centroids=None) -> KMeansResult:
    """One k-means run (one seeding + Lloyd) of x (n, d) into k clusters.

    `kmeans(x, k, key=key, n_init=m)` is the best of `kmeans_single(x, k, kk)` over
    `kk in jax.random.split(key, m)`. Arguments as for `kmeans`."""
    p = _prepare(x, k, chunk_size=chunk_size, n_init=1, tol=tol, init=init,
                 init_centroids=init_centroids, gram_seeding=gram_seeding)
    r = _run_single(p, k, key, max_iter, init, init_centroids)
    return r._replace(centroids=r.centroids + p.mean)


@functools.partial(jax.jit, static_argnames=_STATIC + ("n_init",))
def kmeans(x, k, *, key, n_init=10, max_iter=300, tol=1e-4, init="k-means++", chunk_size=None,
           gram_seeding=None, init_centroids=None) -> KMeansResult:
    """k-means of x (n, d) into k clusters; the best (lowest-inertia) of n_init restarts.

    Restarts run in parallel with `jax.vmap` over `jax.random.split(key, n_init)`.
    init: "k-means++" (greedy, scikit-learn's) or "random" (k distinct points).
    init_centroids: (k, d), if given, replaces the seeding (every restart then starts from it, so
      use n_init=1).
    tol: relative to the mean per-feature variance of x, like scikit-learn.
    chunk_size: points per distance block (default: automatic, the n_init blocks below ~64 MB).
    gram_seeding: k-means++ candidates' dot products from a precomputed (n, n) Gram matrix
      (True), from a pass over x per step (False), or automatic (None, see `use_gram`)."""
    if n_init < 1:
        raise ValueError(f"n_init must be >= 1, got {n_init}")
    p = _prepare(x, k, chunk_size=chunk_size, n_init=n_init, tol=tol, init=init,
                 init_centroids=init_centroids, gram_seeding=gram_seeding)
    keys = jax.random.split(key, n_init)
    runs = jax.vmap(lambda kk: _run_single(p, k, kk, max_iter, init, init_centroids))(keys)
    best = jnp.argmin(runs.inertia)
    r = jax.tree_util.tree_map(lambda a: a[best], runs)
    return r._replace(centroids=r.centroids + p.mean)


def largest_cluster(x, r: "KMeansResult"):
    """Index of the cluster with the most members; ties go to the smaller within-cluster spread
    (mean squared distance of its members to its centroid)."""
    k = r.centroids.shape[0]
    counts = jnp.bincount(r.labels, length=k)
    sq = jnp.sum((jnp.asarray(x, jnp.float32) - r.centroids[r.labels]) ** 2, axis=1)
    spread = jax.ops.segment_sum(sq, r.labels, num_segments=k) / jnp.maximum(counts, 1)
    spread = jnp.where(counts == jnp.max(counts), spread, jnp.inf)
    return jnp.argmin(spread)


__all__ = ["KMeansResult", "kmeans", "kmeans_single", "auto_chunk_size", "use_gram",
           "largest_cluster",
           "DISTANCE_BLOCK_BYTES", "GRAM_MAX_BYTES"]
