"""Gaussian mixture models fitted by expectation-maximisation (EM), from scratch in numpy.

    p(x) = sum_k pi_k N(x | mu_k, Sigma_k)   [ + pi_0 / V : optional uniform background over the data's box ]

E-step: responsibilities r_nk = pi_k N(x_n | k) / p(x_n) by log-sum-exp, with each Gaussian evaluated
through the Cholesky factor U_k of its precision (Sigma_k^-1 = U_k U_k^T, so the Mahalanobis term is
|(x - mu_k) U_k|^2 and log det Sigma_k^-1 / 2 = sum log diag U_k). M-step: weighted counts, means and
covariances per covariance type, plus reg_covar on the diagonal. The stopping rule, the lower-bound
bookkeeping (`lower_bounds_` holds the mean log-likelihood computed in each iteration's E-step) and `n_iter_`
follow scikit-learn, so the two agree iteration for iteration from the same initial parameters.

Speed: for few features (D <= 9 with full covariances) one pass over the data, in cache-sized chunks, does the
whole iteration. Each Gaussian log-density is linear in the moment features f(x) = [1, x, upper(x x^T)], so
the (K, chunk) block of weighted log-densities is one small matrix product; the same block, exponentiated and
normalised into responsibilities, is multiplied back onto f(x) to give every sufficient statistic of the
M-step (counts, first and second moments) in one more product. The data are centred first, and both the
E-step and the M-step check how many digits the expansion would cancel; when it would lose more than ~6 of 16,
that iteration falls back to the direct two-pass formulas (x - mu_k) that never cancel.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gmm.kmeans import (
    _GEMM_BUDGET,
    KMeans,
    as_rng,
    check_data,
    check_n_clusters,
    kmeans_plusplus,
    matmul_rows,
    matmul_tn,
    pairwise_sq_distances,
)

__all__ = [
    "COVARIANCE_TYPES",
    "INIT_PARAMS",
    "ConvergenceWarning",
    "GaussianMixture",
    "n_parameters",
    "to_full_covariances",
]

COVARIANCE_TYPES = ("spherical", "diag", "tied", "full")
INIT_PARAMS = ("kmeans", "k-means++", "random")

_EPS = float(np.finfo(np.float64).eps)
_LOG_2PI = math.log(2.0 * math.pi)
_CHUNK = 8192  # at most this many rows per block of the fused E+M pass (blocks stay in L2 cache)
_MAX_CANCELLATION = 1e6  # moment path only while it loses < ~6 of 16 digits (errors ~1e-10 relative)
_MAX_FEATURES = 64  # moment path only for few moment features (full: D <= 9)
_MAX_FEATURE_BYTES = 512 * 2**20  # ... and while the (N, P) feature matrix stays small


class ConvergenceWarning(UserWarning):
    """EM reached max_iter before the mean log-likelihood changed by less than tol."""


@dataclass
class _Params:
    """Mixture parameters in centred coordinates (means are relative to the data mean)."""

    weights: np.ndarray  # (K,) Gaussian weights; they sum to 1 - noise
    means: np.ndarray  # (K, D)
    covariances: np.ndarray  # full (K, D, D) | tied (D, D) | diag (K, D) | spherical (K,)
    prec_chol: np.ndarray  # same shapes: upper-triangular U with Sigma^-1 = U U^T (or 1/sqrt(variance))
    noise: float = 0.0  # weight of the uniform background component


# ----------------------------------------------------------------------------------------------------------
# Covariance helpers
# ----------------------------------------------------------------------------------------------------------


def to_full_covariances(
    covariances: np.ndarray,
    covariance_type: str,
    n_components: int | None = None,
    n_features: int | None = None,
) -> np.ndarray:
    """Expand any covariance parametrisation to full matrices (K, D, D), e.g. for plotting or sampling.

    `n_components` is needed for 'tied', `n_features` for 'spherical' (the others carry their own shapes).
    """
    cov = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        return cov.copy()
    if covariance_type == "tied":
        if n_components is None:
            raise ValueError("n_components is needed to expand a tied covariance")
        return np.repeat(cov[None], n_components, axis=0)
    if covariance_type == "diag":
        return cov[:, :, None] * np.eye(cov.shape[1])[None]
    if covariance_type == "spherical":
        if n_features is None:
            raise ValueError("n_features is needed to expand spherical variances")
        return cov[:, None, None] * np.eye(n_features)[None]
    raise ValueError(_bad_covariance_type(covariance_type))


def n_parameters(
    n_components: int, n_features: int, covariance_type: str, noise_component: bool = False
) -> int:
    """Number of free parameters: covariances + means + (K - 1) weights (+ 1 background weight)."""
    k, d = n_components, n_features
    cov = {"full": k * d * (d + 1) // 2, "tied": d * (d + 1) // 2, "diag": k * d, "spherical": k}
    if covariance_type not in cov:
        raise ValueError(_bad_covariance_type(covariance_type))
    return cov[covariance_type] + k * d + k - 1 + int(noise_component)


def _bad_covariance_type(covariance_type: object) -> str:
    return f"covariance_type must be one of {', '.join(map(repr, COVARIANCE_TYPES))}; got {covariance_type!r}"


def _collapse_message(components: list[int], reg_covar: float) -> str:
    return (
        f"EM failed: the covariance of component(s) {components} became singular - the component collapsed "
        "onto a single point or a lower-dimensional set (duplicate samples, too few points). Increase "
        f"reg_covar (now {reg_covar:g}; e.g. 1e-3 times the data variance), use fewer components, remove "
        "duplicate samples, or rescale X."
    )


def _precision_cholesky(cov: np.ndarray, covariance_type: str, reg_covar: float, floor: float) -> np.ndarray:
    """Cholesky factor U of each precision (Sigma^-1 = U U^T, U upper triangular); ValueError if singular.

    `floor` is the smallest variance distinguishable from rounding noise at the data's scale: anything below
    it means the component has collapsed.
    """
    if covariance_type in ("full", "tied"):
        mats = cov if covariance_type == "full" else cov[None]
        try:
            low = np.linalg.cholesky(mats)  # (K, D, D) lower, Sigma = L L^T
        except np.linalg.LinAlgError:
            low = None
        if low is None or not np.all(np.isfinite(low)):
            bad = [k for k in range(len(mats)) if not _is_positive_definite(mats[k])]
            raise ValueError(_collapse_message(bad or list(range(len(mats))), reg_covar))
        # squared diagonal of L = variance left in each direction given the previous ones: below the absolute
        # floor, or ~1e3 rounding errors of the component's largest variance, the covariance is singular
        cond_var = np.diagonal(low, axis1=1, axis2=2) ** 2  # (K, D)
        scale = np.diagonal(mats, axis1=1, axis2=2).max(axis=1, keepdims=True)
        bad = np.flatnonzero(np.any((cond_var <= floor) | (cond_var <= 1e3 * _EPS * scale), axis=1)).tolist()
        if bad:
            raise ValueError(_collapse_message(bad, reg_covar))
        # U = L^-T: Sigma^-1 = L^-T L^-1 = U U^T (batched; tiny matrices, so LAPACK per matrix is cheap)
        prec = np.triu(np.linalg.inv(low).transpose(0, 2, 1))
        return prec if covariance_type == "full" else prec[0]
    bad_mask = ~(cov > floor)
    if np.any(bad_mask):
        bad = np.flatnonzero(bad_mask.reshape(cov.shape[0], -1).any(axis=1)).tolist()
        raise ValueError(_collapse_message(bad, reg_covar))
    return 1.0 / np.sqrt(cov)


def _is_positive_definite(mat: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(mat)
    except np.linalg.LinAlgError:
        return False
    return True


def _precision_cholesky_from_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """Upper-triangular U with P = U U^T, from the precision itself (Cholesky of the reversed P)."""
    if covariance_type in ("full", "tied"):
        flipped = precisions[..., ::-1, ::-1]
        return np.linalg.cholesky(flipped)[..., ::-1, ::-1].copy()
    return np.sqrt(precisions)


def _covariance_from_prec_chol(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """Sigma = (U U^T)^-1 = U^-T U^-1."""
    if covariance_type in ("full", "tied"):
        mats = prec_chol if covariance_type == "full" else prec_chol[None]
        inv = np.triu(np.linalg.inv(mats))  # U^-1 (K, D, D), upper triangular
        cov = inv.transpose(0, 2, 1) @ inv
        return cov if covariance_type == "full" else cov[0]
    return 1.0 / prec_chol**2


def _precisions(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    if covariance_type == "full":
        return prec_chol @ prec_chol.transpose(0, 2, 1)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2


def _log_det_prec_chol(prec_chol: np.ndarray, covariance_type: str, n_features: int, k: int) -> np.ndarray:
    """log det U = -log det(Sigma) / 2 for each component, shape (K,)."""
    if covariance_type == "full":
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.full(k, np.log(np.diag(prec_chol)).sum())
    if covariance_type == "diag":
        return np.log(prec_chol).sum(axis=1)
    return n_features * np.log(prec_chol)


# ----------------------------------------------------------------------------------------------------------
# Direct (two-pass) E-step and M-step: used for scoring new data, for many features, and as the fallback
# ----------------------------------------------------------------------------------------------------------


def _log_gaussian(
    X: np.ndarray, means: np.ndarray, prec_chol: np.ndarray, covariance_type: str
) -> np.ndarray:
    """log N(x_n | mu_k, Sigma_k) for all n, k: (N, K), from differences (x - mu_k) (no cancellation)."""
    n, d = X.shape
    k = means.shape[0]
    maha = np.empty((n, k))
    for j in range(k):
        diff = X - means[j]  # (N, D)
        if covariance_type == "full":
            y = matmul_rows(diff, prec_chol[j])
        elif covariance_type == "tied":
            y = matmul_rows(diff, prec_chol)
        else:
            y = diff * prec_chol[j]  # diag (D,) or spherical scalar
        maha[:, j] = np.einsum("nd,nd->n", y, y)
    log_det = _log_det_prec_chol(prec_chol, covariance_type, d, k)
    return -0.5 * (d * _LOG_2PI + maha) + log_det


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """log sum_k exp(a_nk) per row, stable (max subtracted); rows of all -inf give -inf."""
    m = a.max(axis=1)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(a - m_safe[:, None]).sum(axis=1)) + m_safe


def _params_from_resp(
    X: np.ndarray, resp: np.ndarray, covariance_type: str, reg_covar: float, floor: float, noise: bool
) -> _Params:
    """M-step from responsibilities (N, K [+1 background]) with the two-pass covariance formulas."""
    n, d = X.shape
    nk_all = resp.sum(axis=0) + 10 * _EPS  # (K',) the 10 eps keeps empty components finite
    k = nk_all.shape[0] - int(noise)
    weights_all = nk_all / nk_all.sum()
    nk = nk_all[:k]
    r = resp[:, :k]
    means = matmul_tn(r, X) / nk[:, None]  # (K, D)
    if covariance_type in ("full", "tied"):
        cov = np.empty((k, d, d))
        for j in range(k):
            diff = X - means[j]
            cov[j] = matmul_tn(r[:, j, None] * diff, diff)
        if covariance_type == "tied":
            cov = cov.sum(axis=0) / nk.sum()
            cov.flat[:: d + 1] += reg_covar
        else:
            cov /= nk[:, None, None]
            cov.reshape(k, -1)[:, :: d + 1] += reg_covar
    else:
        var = np.empty((k, d))
        for j in range(k):
            var[j] = matmul_tn(r[:, j, None], (X - means[j]) ** 2)[0]
        var = var / nk[:, None] + reg_covar
        cov = var.mean(axis=1) if covariance_type == "spherical" else var
    prec_chol = _precision_cholesky(cov, covariance_type, reg_covar, floor)
    return _Params(weights_all[:k].copy(), means, cov, prec_chol, float(weights_all[k]) if noise else 0.0)


# ----------------------------------------------------------------------------------------------------------
# Moment path: one fused, chunked pass per EM iteration for few features
# ----------------------------------------------------------------------------------------------------------


def _n_moment_features(n_features: int, covariance_type: str) -> int:
    d = n_features
    return {"full": 1 + d + d * (d + 1) // 2, "tied": 1 + d + d * (d + 1) // 2, "diag": 1 + 2 * d}.get(
        covariance_type, 2 + d
    )


def _moment_features(X: np.ndarray, covariance_type: str) -> np.ndarray:
    """f(x) = [1, x, second-order terms] (N, P): upper(x x^T) for full/tied, x^2 diag, |x|^2 spherical."""
    n, d = X.shape
    feats = np.empty((n, _n_moment_features(d, covariance_type)))
    feats[:, 0] = 1.0
    feats[:, 1 : 1 + d] = X
    if covariance_type in ("full", "tied"):
        iu, ju = np.triu_indices(d)
        np.multiply(X[:, iu], X[:, ju], out=feats[:, 1 + d :])
    elif covariance_type == "diag":
        np.multiply(X, X, out=feats[:, 1 + d :])
    else:
        feats[:, 1 + d] = np.einsum("nd,nd->n", X, X)
    return feats


def _moment_coefficients(params: _Params, covariance_type: str, log_background: float | None) -> np.ndarray:
    """W (K [+1], P) such that f(x) @ W.T = log pi_k + log N(x | mu_k, Sigma_k) (+ background row)."""
    mu = params.means
    k, d = mu.shape
    prec = _precisions(params.prec_chol, covariance_type)
    log_det = _log_det_prec_chol(params.prec_chol, covariance_type, d, k)
    w = np.zeros((k + int(log_background is not None), _n_moment_features(d, covariance_type)))
    if covariance_type in ("full", "tied"):
        prec = prec if covariance_type == "full" else np.broadcast_to(prec, (k, d, d))
        p_mu = np.einsum("kij,kj->ki", prec, mu)  # (K, D)
        quad_mu = np.einsum("ki,ki->k", mu, p_mu)
        iu, ju = np.triu_indices(d)
        w[:k, 1 + d :] = np.where(iu == ju, -0.5, -1.0) * prec[:, iu, ju]
    elif covariance_type == "diag":
        p_mu = prec * mu
        quad_mu = np.einsum("kd,kd->k", mu, p_mu)
        w[:k, 1 + d :] = -0.5 * prec
    else:
        p_mu = prec[:, None] * mu
        quad_mu = prec * np.einsum("kd,kd->k", mu, mu)
        w[:k, 1 + d] = -0.5 * prec
    with np.errstate(divide="ignore"):
        w[:k, 0] = np.log(params.weights) - 0.5 * d * _LOG_2PI + log_det - 0.5 * quad_mu
    w[:k, 1 : 1 + d] = p_mu
    if log_background is not None:
        w[k, 0] = math.log(params.noise) + log_background if params.noise > 0 else -np.inf
    return w


def _moment_pass(feats: np.ndarray, coef: np.ndarray) -> tuple[float, np.ndarray]:
    """One pass over the data: mean log-likelihood under `coef`, and sum_n r_nk f(x_n) for the M-step."""
    n = feats.shape[0]
    stats = np.zeros((coef.shape[0], feats.shape[1]))
    total = 0.0
    chunk = int(np.clip(_GEMM_BUDGET // coef.size, 256, _CHUNK))  # single-threaded BLAS, L2-sized blocks
    for start in range(0, n, chunk):
        f = feats[start : start + chunk]  # (c, P)
        g = coef @ f.T  # (K', c) weighted log-densities
        m = g.max(axis=0)  # (c,)
        g -= m
        np.exp(g, out=g)
        s = g.sum(axis=0)  # (c,)  p(x) / exp(m)
        g /= s  # responsibilities
        stats += g @ f  # (K', P)
        total += float(np.log(s).sum() + m.sum())
    return total / n, stats


def _params_from_moments(
    stats: np.ndarray, covariance_type: str, n_features: int, reg_covar: float, floor: float, noise: bool
) -> _Params | None:
    """M-step from the moment statistics; None when E[x^2] - mu^2 would cancel too many digits."""
    d = n_features
    nk_all = stats[:, 0] + 10 * _EPS
    k = nk_all.shape[0] - int(noise)
    weights_all = nk_all / nk_all.sum()
    nk = nk_all[:k]
    means = stats[:k, 1 : 1 + d] / nk[:, None]
    second = stats[:k, 1 + d :] / nk[:, None]  # E_k[second-order features]
    if covariance_type in ("full", "tied"):
        iu, ju = np.triu_indices(d)
        m2 = np.empty((k, d, d))
        m2[:, iu, ju] = second
        m2[:, ju, iu] = second
        if covariance_type == "full":
            cov = m2 - means[:, :, None] * means[:, None, :]
            raw_second = np.diagonal(m2, axis1=1, axis2=2)
            var = np.diagonal(cov, axis1=1, axis2=2)
        else:
            w = nk / nk.sum()
            cov = np.einsum("k,kij->ij", w, m2) - np.einsum("k,ki,kj->ij", w, means, means)
            raw_second = np.einsum("k,kii->i", w, m2)
            var = np.diag(cov)
    elif covariance_type == "diag":
        cov = second - means**2
        raw_second, var = second, cov
    else:
        raw_second = second[:, 0] / d
        cov = raw_second - np.einsum("kd,kd->k", means, means) / d
        var = cov
    with np.errstate(divide="ignore", invalid="ignore"):
        lost = raw_second / (var + reg_covar)
    if not np.all(np.isfinite(lost)) or np.any(var + reg_covar <= 0) or lost.max() > _MAX_CANCELLATION:
        return None
    cov = np.array(cov)
    if covariance_type == "full":
        cov.reshape(k, -1)[:, :: d + 1] += reg_covar
    elif covariance_type == "tied":
        cov.flat[:: d + 1] += reg_covar
    else:
        cov += reg_covar
    prec_chol = _precision_cholesky(cov, covariance_type, reg_covar, floor)
    return _Params(weights_all[:k].copy(), means, cov, prec_chol, float(weights_all[k]) if noise else 0.0)


def _moment_estep_ok(params: _Params, covariance_type: str) -> bool:
    """Whether expanding (x - mu)^T P (x - mu) loses few enough digits: |mu_k|^2 * trace(P_k) is small."""
    mu_sq = np.einsum("kd,kd->k", params.means, params.means)
    u = params.prec_chol
    if covariance_type == "full":
        tr = np.einsum("kij,kij->k", u, u)
    elif covariance_type == "tied":
        tr = np.full(mu_sq.shape, float(np.einsum("ij,ij->", u, u)))
    elif covariance_type == "diag":
        tr = (u**2).sum(axis=1)
    else:
        tr = u**2 * params.means.shape[1]
    return float((mu_sq * tr).max()) <= _MAX_CANCELLATION


# ----------------------------------------------------------------------------------------------------------
# The estimator
# ----------------------------------------------------------------------------------------------------------


class GaussianMixture:
    """Gaussian mixture fitted by EM; same defaults and initial-parameter arguments as scikit-learn's.

    Parameters mirror `sklearn.mixture.GaussianMixture`: `weights_init` (K,), `means_init` (K, D) and
    `precisions_init` (shape per covariance type) fix the starting point; whatever is not given comes from
    `init_params` ('kmeans': k-means labels, 'k-means++': k-means++ seeds, 'random': random responsibilities).

    Beyond scikit-learn: `noise_component=True` adds a uniform background density over the bounding box of
    the training data, with its own weight `noise_weight_` (initial value `noise_weight_init`). It absorbs
    outliers that would otherwise inflate the Gaussians. `weights_init` still sums to 1 over the Gaussians;
    it is scaled by 1 - noise_weight_init. With the background, `predict` labels its points -1 and
    `predict_proba` has a last column for the background.

    Attributes after `fit`: `weights_`, `means_`, `covariances_`, `precisions_`, `precisions_cholesky_`,
    `converged_`, `n_iter_`, `lower_bound_`, `lower_bounds_` (mean log-likelihood per iteration) and
    `noise_weight_`.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: np.ndarray | None = None,
        means_init: np.ndarray | None = None,
        precisions_init: np.ndarray | None = None,
        random_state: int | np.random.Generator | None = None,
        noise_component: bool = False,
        noise_weight_init: float = 0.1,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.noise_component = noise_component
        self.noise_weight_init = noise_weight_init

    # -- validation ------------------------------------------------------------------------------------

    def _check_params(self, X: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """Validate hyper-parameters and initial arrays; returns the initial arrays as float64."""
        n, d = X.shape
        k = check_n_clusters(self.n_components, n, "n_components")
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(_bad_covariance_type(self.covariance_type))
        if self.init_params not in INIT_PARAMS:
            raise ValueError(
                f"init_params must be one of {', '.join(map(repr, INIT_PARAMS))}; got {self.init_params!r}"
            )
        if not (isinstance(self.tol, numbers.Real) and self.tol >= 0):
            raise ValueError(f"tol must be a number >= 0; got {self.tol!r}")
        if not (isinstance(self.reg_covar, numbers.Real) and self.reg_covar >= 0):
            raise ValueError(f"reg_covar must be a number >= 0; got {self.reg_covar!r}")
        for name, low in (("max_iter", 0), ("n_init", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        if self.noise_component and not (0.0 < self.noise_weight_init < 1.0):
            raise ValueError(f"noise_weight_init must be in (0, 1); got {self.noise_weight_init!r}")

        weights = means = precisions = None
        if self.weights_init is not None:
            weights = _init_array(self.weights_init, (k,), "weights_init")
            if np.any(weights < 0) or np.any(weights > 1):
                raise ValueError(
                    f"weights_init must lie in [0, 1]; got min {weights.min():g}, max {weights.max():g}"
                )
            if not abs(weights.sum() - 1.0) <= 1e-8:
                raise ValueError(f"weights_init must sum to 1; got sum {weights.sum():.10g}")
        if self.means_init is not None:
            means = _init_array(self.means_init, (k, d), "means_init")
        if self.precisions_init is not None:
            shape = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[
                self.covariance_type
            ]
            precisions = _init_array(self.precisions_init, shape, f"precisions_init ({self.covariance_type})")
            if self.covariance_type in ("full", "tied"):
                mats = precisions if self.covariance_type == "full" else precisions[None]
                for j, p in enumerate(mats):
                    if (
                        not np.allclose(p, p.T)
                        or not _is_positive_definite(p)
                        or np.linalg.eigvalsh(p).min() <= 0
                    ):
                        which = (
                            f"precisions_init[{j}]" if self.covariance_type == "full" else "precisions_init"
                        )
                        raise ValueError(
                            f"{which} must be symmetric positive-definite (a valid inverse covariance)"
                        )
            elif np.any(precisions <= 0):
                raise ValueError(f"precisions_init ({self.covariance_type}) must be > 0 everywhere")
        return weights, means, precisions

    # -- initialisation ----------------------------------------------------------------------------------

    def _initialize(
        self,
        X: np.ndarray,
        shift: np.ndarray,
        rng: np.random.Generator,
        inits: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
    ) -> _Params:
        """Initial parameters: given arrays where provided, else estimated from initial responsibilities."""
        weights_init, means_init, precisions_init = inits
        n, _ = X.shape
        k = self.n_components
        est = None
        if weights_init is None or means_init is None or precisions_init is None:
            if self.init_params == "kmeans":
                labels = KMeans(k, n_init=1, random_state=rng).fit(X).labels_
                resp = np.zeros((n, k))
                resp[np.arange(n), labels] = 1.0
            elif self.init_params == "k-means++":
                centers, idx = kmeans_plusplus(X, k, rng)
                resp = np.zeros((n, k))
                if self.noise_component:
                    # a Gaussian grown from one seed point has covariance reg_covar and would lose every other
                    # point to the background in the first E-step: grow it from the points nearest its seed
                    resp[np.arange(n), pairwise_sq_distances(X, centers).argmin(axis=1)] = 1.0
                else:
                    resp[idx, np.arange(k)] = 1.0
            else:
                resp = rng.uniform(size=(n, k))
                resp /= resp.sum(axis=1, keepdims=True)
            est = _params_from_resp(X, resp, self.covariance_type, self.reg_covar, self._floor, noise=False)
        weights = est.weights if weights_init is None else weights_init.copy()
        means = est.means if means_init is None else means_init - shift
        if precisions_init is None:
            cov, prec_chol = est.covariances, est.prec_chol
        else:
            prec_chol = _precision_cholesky_from_precisions(precisions_init, self.covariance_type)
            cov = _covariance_from_prec_chol(prec_chol, self.covariance_type)
        noise = 0.0
        if self.noise_component:
            noise = float(self.noise_weight_init)
            weights = weights * (1.0 - noise)
        return _Params(weights, means, cov, prec_chol, noise)

    # -- EM ------------------------------------------------------------------------------------------------

    def _em_iteration(
        self, X: np.ndarray, feats: np.ndarray | None, params: _Params
    ) -> tuple[float, _Params]:
        """One E-step (mean log-likelihood of `params`) and M-step (new parameters)."""
        ct, noise = self.covariance_type, self.noise_component
        if feats is not None and self._use_moments and _moment_estep_ok(params, ct):
            coef = _moment_coefficients(params, ct, self._log_background if noise else None)
            mean_ll, stats = _moment_pass(feats, coef)
            new = _params_from_moments(stats, ct, X.shape[1], self.reg_covar, self._floor, noise)
            if new is not None:
                self._path_counts["moments"] += 1
                return mean_ll, new
            self._use_moments = False  # too much cancellation at this scale: use the direct formulas from now
        self._path_counts["direct"] += 1
        log_prob = self._weighted_log_prob_centred(X, params, inside=None)
        log_norm = _logsumexp_rows(log_prob)
        resp = np.exp(log_prob - log_norm[:, None])
        return float(log_norm.mean()), _params_from_resp(X, resp, ct, self.reg_covar, self._floor, noise)

    def fit(
        self, X: np.ndarray, y: object = None, *, callback: Callable[[GaussianMixture], None] | None = None
    ):
        """Fit by EM, keeping the best of `n_init` starts; `callback(self)` runs after every iteration.

        Each iteration computes the mean log-likelihood of the current parameters (E-step, stored in
        `lower_bounds_`), then updates them (M-step); it stops when that value changes by less than `tol`.
        """
        X = check_data(X)
        inits = self._check_params(X)
        n, d = X.shape
        shift = X.mean(axis=0)
        Xc = X - shift
        radius_sq = float(np.einsum("nd,nd->n", Xc, Xc).max())
        self._floor = (1e3 * _EPS) ** 2 * max(radius_sq, np.finfo(np.float64).tiny)
        self._shift = shift
        if self.noise_component:
            lo, hi = X.min(axis=0), X.max(axis=0)
            span = np.maximum(hi - lo, 1e-12 * max(1.0, float(np.abs(X).max())))
            self.noise_bounds_ = np.stack([lo, lo + span])
            self._log_background = -float(np.log(span).sum())
        n_feat = _n_moment_features(d, self.covariance_type)
        self._use_moments = n_feat <= _MAX_FEATURES and n * n_feat * 8 <= _MAX_FEATURE_BYTES
        feats = _moment_features(Xc, self.covariance_type) if self._use_moments else None
        self._path_counts = {"moments": 0, "direct": 0}  # EM iterations done each way (for tests/diagnostics)
        rng = as_rng(self.random_state)

        best = None
        for _ in range(self.n_init):
            params = self._initialize(Xc, shift, rng, inits)
            lower_bound, history, converged, n_iter = -np.inf, [], False, 0
            for n_iter in range(1, self.max_iter + 1):
                previous = lower_bound
                lower_bound, params = self._em_iteration(Xc, feats, params)
                history.append(lower_bound)
                if callback is not None:
                    self._set_public(params, shift)
                    self.n_iter_, self.lower_bound_, self.lower_bounds_ = n_iter, lower_bound, list(history)
                    self.converged_ = abs(lower_bound - previous) < self.tol
                    callback(self)
                if abs(lower_bound - previous) < self.tol:
                    converged = True
                    break
            if best is None or lower_bound > best[0]:
                best = (lower_bound, params, history, converged, n_iter)

        lower_bound, params, history, converged, n_iter = best
        self._set_public(params, shift)
        self.lower_bound_, self.lower_bounds_ = lower_bound, history
        self.converged_, self.n_iter_ = converged, n_iter
        if not converged and self.max_iter > 0:
            warnings.warn(
                f"EM did not converge in max_iter={self.max_iter} iterations (last change of the mean "
                f"log-likelihood >= tol={self.tol:g}). Increase max_iter or tol, try other initial "
                "parameters, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def fit_predict(self, X: np.ndarray, y: object = None) -> np.ndarray:
        """Fit, then return the most likely component of each training sample."""
        return self.fit(X).predict(X)

    # -- parameters ----------------------------------------------------------------------------------------

    def _set_public(self, params: _Params, shift: np.ndarray) -> None:
        self.weights_ = params.weights.copy()
        self.means_ = params.means + shift
        self.covariances_ = params.covariances.copy()
        self.precisions_cholesky_ = params.prec_chol.copy()
        self.precisions_ = _precisions(params.prec_chol, self.covariance_type)
        self.noise_weight_ = params.noise
        self.n_features_in_ = shift.shape[0]
        self._params = params

    def full_covariances(self) -> np.ndarray:
        """The fitted covariances as full (K, D, D) matrices whatever the covariance type."""
        self._check_fitted()
        k, d = self.means_.shape
        return to_full_covariances(self.covariances_, self.covariance_type, k, d)

    def _check_fitted(self) -> None:
        if not hasattr(self, "means_"):
            raise ValueError("this GaussianMixture is not fitted yet: call fit(X) first")

    # -- scoring ---------------------------------------------------------------------------------------------

    def _weighted_log_prob_centred(
        self, Xc: np.ndarray, params: _Params, inside: np.ndarray | None
    ) -> np.ndarray:
        """log pi_k + log N(x | k) (N, K), plus a background column when noise_component; centred inputs."""
        with np.errstate(divide="ignore"):
            out = _log_gaussian(Xc, params.means, params.prec_chol, self.covariance_type) + np.log(
                params.weights
            )
        if not self.noise_component:
            return out
        with np.errstate(divide="ignore"):
            bg = math.log(params.noise) + self._log_background if params.noise > 0 else -np.inf
        col = np.full((Xc.shape[0], 1), bg)
        if inside is not None:
            col[~inside, 0] = -np.inf
        return np.hstack([out, col])

    def _weighted_log_prob(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        X = check_data(X, n_features=self.n_features_in_)
        inside = None
        if self.noise_component:
            inside = np.all((X >= self.noise_bounds_[0]) & (X <= self.noise_bounds_[1]), axis=1)
        return self._weighted_log_prob_centred(X - self._shift, self._params, inside)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """log p(x) for each sample (N,)."""
        return _logsumexp_rows(self._weighted_log_prob(X))

    def score(self, X: np.ndarray, y: object = None) -> float:
        """Mean log-likelihood per sample."""
        return float(self.score_samples(X).mean())

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Responsibilities (N, K), or (N, K + 1) with the background last when noise_component."""
        log_prob = self._weighted_log_prob(X)
        return np.exp(log_prob - _logsumexp_rows(log_prob)[:, None])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most likely component per sample; -1 for the background when noise_component."""
        labels = self._weighted_log_prob(X).argmax(axis=1)
        if self.noise_component:
            labels[labels == self.n_components] = -1
        return labels

    def n_parameters(self) -> int:
        """Number of free parameters of the fitted model (used by bic/aic)."""
        self._check_fitted()
        return n_parameters(
            self.n_components, self.n_features_in_, self.covariance_type, self.noise_component
        )

    def bic(self, X: np.ndarray) -> float:
        """Bayesian information criterion -2 log L + p log N (lower is better)."""
        X = check_data(X)
        return -2.0 * self.score(X) * X.shape[0] + self.n_parameters() * math.log(X.shape[0])

    def aic(self, X: np.ndarray) -> float:
        """Akaike information criterion -2 log L + 2 p (lower is better)."""
        X = check_data(X)
        return -2.0 * self.score(X) * X.shape[0] + 2 * self.n_parameters()

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw (X (n, D), labels (n,)) from the fitted mixture; background draws are labelled -1."""
        self._check_fitted()
        if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 1:
            raise ValueError(f"n_samples must be an integer >= 1; got {n_samples!r}")
        rng = as_rng(self.random_state)
        k, d = self.means_.shape
        probs = np.append(self.weights_, self.noise_weight_) if self.noise_component else self.weights_
        counts = rng.multinomial(n_samples, probs / probs.sum())
        cov = self.full_covariances()
        xs, ys = [], []
        for j in range(k):
            chol = np.linalg.cholesky(cov[j])
            xs.append(self.means_[j] + matmul_rows(rng.standard_normal((counts[j], d)), chol.T))
            ys.append(np.full(counts[j], j))
        if self.noise_component:
            lo, hi = self.noise_bounds_
            xs.append(rng.uniform(lo, hi, size=(counts[k], d)))
            ys.append(np.full(counts[k], -1))
        return np.concatenate(xs), np.concatenate(ys)


def _init_array(value: object, shape: tuple[int, ...], name: str) -> np.ndarray:
    """A finite float64 array of the expected shape, or a ValueError naming the argument."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array of shape {shape}: {err}") from None
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr
