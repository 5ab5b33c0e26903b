"""K-means clustering: k-means++ seeding, Lloyd iterations, restarts, inertia.

Written from scratch in numpy. K-means is the hard-assignment, equal-spherical-variance limit of a Gaussian
mixture, and its labels are the default starting point of `gmm.em.GaussianMixture`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "KMeans",
    "as_rng",
    "check_data",
    "check_n_clusters",
    "kmeans_plusplus",
    "matmul_rows",
    "matmul_tn",
    "pairwise_sq_distances",
]


# Keep each BLAS call small: OpenBLAS runs a GEMM single-threaded when M*N*K is below ~2.6e5, and its
# threaded path can be >10x slower on a busy machine. Products over N rows are accumulated in row blocks.
_GEMM_BUDGET = 131072


def _block_rows(width: int) -> int:
    return max(64, _GEMM_BUDGET // max(width, 1))


def matmul_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A @ B for tall A (N, p) and small B (p, q), computed in row blocks (see _GEMM_BUDGET)."""
    n = A.shape[0]
    step = _block_rows(B.shape[0] * B.shape[1])
    if n <= step:
        return A @ B
    out = np.empty((n, B.shape[1]))
    for start in range(0, n, step):
        np.matmul(A[start : start + step], B, out=out[start : start + step])
    return out


def matmul_tn(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A.T @ B for tall A (N, p) and B (N, q), accumulated over row blocks (see _GEMM_BUDGET)."""
    n = A.shape[0]
    step = _block_rows(A.shape[1] * B.shape[1])
    if n <= step:
        return A.T @ B
    out = np.zeros((A.shape[1], B.shape[1]))
    for start in range(0, n, step):
        out += A[start : start + step].T @ B[start : start + step]
    return out


def as_rng(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from a seed, None (fresh entropy) or an existing Generator (used as is)."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    return np.random.default_rng(random_state)


def check_data(X: object, n_features: int | None = None, name: str = "X") -> np.ndarray:
    """X as a finite float64 array (n_samples, n_features), or a ValueError that says what is wrong."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array of shape (n_samples, n_features): {err}") from None
    if arr.ndim != 2:
        hint = " Use X.reshape(-1, 1) for a single feature." if arr.ndim == 1 else ""
        raise ValueError(
            f"{name} must be 2-D with shape (n_samples, n_features); "
            f"got {arr.ndim}-D shape {arr.shape}.{hint}"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} is empty (shape {arr.shape}); need at least one sample and one feature")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
        raise ValueError(
            f"{name} contains NaN or infinity in {bad.size} row(s) (first: row {bad[0]}); "
            "drop or impute those rows before fitting"
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features but the model was fitted with {n_features}")
    return arr


def check_n_clusters(n: object, n_samples: int, name: str) -> int:
    """An integer number of clusters/components in [1, n_samples], or a ValueError."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise ValueError(f"{name} must be an integer >= 1; got {n!r}")
    if n < 1:
        raise ValueError(f"{name} must be >= 1; got {n}")
    if n > n_samples:
        raise ValueError(
            f"{name}={n} is larger than the number of samples ({n_samples}); use at most {n_samples}"
        )
    return int(n)


def pairwise_sq_distances(X: np.ndarray, centers: np.ndarray, x_sq: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances (N, K) via |x|^2 - 2 x.c + |c|^2 (one matrix product), clipped at 0."""
    if x_sq is None:
        x_sq = np.einsum("nd,nd->n", X, X)
    d2 = matmul_rows(X, -2.0 * centers.T)  # (N, K)
    d2 += x_sq[:, None]
    d2 += np.einsum("kd,kd->k", centers, centers)[None, :]
    np.maximum(d2, 0.0, out=d2)
    return d2


def kmeans_plusplus(
    X: np.ndarray,
    n_clusters: int,
    random_state: int | np.random.Generator | None = None,
    n_local_trials: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k-means++ seeding: each new center is drawn with probability proportional to D(x)^2.

    `D(x)` is the distance from x to its nearest already chosen center. With `n_local_trials > 1`
    (default 2 + log K, the "greedy" variant) several candidates are drawn and the one that lowers the
    potential sum D(x)^2 most is kept. Returns (centers (K, D), indices into X (K,)).
    """
    X = check_data(X)
    n_samples = X.shape[0]
    check_n_clusters(n_clusters, n_samples, "n_clusters")
    rng = as_rng(random_state)
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    x_sq = np.einsum("nd,nd->n", X, X)
    indices = np.empty(n_clusters, dtype=np.intp)
    indices[0] = rng.integers(n_samples)
    closest = pairwise_sq_distances(X, X[indices[:1]], x_sq)[:, 0]  # (N,) D(x)^2
    for c in range(1, n_clusters):
        total = closest.sum()
        if total <= 0.0:  # every point coincides with a chosen center: pick any unused point
            unused = np.setdiff1d(np.arange(n_samples), indices[:c])
            indices[c] = rng.choice(unused)
            continue
        cumulative = np.cumsum(closest)
        draws = rng.random(n_local_trials) * cumulative[-1]
        candidates = np.minimum(np.searchsorted(cumulative, draws), n_samples - 1)
        d_cand = pairwise_sq_distances(X, X[candidates], x_sq)  # (N, trials)
        np.minimum(d_cand, closest[:, None], out=d_cand)
        best = int(np.argmin(d_cand.sum(axis=0)))
        indices[c] = candidates[best]
        closest = d_cand[:, best].copy()
    return X[indices].copy(), indices


def _cluster_sums(X: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per-cluster sums of the rows of X (K, D): bincount per feature (fast for few features)."""
    if X.shape[1] <= 16:
        return np.stack(
            [np.bincount(labels, weights=X[:, d], minlength=k) for d in range(X.shape[1])], axis=1
        )
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, labels, X)
    return sums


class KMeans:
    """K-means by Lloyd's algorithm with k-means++ (or random) seeding and `n_init` restarts.

    Minimises the inertia sum_n min_k |x_n - c_k|^2; the restart with the lowest inertia is kept.
    Attributes after `fit`: `cluster_centers_` (K, D), `labels_` (N,), `inertia_`, `n_iter_`.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: str | np.ndarray = "k-means++",
        n_init: int = 10,
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _check_params(self, X: np.ndarray) -> None:
        check_n_clusters(self.n_clusters, X.shape[0], "n_clusters")
        if isinstance(self.init, str):
            if self.init not in ("k-means++", "random"):
                raise ValueError(
                    f"init must be 'k-means++', 'random' or an array of centers; got {self.init!r}"
                )
        else:
            init = np.asarray(self.init, dtype=np.float64)
            if init.shape != (self.n_clusters, X.shape[1]):
                raise ValueError(
                    f"init centers must have shape (n_clusters, n_features) = "
                    f"{(self.n_clusters, X.shape[1])}; got {init.shape}"
                )
            if not np.all(np.isfinite(init)):
                raise ValueError("init centers contain NaN or infinity")
        if not (isinstance(self.n_init, int | np.integer) and self.n_init >= 1):
            raise ValueError(f"n_init must be an integer >= 1; got {self.n_init!r}")
        if not (isinstance(self.max_iter, int | np.integer) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be an integer >= 1; got {self.max_iter!r}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be >= 0; got {self.tol!r}")

    def _seed(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not isinstance(self.init, str):
            return np.array(self.init, dtype=np.float64)
        if self.init == "k-means++":
            return kmeans_plusplus(X, self.n_clusters, rng)[0]
        return X[rng.choice(X.shape[0], self.n_clusters, replace=False)].copy()

    def _lloyd(
        self, X: np.ndarray, centers: np.ndarray, x_sq: np.ndarray, tol_abs: float
    ) -> tuple[np.ndarray, np.ndarray, float, int]:
        """Alternate assignment and center update until labels stop changing or centers move < tol."""
        n_samples, n_features = X.shape
        k = self.n_clusters
        labels = np.full(n_samples, -1, dtype=np.intp)
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):  # noqa: B007 (n_iter is reported)
            d2 = pairwise_sq_distances(X, centers, x_sq)  # (N, K)
            new_labels = np.argmin(d2, axis=1)
            counts = np.bincount(new_labels, minlength=k)
            sums = _cluster_sums(X, new_labels, k)
            new_centers = np.empty_like(centers)
            filled = counts > 0
            new_centers[filled] = sums[filled] / counts[filled, None]
            if not filled.all():  # empty cluster: move it onto the points worst served so far
                worst = np.argsort(d2[np.arange(n_samples), new_labels])[::-1]
                new_centers[~filled] = X[worst[: int((~filled).sum())]]
            shift = float(((new_centers - centers) ** 2).sum())
            centers = new_centers
            same = np.array_equal(new_labels, labels)
            labels = new_labels
            if same or shift <= tol_abs:
                break
        # a final assignment so labels_ are consistent with cluster_centers_
        labels = np.argmin(pairwise_sq_distances(X, centers, x_sq), axis=1)
        inertia = float(((X - centers[labels]) ** 2).sum())
        return centers, labels, inertia, n_iter

    def fit(self, X: np.ndarray) -> KMeans:
        """Run `n_init` seeded Lloyd runs and keep the one with the lowest inertia."""
        X = check_data(X)
        self._check_params(X)
        rng = as_rng(self.random_state)
        x_sq = np.einsum("nd,nd->n", X, X)
        # sklearn-like tolerance: relative to the mean per-feature variance of the data
        tol_abs = float(self.tol * np.mean(np.var(X, axis=0)))
        n_init = self.n_init if isinstance(self.init, str) else 1
        best = None
        for _ in range(n_init):
            centers, labels, inertia, n_iter = self._lloyd(X, self._seed(X, rng), x_sq, tol_abs)
            if best is None or inertia < best[2]:
                best = (centers, labels, inertia, n_iter)
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best
        self.n_features_in_ = X.shape[1]
        return self

    def _check_fitted(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "cluster_centers_"):
            raise ValueError("this KMeans is not fitted yet: call fit(X) first")
        return check_data(X, n_features=self.n_features_in_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Index of the nearest center for each row of X."""
        X = self._check_fitted(X)
        return np.argmin(pairwise_sq_distances(X, self.cluster_centers_), axis=1)

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        """Fit, then return the training labels."""
        return self.fit(X).labels_

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Euclidean distances (N, K) to every center."""
        X = self._check_fitted(X)
        return np.sqrt(pairwise_sq_distances(X, self.cluster_centers_))

    def score(self, X: np.ndarray) -> float:
        """Negative inertia of X under the fitted centers (higher is better)."""
        X = self._check_fitted(X)
        return -float(pairwise_sq_distances(X, self.cluster_centers_).min(axis=1).sum())
