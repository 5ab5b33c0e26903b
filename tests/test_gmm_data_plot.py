"""Mock mixtures (seeded, noise as specified) and the geometry behind the plotting helpers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gmm import GaussianMixture, make_mixture  # noqa: E402
from gmm.plot import (  # noqa: E402
    ellipse_points,
    ellipsoid_surface,
    mass_within,
    plot_ellipses,
    plot_ellipsoids,
    plot_em_progression,
    plot_model_2d,
)


@pytest.mark.parametrize("n_features", [2, 3])
def test_make_mixture_is_seeded_and_returns_the_truth(n_features: int) -> None:
    a = make_mixture(3000, 4, n_features, jitter=0.2, outlier_fraction=0.1, seed=5)
    b = make_mixture(3000, 4, n_features, jitter=0.2, outlier_fraction=0.1, seed=5)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.X.shape == (3000, n_features) and a.labels.shape == (3000,)
    assert np.sum(a.labels == -1) == 300
    assert a.weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(a.covariances, a.covariances.transpose(0, 2, 1))
    assert np.all(np.linalg.eigvalsh(a.covariances) > 0)
    out = a.X[a.labels == -1]
    assert np.all(out >= a.outlier_bounds[0] - 1.5) and np.all(out <= a.outlier_bounds[1] + 1.5)
    assert not np.array_equal(make_mixture(3000, 4, n_features, seed=6).X, a.X[:0])


def test_jitter_adds_isotropic_variance() -> None:
    cov = np.array([[[1.0, 0.6], [0.6, 0.5]]])
    clean = make_mixture(40000, 1, 2, means=np.zeros((1, 2)), covariances=cov, seed=1)
    noisy = make_mixture(40000, 1, 2, means=np.zeros((1, 2)), covariances=cov, jitter=0.5, seed=1)
    np.testing.assert_allclose(np.cov(clean.X.T), cov[0], atol=0.03)
    np.testing.assert_allclose(np.cov(noisy.X.T), noisy.effective_covariances[0], atol=0.03)
    np.testing.assert_allclose(noisy.effective_covariances[0], cov[0] + 0.25 * np.eye(2))


def test_chosen_parameters_are_used() -> None:
    means = np.array([[0.0, 0.0], [10.0, 0.0]])
    covs = np.stack([np.eye(2) * 0.1, np.diag([2.0, 0.2])])
    data = make_mixture(5000, 2, 2, weights=np.array([0.8, 0.2]), means=means, covariances=covs, seed=0)
    assert np.mean(data.labels == 0) == pytest.approx(0.8, abs=0.02)
    for k in range(2):
        np.testing.assert_allclose(data.X[data.labels == k].mean(axis=0), means[k], atol=0.2)  # ~4 std errors
    with pytest.raises(ValueError, match="weights"):
        make_mixture(10, 2, 2, weights=np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="outlier_fraction"):
        make_mixture(10, 2, 2, outlier_fraction=1.0)


def test_random_means_are_separated() -> None:
    data = make_mixture(100, 8, 2, separation=5.0, seed=3)
    scales = np.sqrt(np.linalg.eigvalsh(data.covariances)[:, -1])
    for i in range(8):
        for j in range(i):
            assert np.linalg.norm(data.means[i] - data.means[j]) >= 5.0 * max(scales[i], scales[j]) - 1e-9


def test_ellipse_and_ellipsoid_lie_at_the_mahalanobis_radius() -> None:
    cov2 = np.array([[2.0, 0.8], [0.8, 0.6]])
    pts = ellipse_points(np.array([1.0, -1.0]), cov2, radius=2.0)
    d = pts - np.array([1.0, -1.0])
    np.testing.assert_allclose(np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov2), d), 4.0)
    cov3 = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]])
    x, y, z = ellipsoid_surface(np.zeros(3), cov3, radius=1.5)
    p = np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)
    np.testing.assert_allclose(np.einsum("ni,ij,nj->n", p, np.linalg.inv(cov3), p), 2.25, rtol=1e-10)
    assert mass_within(2.0, 2) == pytest.approx(1 - np.exp(-2.0))


def test_plot_helpers_draw_every_component() -> None:
    data2 = make_mixture(300, 3, 2, seed=0)
    g = GaussianMixture(3, covariance_type="diag", random_state=0).fit(data2.X)
    fig, ax = plt.subplots()
    plot_model_2d(ax, g, data2.X, radii=(1, 2, 3))
    assert len(ax.lines) == 3 * 3 + 3  # three radii per component plus the mean markers
    plt.close(fig)
    snaps = [
        {"iteration": i, "means": g.means_, "covariances": g.full_covariances(), "weights": g.weights_}
        for i in range(3)
    ]
    fig = plot_em_progression(data2.X, snaps, ncols=2)
    assert len(fig.axes) == 4
    plt.close(fig)
    data3 = make_mixture(300, 2, 3, seed=0)
    g3 = GaussianMixture(2, covariance_type="tied", random_state=0).fit(data3.X)
    fig = plt.figure()
    ax3 = fig.add_subplot(projection="3d")
    plot_ellipsoids(ax3, g3.means_, g3.covariances_, "tied")
    assert len(ax3.collections) == 4  # a surface and a wireframe per component
    plt.close(fig)
    with pytest.raises(ValueError, match="3D"):
        plot_ellipses(plt.gca(), g3.means_, g3.full_covariances())
    plt.close("all")
