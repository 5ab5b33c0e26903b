"""Benchmark: our GaussianMixture vs scikit-learn's, fit to convergence from identical initial parameters.

For each covariance type and each dimension, both fit the same data (default N = 200,000 points, K = 8,
noisy mock mixture) from the same weights_init / means_init / precisions_init with the same tol and max_iter.
Timings are medians over repeats, measured in this one run with the two interleaved. The table reports both
medians, the ratio (ours / scikit-learn; below 1 is faster), the iteration counts and the relative difference
of the final mean log-likelihood. Usage:

    python bench/gmm_bench.py [--n-samples 200000] [--n-components 8] [--dims 3 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from gmm import COVARIANCE_TYPES, GaussianMixture, make_mixture  # noqa: E402


def initial_parameters(X: np.ndarray, k: int, covariance_type: str, seed: int) -> dict:
    """A common start: k-means on a 20,000-point subsample, turned into weights, means and precisions."""
    rng = np.random.default_rng(seed)
    sub = X[rng.choice(len(X), min(len(X), 20000), replace=False)]
    start = GaussianMixture(k, covariance_type=covariance_type, max_iter=0, random_state=seed).fit(sub)
    return {"weights_init": start.weights_, "means_init": start.means_, "precisions_init": start.precisions_}


def timed_fit(cls: type, X: np.ndarray, k: int, kwargs: dict) -> tuple[float, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a non-converged fit is reported in the table, not as a warning
        t0 = time.perf_counter()
        model = cls(k, **kwargs).fit(X)
        return time.perf_counter() - t0, model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=200_000, help="points per data set (default 200000)")
    parser.add_argument("--n-components", type=int, default=8, help="mixture components K (default 8)")
    parser.add_argument(
        "--dims", type=int, nargs="+", default=[3, 2], help="data dimensions to run (default 3 2)"
    )
    parser.add_argument(
        "--types",
        nargs="+",
        default=list(COVARIANCE_TYPES),
        choices=COVARIANCE_TYPES,
        help="covariance types (default: all four)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed fits per library and setting; median kept"
    )
    parser.add_argument("--tol", type=float, default=1e-3, help="EM tolerance for both (default 1e-3)")
    parser.add_argument("--max-iter", type=int, default=500, help="EM iteration cap for both (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of the common start")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    try:
        from sklearn import __version__ as sk_version
        from sklearn.mixture import GaussianMixture as SkGaussianMixture
    except ImportError:
        print("scikit-learn is not installed: pip install -r requirements-dev.txt", file=sys.stderr)
        return 2

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sk_version}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    print(
        f"N={args.n_samples}, K={args.n_components}, tol={args.tol:g}, max_iter={args.max_iter}, "
        f"median of {args.repeats} interleaved fits each\n"
    )
    header = (
        f"| {'type':<9} | dim | {'ours (s)':>8} | {'sklearn (s)':>11} | {'ratio':>5} | {'iters ours/sk':>13} "
        f"| {'loglik rel diff':>15} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    ok = True
    for dim in args.dims:
        data = make_mixture(
            args.n_samples, args.n_components, dim, jitter=0.1, outlier_fraction=0.01, seed=args.seed
        )
        X = data.X
        for covariance_type in args.types:
            kwargs = {
                "covariance_type": covariance_type,
                "tol": args.tol,
                "max_iter": args.max_iter,
                **initial_parameters(X, args.n_components, covariance_type, args.seed),
            }
            ours_t, sk_t = [], []
            for r in range(args.repeats):
                order = [(GaussianMixture, ours_t), (SkGaussianMixture, sk_t)]
                for cls, times in order if r % 2 == 0 else order[::-1]:
                    seconds, model = timed_fit(cls, X, args.n_components, kwargs)
                    times.append(seconds)
                    if cls is GaussianMixture:
                        ours = model
                    else:
                        ref = model
            ours_s, sk_s = ours.score(X), ref.score(X)
            rel = abs(ours_s - sk_s) / abs(sk_s)
            ratio = statistics.median(ours_t) / statistics.median(sk_t)
            ok &= rel <= 1e-6 and ours.n_iter_ == ref.n_iter_ and ratio <= 1.0
            print(
                f"| {covariance_type:<9} | {dim:>3} | {statistics.median(ours_t):8.3f} | "
                f"{statistics.median(sk_t):11.3f} | {ratio:5.2f} | {f'{ours.n_iter_}/{ref.n_iter_}':>13} | "
                f"{rel:15.1e} |",
                flush=True,
            )
    print(f"\nall ratios <= 1.0, same iterations and log-likelihood within 1e-6: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
