"""Benchmark facerecon_jax.aggregation.kmeans against scikit-learn's KMeans, in the same run.

Data shaped like R-Net vectors: n points in 257 dims, float32, drawn around K planted centres
(centres ~ N(0, 1) per dim, each point = a centre + N(0, noise^2) per dim, n/K points per centre:
the paper's multi-image setting of a few images per person).

Cases (default): 5,000 x 257, K=1,000, n_init=10; 20,000 x 257, K=5,000, n_init=1.
`--quick`: 1,000 x 257, K=200, n_init=10; 4,000 x 257, K=1,000, n_init=1.

For ours, the first call (compile + run) and then a call with a different key (run only) are
timed apart; compile ~= first - second. speedup = sklearn_time / our second-call time;
inertia ratio = our inertia / sklearn's (below 1: ours is better). With --repeats R each side
runs R times (different keys / random_states): the minimum time and the mean inertia are used.
scikit-learn gets its default threads (OpenMP/BLAS, all cores). Timings on a shared machine are
noisy (scikit-learn's memory-bound float32 k-means++ most of all); the load averages before and
after are in the JSON. The last line printed is one JSON object with every figure.

  python benchmarks/kmeans.py            # full (minutes on 2 cores)
  python benchmarks/kmeans.py --quick
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402

from facerecon_jax.aggregation.kmeans import kmeans  # noqa: E402

FULL_CASES = [(5000, 257, 1000, 10), (20000, 257, 5000, 1)]
QUICK_CASES = [(1000, 257, 200, 10), (4000, 257, 1000, 1)]


def planted(n, d, k, noise, seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)).astype(np.float32)
    assign = rng.permutation(np.arange(n) % k)
    x = centres[assign] + noise * rng.standard_normal((n, d)).astype(np.float32)
    x = x.astype(np.float32)
    # Inertia of the planted partition around its own cluster means (a reference point).
    means = np.zeros((k, d), np.float64)
    np.add.at(means, assign, x)
    means /= np.bincount(assign, minlength=k)[:, None]
    planted_inertia = float(((x - means[assign]) ** 2).sum())
    return x, planted_inertia


def run_ours(x, k, n_init, max_iter, tol, seed, repeats):
    """First call (compile + run) with key `seed`, then `repeats` calls with keys seed+1, ..."""
    def call(s):
        t0 = time.perf_counter()
        r = kmeans(x, k, key=jax.random.key(s), n_init=n_init, max_iter=max_iter, tol=tol)
        r.inertia.block_until_ready()
        return time.perf_counter() - t0, float(r.inertia), int(r.n_iter)

    t_first, inertia_first, _ = call(seed)
    runs = [call(seed + 1 + i) for i in range(repeats)]
    t_run = min(t for t, _, _ in runs)
    return dict(first_s=t_first, run_s=t_run, compile_s=max(t_first - t_run, 0.0),
                run_s_all=[t for t, _, _ in runs], inertia_first=inertia_first,
                inertia=float(np.mean([i for _, i, _ in runs])),
                inertia_all=[i for _, i, _ in runs], n_iter=[n for _, _, n in runs])


def run_sklearn(x, k, n_init, max_iter, tol, seed, repeats):
    """`repeats` fits with random_state seed, seed+1, ... (default threads)."""
    from sklearn.cluster import KMeans
    times, inertias, iters = [], [], []
    for i in range(repeats):
        km = KMeans(n_clusters=k, n_init=n_init, init="k-means++", max_iter=max_iter, tol=tol,
                    algorithm="lloyd", random_state=seed + i)
        t0 = time.perf_counter()
        km.fit(x)
        times.append(time.perf_counter() - t0)
        inertias.append(float(km.inertia_))
        iters.append(int(km.n_iter_))
    return dict(run_s=min(times), run_s_all=times, inertia=float(np.mean(inertias)),
                inertia_all=inertias, n_iter=iters)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes")
    p.add_argument("--noise", type=float, default=0.5, help="per-dim noise std around centres")
    p.add_argument("--max-iter", type=int, default=300)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1,
                   help="timed runs per side (min time, mean inertia are reported)")
    p.add_argument("--skip-sklearn", action="store_true")
    args = p.parse_args(argv)

    import sklearn
    try:
        from threadpoolctl import threadpool_info
        sk_threads = sorted({(i.get("internal_api"), i.get("num_threads"))
                             for i in threadpool_info()})
    except Exception:  # pragma: no cover
        sk_threads = []

    load_before = os.getloadavg()
    cases = QUICK_CASES if args.quick else FULL_CASES
    rows = []
    for n, d, k, n_init in cases:
        x, planted_inertia = planted(n, d, k, args.noise, args.seed)
        print(f"case n={n} d={d} K={k} n_init={n_init} ...", flush=True)
        ours = run_ours(x, k, n_init, args.max_iter, args.tol, args.seed, args.repeats)
        row = dict(n=n, d=d, k=k, n_init=n_init, planted_inertia=planted_inertia,
                   ours_first_s=ours["first_s"], ours_compile_s=ours["compile_s"],
                   ours_run_s=ours["run_s"], ours_run_s_all=ours["run_s_all"],
                   ours_inertia=ours["inertia"], ours_inertia_all=ours["inertia_all"],
                   ours_inertia_first_call=ours["inertia_first"], ours_n_iter=ours["n_iter"])
        if not args.skip_sklearn:
            sk = run_sklearn(x, k, n_init, args.max_iter, args.tol, args.seed, args.repeats)
            row.update(sklearn_run_s=sk["run_s"], sklearn_run_s_all=sk["run_s_all"],
                       sklearn_inertia=sk["inertia"], sklearn_inertia_all=sk["inertia_all"],
                       sklearn_n_iter=sk["n_iter"],
                       speedup=sk["run_s"] / ours["run_s"],
                       speedup_incl_compile=sk["run_s"] / ours["first_s"],
                       inertia_ratio=ours["inertia"] / sk["inertia"],
                       inertia_ratio_first_call=ours["inertia_first"] / sk["inertia"])
        rows.append(row)

    hdr = (f"{'case':>24} {'ours 1st s':>10} {'compile s':>9} {'ours s':>8} {'sklearn s':>9} "
           f"{'speedup':>8} {'ours inertia':>13} {'sk inertia':>13} {'ratio':>7} "
           f"{'planted':>13} {'iters o/s':>9}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        case = f"{r['n']}x{r['d']} K={r['k']} n_init={r['n_init']}"
        sk_s = r.get("sklearn_run_s", float("nan"))
        print(f"{case:>24} {r['ours_first_s']:10.2f} {r['ours_compile_s']:9.2f} "
              f"{r['ours_run_s']:8.2f} {sk_s:9.2f} {r.get('speedup', float('nan')):7.1f}x "
              f"{r['ours_inertia']:13.1f} {r.get('sklearn_inertia', float('nan')):13.1f} "
              f"{r.get('inertia_ratio', float('nan')):7.4f} {r['planted_inertia']:13.1f} "
              f"{r['ours_n_iter'][0]:>4}/{r.get('sklearn_n_iter', [-1])[0]:<4}")
    summary = dict(
        benchmark="kmeans", quick=args.quick, noise=args.noise, max_iter=args.max_iter,
        tol=args.tol, seed=args.seed, repeats=args.repeats, jax=jax.__version__,
        jax_backend=jax.default_backend(),
        sklearn=sklearn.__version__, sklearn_threadpools=sk_threads, cpu_count=os.cpu_count(),
        machine=platform.machine(), load_avg_before=load_before, cases=rows)
    summary["load_avg_end"] = os.getloadavg()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
