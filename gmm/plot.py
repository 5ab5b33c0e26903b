"""Plotting helpers: samples, 2D covariance ellipses at Mahalanobis radii, 3D ellipsoids, EM progression.

An ellipse at Mahalanobis radius r is the set {x : (x - mu)^T Sigma^-1 (x - mu) = r^2}; it is the image of the
circle of radius r under x = mu + L z with Sigma = L L^T. In D dimensions it encloses a fraction
P(chi^2_D <= r^2) of the Gaussian's mass (`mass_within`).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy.stats import chi2

from gmm.em import to_full_covariances

__all__ = [
    "component_colors",
    "ellipse_points",
    "ellipsoid_surface",
    "mass_within",
    "plot_ellipses",
    "plot_ellipsoids",
    "plot_em_progression",
    "plot_model_2d",
    "plot_samples",
]

OUTLIER_COLOR = "0.55"


def component_colors(n: int) -> list:
    """n distinct colours (tab10, then tab20)."""
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def mass_within(radius: float, n_features: int) -> float:
    """Probability mass of a Gaussian inside Mahalanobis radius `radius`: P(chi^2_D <= r^2)."""
    return float(chi2.cdf(radius**2, n_features))


def _full(model_or_cov: object, covariance_type: str | None, k: int, d: int) -> np.ndarray:
    if covariance_type is None:
        return np.asarray(model_or_cov, dtype=np.float64)
    return to_full_covariances(model_or_cov, covariance_type, k, d)


def ellipse_points(mean: np.ndarray, cov: np.ndarray, radius: float = 1.0, n: int = 100) -> np.ndarray:
    """(n, 2) points on the 2D ellipse of Mahalanobis radius `radius` around `mean`."""
    t = np.linspace(0.0, 2.0 * np.pi, n)
    circle = np.stack([np.cos(t), np.sin(t)])  # (2, n)
    chol = np.linalg.cholesky(np.asarray(cov, dtype=np.float64))
    return np.asarray(mean)[None, :] + radius * (chol @ circle).T


def ellipsoid_surface(
    mean: np.ndarray, cov: np.ndarray, radius: float = 1.0, n: int = 24
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mesh (x, y, z), each (n, n), of the 3D ellipsoid of Mahalanobis radius `radius` (for plot_surface)."""
    u = np.linspace(0.0, 2.0 * np.pi, n)
    v = np.linspace(0.0, np.pi, n)
    sphere = np.stack(
        [np.outer(np.cos(u), np.sin(v)), np.outer(np.sin(u), np.sin(v)), np.outer(np.ones(n), np.cos(v))]
    )
    evals, evecs = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    transform = evecs * np.sqrt(np.maximum(evals, 0.0))  # (3, 3): columns = scaled principal axes
    pts = radius * np.einsum("ij,jab->iab", transform, sphere) + np.asarray(mean)[:, None, None]
    return pts[0], pts[1], pts[2]


def plot_samples(
    ax: Axes, X: np.ndarray, labels: np.ndarray | None = None, *, s: float = 4.0, alpha: float = 0.5, **kwargs
) -> None:
    """Scatter 2D or 3D points, coloured by label when given (label -1, an outlier, in grey)."""
    X = np.asarray(X)
    coords = [X[:, i] for i in range(min(X.shape[1], 3 if ax.name == "3d" else 2))]
    if labels is None:
        ax.scatter(*coords, s=s, alpha=alpha, color="0.3", linewidths=0, **kwargs)
        return
    labels = np.asarray(labels)
    colors = component_colors(max(int(labels.max()) + 1, 1))
    point_colors = [OUTLIER_COLOR if lab < 0 else colors[lab] for lab in labels]
    ax.scatter(*coords, s=s, alpha=alpha, c=point_colors, linewidths=0, **kwargs)


def plot_ellipses(
    ax: Axes,
    means: np.ndarray,
    covariances: np.ndarray,
    covariance_type: str | None = None,
    *,
    radii: Sequence[float] = (1.0, 2.0),
    colors: Sequence | None = None,
    weights: np.ndarray | None = None,
    linewidth: float = 1.8,
    mark_means: bool = True,
) -> None:
    """Draw each 2D component as ellipses at the Mahalanobis `radii` (line width grows with the weight).

    `covariances` are full (K, 2, 2) matrices, or any type's parametrisation when `covariance_type` is given.
    """
    means = np.asarray(means)
    k, d = means.shape
    if d != 2:
        raise ValueError(f"plot_ellipses draws 2D components; got {d} features (use plot_ellipsoids for 3D)")
    covs = _full(covariances, covariance_type, k, d)
    colors = component_colors(k) if colors is None else colors
    for j in range(k):
        lw = linewidth if weights is None else linewidth * (0.7 + 1.2 * float(weights[j]))
        for i, r in enumerate(sorted(radii)):
            pts = ellipse_points(means[j], covs[j], r)
            ax.plot(pts[:, 0], pts[:, 1], color=colors[j], lw=lw, alpha=1.0 - 0.25 * i)
        if mark_means:
            ax.plot(*means[j], marker="x", color="k", ms=7, mew=2)


def plot_ellipsoids(
    ax: Axes,
    means: np.ndarray,
    covariances: np.ndarray,
    covariance_type: str | None = None,
    *,
    radius: float = 2.0,
    colors: Sequence | None = None,
    alpha: float = 0.25,
    n: int = 20,
) -> None:
    """Draw each 3D component as a translucent ellipsoid surface at Mahalanobis radius `radius`."""
    means = np.asarray(means)
    k, d = means.shape
    if d != 3:
        raise ValueError(f"plot_ellipsoids draws 3D components; got {d} features")
    covs = _full(covariances, covariance_type, k, d)
    colors = component_colors(k) if colors is None else colors
    for j in range(k):
        x, y, z = ellipsoid_surface(means[j], covs[j], radius, n)
        ax.plot_surface(x, y, z, color=colors[j], alpha=alpha, linewidth=0, shade=True)
        ax.plot_wireframe(
            x, y, z, color=colors[j], alpha=min(1.0, 2 * alpha), linewidth=0.3, rstride=4, cstride=4
        )


def plot_model_2d(
    ax: Axes,
    model: object,
    X: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    radii: Sequence[float] = (1.0, 2.0),
    title: str | None = None,
) -> None:
    """Samples coloured by the model's predicted labels (or `labels`) with the fitted ellipses on top."""
    if labels is None:
        labels = model.predict(X)
    plot_samples(ax, X, labels, s=3, alpha=0.35)
    plot_ellipses(
        ax, model.means_, model.covariances_, model.covariance_type, radii=radii, weights=model.weights_
    )
    if title:
        ax.set_title(title, fontsize=10)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_em_progression(
    X: np.ndarray,
    snapshots: Sequence[dict],
    *,
    ncols: int = 4,
    radii: Sequence[float] = (1.0, 2.0),
    panel_size: float = 2.6,
) -> Figure:
    """Small multiples of EM on 2D data: one panel per snapshot dict with keys
    'iteration', 'means', 'covariances' (full), 'weights' and optionally 'lower_bound' and 'resp' (N, K)."""
    nrows = int(np.ceil(len(snapshots) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False)
    for ax, snap in zip(axes.flat, snapshots, strict=False):
        resp = snap.get("resp")
        labels = None if resp is None else np.asarray(resp).argmax(axis=1)
        plot_samples(ax, X, labels, s=2, alpha=0.3)
        plot_ellipses(
            ax, snap["means"], snap["covariances"], radii=radii, weights=snap["weights"], linewidth=1.2
        )
        title = f"iteration {snap['iteration']}"
        if snap.get("lower_bound") is not None:
            title += f"\nmean log-lik {snap['lower_bound']:.3f}"
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(snapshots) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig
