"""EM for Gaussian mixtures: equal to scikit-learn from the same start, monotone likelihood, recovery, BIC."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import gmm.em as em
from gmm import COVARIANCE_TYPES, ConvergenceWarning, GaussianMixture, make_mixture, to_full_covariances

sk_mixture = pytest.importorskip("sklearn.mixture")


def _start(X: np.ndarray, k: int, covariance_type: str, seed: int) -> dict:
    """A deliberately rough common start: random data points as means, the data's spread as precision."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    means = X[rng.choice(len(X), k, replace=False)]
    weights = rng.dirichlet(np.full(k, 5.0))
    v = 1.0 / X.var(axis=0).mean()
    precisions = {
        "spherical": np.full(k, v),
        "diag": np.full((k, d), v) * rng.uniform(0.5, 2.0, (k, d)),
        "tied": np.eye(d) * v,
        "full": np.stack([np.eye(d) * v * s for s in rng.uniform(0.5, 2.0, k)]),
    }[covariance_type]
    return {"weights_init": weights, "means_init": means, "precisions_init": precisions}


def _assert_same_fit(ours: GaussianMixture, ref: object, X: np.ndarray) -> None:
    assert ours.n_iter_ == ref.n_iter_
    assert ours.converged_ == ref.converged_
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.precisions_cholesky_, ref.precisions_cholesky_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.precisions_, ref.precisions_, rtol=1e-7, atol=1e-9)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-10)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-8)
    assert ours.bic(X) == pytest.approx(ref.bic(X), rel=1e-10)
    assert ours.aic(X) == pytest.approx(ref.aic(X), rel=1e-10)


@pytest.mark.parametrize("n_features", [2, 3])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_equals_sklearn_from_same_init(covariance_type: str, n_features: int) -> None:
    data = make_mixture(1500, 4, n_features, jitter=0.1, outlier_fraction=0.02, seed=7)
    start = _start(data.X, 4, covariance_type, seed=1)
    kw = {"covariance_type": covariance_type, "max_iter": 500, **start}
    ours = GaussianMixture(4, **kw).fit(data.X)
    ref = sk_mixture.GaussianMixture(4, **kw).fit(data.X)
    assert ours.n_iter_ > 3  # a real run, not an immediate stop
    assert ours._path_counts == {"moments": ours.n_iter_, "direct": 0}  # the fast path, all the way
    _assert_same_fit(ours, ref, data.X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_equals_sklearn_on_direct_path(covariance_type: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the moment shortcut disabled every iteration uses the two-pass formulas; still identical."""
    monkeypatch.setattr(em, "_MAX_CANCELLATION", 0.0)
    data = make_mixture(800, 3, 2, seed=3)
    kw = {"covariance_type": covariance_type, **_start(data.X, 3, covariance_type, seed=2)}
    ours = GaussianMixture(3, **kw).fit(data.X)
    ref = sk_mixture.GaussianMixture(3, **kw).fit(data.X)
    _assert_same_fit(ours, ref, data.X)


def test_moment_path_falls_back_far_from_origin() -> None:
    """Tiny clusters far apart (|mu| / sigma ~ 1e5): the shortcut would cancel digits, so EM switches path."""
    rng = np.random.default_rng(0)
    centers = np.array([[-5e3, 0.0], [5e3, 1.0]])
    X = np.vstack([c + 0.05 * rng.standard_normal((300, 2)) for c in centers])
    kw = {
        "covariance_type": "full",
        "means_init": centers,
        "weights_init": [0.5, 0.5],
        "precisions_init": np.stack([np.eye(2)] * 2),
    }
    ours = GaussianMixture(2, **kw).fit(X)
    ref = sk_mixture.GaussianMixture(2, **kw).fit(X)
    assert ours._path_counts == {"moments": 0, "direct": ours.n_iter_}
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-6)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_not_converged_matches_sklearn_and_warns(covariance_type: str) -> None:
    data = make_mixture(600, 3, 2, seed=5)
    kw = {
        "covariance_type": covariance_type,
        "max_iter": 2,
        "tol": 1e-12,
        **_start(data.X, 3, covariance_type, 0),
    }
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        ours = GaussianMixture(3, **kw).fit(data.X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sk_mixture.GaussianMixture(3, **kw).fit(data.X)
    assert ours.n_iter_ == ref.n_iter_ == 2 and not ours.converged_
    _assert_same_fit(ours, ref, data.X)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_lower_bound_never_decreases(covariance_type: str, init_params: str) -> None:
    data = make_mixture(1200, 5, 2, jitter=0.2, outlier_fraction=0.05, seed=11)
    g = GaussianMixture(
        5, covariance_type=covariance_type, init_params=init_params, tol=1e-8, max_iter=300, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g.fit(data.X)
    lb = np.asarray(g.lower_bounds_)
    assert len(lb) >= 2  # (random responsibilities + tied covariances start at a saddle and stop at once)
    assert np.all(np.diff(lb) >= -1e-10 * np.abs(lb[1:]))
    assert g.score(data.X) >= lb[-1] - 1e-10  # the final M-step cannot lower it either


@pytest.mark.parametrize("noise_component", [False, True])
def test_lower_bound_never_decreases_with_background(noise_component: bool) -> None:
    data = make_mixture(1500, 3, 2, outlier_fraction=0.2, seed=2)
    g = GaussianMixture(3, noise_component=noise_component, tol=1e-9, max_iter=400, random_state=1).fit(
        data.X
    )
    assert np.all(np.diff(g.lower_bounds_) >= -1e-10)


def _truth_for(covariance_type: str, rng: np.random.Generator, k: int, d: int) -> np.ndarray:
    """True covariances that the covariance type can represent exactly."""
    if covariance_type == "spherical":
        return np.stack([np.eye(d) * s for s in rng.uniform(0.2, 0.8, k)])
    if covariance_type == "diag":
        return np.stack([np.diag(rng.uniform(0.1, 0.8, d)) for _ in range(k)])
    if covariance_type == "tied":
        a = rng.standard_normal((d, d)) * 0.4
        return np.repeat((a @ a.T + 0.2 * np.eye(d))[None], k, axis=0)
    a = rng.standard_normal((k, d, d)) * 0.4
    return a @ a.transpose(0, 2, 1) + 0.1 * np.eye(d)


@pytest.mark.parametrize("n_features", [2, 3])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_recovers_true_parameters(covariance_type: str, n_features: int) -> None:
    rng = np.random.default_rng(4)
    k = 3
    means = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, 2.0], [0.0, 8.0, -2.0]])[:, :n_features]
    covs = _truth_for(covariance_type, rng, k, n_features)
    data = make_mixture(
        6000, k, n_features, weights=np.array([0.5, 0.3, 0.2]), means=means, covariances=covs, seed=9
    )
    g = GaussianMixture(k, covariance_type=covariance_type, n_init=2, random_state=0).fit(data.X)
    order = [int(np.argmin(np.linalg.norm(g.means_ - m, axis=1))) for m in means]
    assert sorted(order) == list(range(k))
    np.testing.assert_allclose(g.weights_[order], data.weights, atol=0.02)
    np.testing.assert_allclose(g.means_[order], means, atol=0.08)
    fitted = g.full_covariances()[order]
    rel = np.linalg.norm(fitted - covs, axis=(1, 2)) / np.linalg.norm(covs, axis=(1, 2))
    assert rel.max() < 0.1
    assert np.mean(np.argsort(order)[g.predict(data.X)] == data.labels) > 0.99


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_bic_picks_true_number_of_components(covariance_type: str) -> None:
    data = make_mixture(
        1500, 4, 2, separation=6.0, max_anisotropy=1.0 if covariance_type == "spherical" else 4.0, seed=21
    )
    bics = [
        GaussianMixture(k, covariance_type=covariance_type, n_init=2, random_state=0).fit(data.X).bic(data.X)
        for k in range(1, 8)
    ]
    assert int(np.argmin(bics)) + 1 == 4


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_score_samples_equals_explicit_density(covariance_type: str) -> None:
    data = make_mixture(300, 3, 3, seed=1)
    g = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(data.X)
    covs = to_full_covariances(g.covariances_, covariance_type, 3, 3)
    dens = sum(
        w * multivariate_normal(m, c).pdf(data.X) for w, m, c in zip(g.weights_, g.means_, covs, strict=True)
    )
    np.testing.assert_allclose(g.score_samples(data.X), np.log(dens), rtol=1e-10)
    np.testing.assert_allclose(
        np.linalg.inv(covs), to_full_covariances(g.precisions_, covariance_type, 3, 3), rtol=1e-8
    )


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random"])
def test_background_component_absorbs_outliers(init_params: str) -> None:
    data = make_mixture(4000, 3, 2, outlier_fraction=0.2, separation=5.0, seed=8)
    plain = GaussianMixture(3, init_params=init_params, n_init=2, random_state=0).fit(data.X)
    robust = GaussianMixture(3, init_params=init_params, n_init=2, noise_component=True, random_state=0).fit(
        data.X
    )
    assert robust.noise_weight_ == pytest.approx(0.2, abs=0.03)
    assert robust.weights_.sum() + robust.noise_weight_ == pytest.approx(1.0)
    labels = robust.predict(data.X)
    out = data.labels == -1
    assert np.mean(labels[out] == -1) > 0.7 and np.mean(labels[~out] == -1) < 0.03
    proba = robust.predict_proba(data.X)
    assert proba.shape == (len(data.X), 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)

    def cov_error(model: GaussianMixture) -> float:
        order = [int(np.argmin(np.linalg.norm(model.means_ - m, axis=1))) for m in data.means]
        return float(
            np.max(
                np.linalg.norm(model.covariances_[order] - data.covariances, axis=(1, 2))
                / np.linalg.norm(data.covariances, axis=(1, 2))
            )
        )

    assert cov_error(robust) < 0.15 < cov_error(plain)
    assert robust.bic(data.X) < plain.bic(data.X)


def test_n_init_keeps_best_lower_bound_and_callback_sees_every_iteration() -> None:
    data = make_mixture(800, 6, 2, seed=13)
    singles = [
        GaussianMixture(6, init_params="random", random_state=s).fit(data.X).lower_bound_ for s in range(1)
    ]
    best = GaussianMixture(6, init_params="random", n_init=4, random_state=0).fit(data.X)
    assert best.lower_bound_ >= singles[0] - 1e-12
    seen = []
    g = GaussianMixture(6, random_state=0).fit(
        data.X, callback=lambda m: seen.append((m.n_iter_, m.lower_bound_))
    )
    assert [i for i, _ in seen] == list(range(1, g.n_iter_ + 1))
    assert [lb for _, lb in seen] == g.lower_bounds_


def test_sample_follows_the_model() -> None:
    data = make_mixture(3000, 2, 2, seed=2)
    g = GaussianMixture(2, random_state=0).fit(data.X)
    X, y = g.sample(20000)
    assert X.shape == (20000, 2) and set(np.unique(y)) == {0, 1}
    np.testing.assert_allclose(np.bincount(y) / 20000, g.weights_, atol=0.015)
    for j in range(2):
        np.testing.assert_allclose(X[y == j].mean(axis=0), g.means_[j], atol=0.05)
        np.testing.assert_allclose(np.cov(X[y == j].T), g.covariances_[j], atol=0.08)
    assert np.array_equal(g.sample(5)[0], g.sample(5)[0])  # seeded like scikit-learn


def test_max_iter_zero_returns_the_initial_parameters() -> None:
    data = make_mixture(500, 3, 2, seed=0)
    start = _start(data.X, 3, "full", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence warning for max_iter=0
        g = GaussianMixture(3, max_iter=0, **start).fit(data.X)
    assert g.n_iter_ == 0 and not g.converged_
    np.testing.assert_allclose(g.means_, start["means_init"])
    np.testing.assert_allclose(g.precisions_, start["precisions_init"], rtol=1e-10)
    np.testing.assert_allclose(g.covariances_, np.linalg.inv(start["precisions_init"]), rtol=1e-10)


def test_background_fit_is_the_same_on_both_internal_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_mixture(2000, 3, 3, outlier_fraction=0.2, seed=4)
    fast = GaussianMixture(3, noise_component=True, random_state=0).fit(data.X)
    monkeypatch.setattr(em, "_MAX_CANCELLATION", 0.0)
    direct = GaussianMixture(3, noise_component=True, random_state=0).fit(data.X)
    assert fast._path_counts["direct"] == 0 and direct._path_counts["moments"] == 0
    assert fast.n_iter_ == direct.n_iter_
    np.testing.assert_allclose(fast.lower_bounds_, direct.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(fast.covariances_, direct.covariances_, rtol=1e-8, atol=1e-12)
    assert fast.noise_weight_ == pytest.approx(direct.noise_weight_, rel=1e-9)
