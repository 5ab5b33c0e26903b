"""Seeded mock Gaussian mixtures in any dimension (2D and 3D in the notebook), with additive noise.

Each sample is drawn from one of K Gaussians (chosen or random weights, means and anisotropic, correlated
covariances), then every point gets Gaussian jitter, and a fraction of points can be replaced by uniform
background outliers. The true labels (-1 for outliers) and parameters come back with the points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MixtureData", "make_mixture", "random_covariance", "random_rotation"]


@dataclass
class MixtureData:
    """Points and the truth they were drawn from."""

    X: np.ndarray  # (N, D) samples, shuffled
    labels: np.ndarray  # (N,) true component, -1 for a background outlier
    weights: np.ndarray  # (K,) mixing weights of the Gaussians (among inliers)
    means: np.ndarray  # (K, D)
    covariances: np.ndarray  # (K, D, D) covariances before jitter
    jitter: float  # standard deviation of the isotropic Gaussian noise added to every point
    outlier_bounds: np.ndarray  # (2, D) low/high corners of the box the outliers are drawn from

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    @property
    def inliers(self) -> np.ndarray:
        """Boolean mask (N,) of points drawn from a Gaussian."""
        return self.labels >= 0

    @property
    def effective_covariances(self) -> np.ndarray:
        """Covariances of the jittered clusters, Sigma_k + jitter^2 I: what a fit can recover."""
        return self.covariances + self.jitter**2 * np.eye(self.n_features)[None]


def random_rotation(rng: np.random.Generator, n_features: int) -> np.ndarray:
    """A uniformly random rotation matrix (D, D) from the QR decomposition of a Gaussian matrix."""
    q, r = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    q = q * np.sign(np.diag(r))[None, :]
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_covariance(
    rng: np.random.Generator,
    n_features: int,
    std_range: tuple[float, float] = (0.5, 1.5),
    max_anisotropy: float = 4.0,
) -> np.ndarray:
    """A random covariance R diag(s^2) R^T: largest axis std in `std_range`, others up to `max_anisotropy`x
    smaller, random orientation R (so the axes are correlated)."""
    s_max = rng.uniform(*std_range)
    stds = s_max / rng.uniform(1.0, max_anisotropy, size=n_features)
    stds[0] = s_max
    rot = random_rotation(rng, n_features)
    return (rot * stds**2) @ rot.T


def _random_means(
    rng: np.random.Generator, n_components: int, n_features: int, scales: np.ndarray, separation: float
) -> np.ndarray:
    """Means uniform in a box, re-drawn until every pair is >= separation x (larger axis std) apart."""
    half = max(separation * scales.max() * n_components ** (1.0 / n_features) * 0.75, 1e-9)
    means = np.zeros((n_components, n_features))
    placed = 0
    tries = 0
    while placed < n_components:
        candidate = rng.uniform(-half, half, size=n_features)
        needed = separation * np.maximum(scales[:placed], scales[placed])
        if placed == 0 or np.all(np.linalg.norm(means[:placed] - candidate, axis=1) >= needed):
            means[placed] = candidate
            placed += 1
            tries = 0
        else:
            tries += 1
            if tries > 200:  # crowded: enlarge the box and keep what is placed
                half *= 1.2
                tries = 0
    return means


def make_mixture(
    n_samples: int = 1000,
    n_components: int = 3,
    n_features: int = 2,
    *,
    weights: np.ndarray | None = None,
    means: np.ndarray | None = None,
    covariances: np.ndarray | None = None,
    std_range: tuple[float, float] = (0.5, 1.5),
    max_anisotropy: float = 4.0,
    separation: float = 4.0,
    jitter: float = 0.0,
    outlier_fraction: float = 0.0,
    seed: int | None = None,
) -> MixtureData:
    """Draw `n_samples` points from a noisy Gaussian mixture; anything not given is random (seeded).

    weights (K,) default Dirichlet(4); covariances (K, D, D) default `random_covariance`; means (K, D) default
    uniform in a box with pairwise distances >= `separation` x the larger cluster's largest std. Every point
    then gets N(0, jitter^2 I) noise, and round(outlier_fraction * n_samples) points are replaced by outliers
    uniform over the inliers' bounding box enlarged by 20%.
    """
    if n_samples < 1 or n_components < 1 or n_features < 1:
        raise ValueError("n_samples, n_components and n_features must all be >= 1")
    if not 0.0 <= outlier_fraction < 1.0:
        raise ValueError(f"outlier_fraction must be in [0, 1); got {outlier_fraction}")
    if jitter < 0:
        raise ValueError(f"jitter must be >= 0; got {jitter}")
    rng = np.random.default_rng(seed)
    k, d = n_components, n_features

    if weights is None:
        weights = rng.dirichlet(np.full(k, 4.0))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (k,) or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError(f"weights must be {k} non-negative numbers summing to 1")
    if covariances is None:
        covariances = np.stack([random_covariance(rng, d, std_range, max_anisotropy) for _ in range(k)])
    covariances = np.asarray(covariances, dtype=np.float64)
    if covariances.shape != (k, d, d):
        raise ValueError(f"covariances must have shape {(k, d, d)}; got {covariances.shape}")
    chols = np.linalg.cholesky(covariances)  # raises LinAlgError if not positive-definite
    if means is None:
        scales = np.sqrt(np.linalg.eigvalsh(covariances)[:, -1])
        means = _random_means(rng, k, d, scales, separation)
    means = np.asarray(means, dtype=np.float64)
    if means.shape != (k, d):
        raise ValueError(f"means must have shape {(k, d)}; got {means.shape}")

    n_out = int(round(outlier_fraction * n_samples))
    counts = rng.multinomial(n_samples - n_out, weights)
    labels = np.repeat(np.arange(k), counts)
    z = rng.standard_normal((labels.size, d))
    X = means[labels] + np.einsum("nij,nj->ni", chols[labels], z)
    if labels.size:
        lo, hi = X.min(axis=0), X.max(axis=0)
    else:
        lo, hi = means.min(axis=0) - 1.0, means.max(axis=0) + 1.0
    pad = 0.1 * (hi - lo)
    bounds = np.stack([lo - pad, hi + pad])
    if n_out:
        X = np.vstack([X, rng.uniform(bounds[0], bounds[1], size=(n_out, d))])
        labels = np.concatenate([labels, np.full(n_out, -1)])
    if jitter > 0:
        X = X + jitter * rng.standard_normal(X.shape)
    order = rng.permutation(n_samples)
    return MixtureData(X[order], labels[order], weights, means, covariances, float(jitter), bounds)
