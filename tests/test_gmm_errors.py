"""Bad input to GaussianMixture: every case ends in a ValueError whose message names the cause."""

from __future__ import annotations

import numpy as np
import pytest

from gmm import COVARIANCE_TYPES, GaussianMixture, make_mixture

X_OK = make_mixture(200, 3, 2, seed=0).X


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data(bad: float) -> None:
    X = X_OK.copy()
    X[17, 1] = bad
    with pytest.raises(ValueError, match=r"NaN or infinity .*row 17"):
        GaussianMixture(2).fit(X)
    fitted = GaussianMixture(2, random_state=0).fit(X_OK)
    for method in (fitted.predict, fitted.predict_proba, fitted.score_samples, fitted.score):
        with pytest.raises(ValueError, match="NaN or infinity"):
            method(X)


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.arange(10.0), r"2-D .*reshape\(-1, 1\)"),
        (np.zeros((4, 3, 2)), "2-D"),
        (np.zeros((0, 2)), "empty"),
        ([["a", "b"], ["c", "d"]], "numeric"),
    ],
)
def test_wrong_dimensionality(X: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GaussianMixture(1).fit(X)


def test_wrong_number_of_features_after_fit() -> None:
    g = GaussianMixture(2, random_state=0).fit(X_OK)
    with pytest.raises(ValueError, match="has 3 features but the model was fitted with 2"):
        g.predict(np.zeros((4, 3)))


def test_not_fitted() -> None:
    with pytest.raises(ValueError, match="not fitted"):
        GaussianMixture(2).predict(X_OK)


@pytest.mark.parametrize(
    ("n_components", "match"),
    [
        (0, ">= 1"),
        (-2, ">= 1"),
        (201, "larger than the number of samples"),
        (2.5, "integer"),
        ("3", "integer"),
    ],
)
def test_bad_n_components(n_components: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GaussianMixture(n_components).fit(X_OK)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"covariance_type": "isotropic"},
            "covariance_type must be one of 'spherical', 'diag', 'tied', 'full'",
        ),
        ({"init_params": "kmeans+"}, "init_params must be one of"),
        ({"tol": -1.0}, "tol must be"),
        ({"reg_covar": -1e-6}, "reg_covar must be"),
        ({"max_iter": -1}, "max_iter must be an integer >= 0"),
        ({"n_init": 0}, "n_init must be an integer >= 1"),
        ({"noise_component": True, "noise_weight_init": 1.0}, "noise_weight_init"),
    ],
)
def test_bad_hyper_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GaussianMixture(3, **kwargs).fit(X_OK)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights_init": np.ones(2) / 2}, r"weights_init must have shape \(3,\)"),
        ({"weights_init": np.array([0.5, 0.6, -0.1])}, r"weights_init must lie in \[0, 1\]"),
        ({"weights_init": np.array([0.5, 0.2, 0.2])}, "weights_init must sum to 1"),
        ({"means_init": np.zeros((3, 3))}, r"means_init must have shape \(3, 2\)"),
        ({"means_init": np.full((3, 2), np.nan)}, "means_init contains NaN"),
    ],
)
def test_bad_initial_weights_or_means(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GaussianMixture(3, **kwargs).fit(X_OK)


WRONG_SHAPE = {
    "spherical": np.ones((3, 2)),
    "diag": np.ones(3),
    "tied": np.ones((3, 2, 2)),
    "full": np.ones((2, 2)),
}
NOT_PD = {
    "spherical": np.array([1.0, 0.0, 1.0]),
    "diag": np.array([[1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]),
    "tied": np.array([[1.0, 2.0], [2.0, 1.0]]),
    "full": np.stack([np.eye(2), np.array([[1.0, 2.0], [2.0, 1.0]]), np.eye(2)]),
}


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bad_initial_precisions(covariance_type: str) -> None:
    with pytest.raises(ValueError, match=rf"precisions_init \({covariance_type}\) must have shape"):
        GaussianMixture(3, covariance_type=covariance_type, precisions_init=WRONG_SHAPE[covariance_type]).fit(
            X_OK
        )
    match = "symmetric positive-definite" if covariance_type in ("full", "tied") else "must be > 0"
    with pytest.raises(ValueError, match=match):
        GaussianMixture(3, covariance_type=covariance_type, precisions_init=NOT_PD[covariance_type]).fit(X_OK)


def test_non_symmetric_precision() -> None:
    with pytest.raises(ValueError, match=r"precisions_init\[0\] must be symmetric"):
        GaussianMixture(1, precisions_init=np.array([[[2.0, 1.0], [0.0, 2.0]]])).fit(X_OK)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_collapsed_clusters_are_rescued_by_reg_covar(covariance_type: str) -> None:
    """Three points each repeated 50 times: every component collapses; reg_covar keeps it well defined."""
    X = np.repeat(np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 4.0]]), 50, axis=0)
    g = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    assert np.isfinite(g.score(X))
    np.testing.assert_allclose(np.sort(g.weights_), [1 / 3] * 3, atol=1e-6)
    if covariance_type != "tied":
        np.testing.assert_allclose(
            g.full_covariances(), np.stack([np.eye(2) * 1e-6] * 3), rtol=1e-6, atol=1e-12
        )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_collapsed_clusters_without_reg_covar_fail_clearly(covariance_type: str) -> None:
    X = np.repeat(np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 4.0]]), 50, axis=0)
    with pytest.raises(ValueError, match=r"collapsed .* Increase reg_covar \(now 0"):
        GaussianMixture(3, covariance_type=covariance_type, reg_covar=0.0, random_state=0).fit(X)


def test_points_on_a_line_fail_clearly_without_reg_covar() -> None:
    t = np.linspace(0.0, 1.0, 100)
    X = np.stack([t, 2 * t + 1], axis=1)  # rank-1 data: a full covariance is singular
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(1, reg_covar=0.0).fit(X)
    assert np.isfinite(GaussianMixture(1).fit(X).score(X))


def test_sample_needs_positive_count() -> None:
    g = GaussianMixture(2, random_state=0).fit(X_OK)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        g.sample(0)
