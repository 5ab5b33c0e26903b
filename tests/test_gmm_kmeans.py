"""K-means: equality with scikit-learn's Lloyd from the same centers, k-means++ beats random seeding."""

from __future__ import annotations

import numpy as np
import pytest

from gmm import KMeans, kmeans_plusplus, make_mixture

sk_cluster = pytest.importorskip("sklearn.cluster")


def test_lloyd_equals_sklearn_from_same_centers() -> None:
    data = make_mixture(2000, 5, 2, seed=3)
    init = data.X[:5]
    ours = KMeans(5, init=init, tol=0.0).fit(data.X)
    ref = sk_cluster.KMeans(5, init=init, n_init=1, tol=0.0, algorithm="lloyd").fit(data.X)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-10)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)


def test_kmeans_plus_plus_beats_random_init_on_average() -> None:
    """Many unequal clusters: random seeds often land two centers in one cluster and Lloyd cannot escape."""
    data = make_mixture(1500, 12, 2, separation=4.0, seed=5)
    pp, rnd, pp_seed, rnd_seed = [], [], [], []
    for seed in range(20):
        pp.append(KMeans(12, init="k-means++", n_init=1, random_state=seed).fit(data.X).inertia_)
        rnd.append(KMeans(12, init="random", n_init=1, random_state=seed).fit(data.X).inertia_)
        rng = np.random.default_rng(seed)
        pp_seed.append(KMeans(12, init=kmeans_plusplus(data.X, 12, rng)[0], max_iter=1).fit(data.X).inertia_)
        rnd_seed.append(
            KMeans(12, init=data.X[rng.choice(1500, 12, replace=False)], max_iter=1).fit(data.X).inertia_
        )
    assert np.mean(pp) < 0.9 * np.mean(rnd)
    assert np.mean(pp_seed) < 0.7 * np.mean(rnd_seed)


def test_restarts_keep_the_lowest_inertia_and_predict_is_consistent() -> None:
    data = make_mixture(1000, 6, 3, seed=8)
    singles = [KMeans(6, n_init=1, random_state=s).fit(data.X).inertia_ for s in range(5)]
    multi = KMeans(6, n_init=8, random_state=0).fit(data.X)
    assert multi.inertia_ <= min(singles) + 1e-9
    assert np.array_equal(multi.predict(data.X), multi.labels_)
    d = multi.transform(data.X)
    assert multi.score(data.X) == pytest.approx(-np.sum(d.min(axis=1) ** 2))
    # each center is the mean of its points (Lloyd fixed point)
    for k in range(6):
        np.testing.assert_allclose(
            multi.cluster_centers_[k], data.X[multi.labels_ == k].mean(axis=0), atol=1e-8
        )


def test_kmeans_plus_plus_picks_distinct_points_even_with_duplicates() -> None:
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), 10, axis=0)
    centers, idx = kmeans_plusplus(X, 3, random_state=0)
    assert len({tuple(c) for c in centers}) == 3
    centers, idx = kmeans_plusplus(X, 5, random_state=0)  # more centers than distinct points
    assert len(set(idx.tolist())) == 5


@pytest.mark.parametrize(
    ("kwargs", "X", "match"),
    [
        ({"n_clusters": 0}, np.zeros((5, 2)), "n_clusters must be >= 1"),
        ({"n_clusters": 6}, np.zeros((5, 2)), "larger than the number of samples"),
        ({"n_clusters": 2}, np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]), "NaN or infinity"),
        ({"n_clusters": 2}, np.arange(5.0), "2-D"),
        ({"n_clusters": 2, "init": "forgy"}, np.zeros((5, 2)), "init must be"),
        ({"n_clusters": 2, "init": np.zeros((3, 2))}, np.zeros((5, 2)), "init centers must have shape"),
        ({"n_clusters": 2, "n_init": 0}, np.zeros((5, 2)), "n_init"),
    ],
)
def test_kmeans_bad_input(kwargs: dict, X: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        KMeans(**kwargs).fit(X)
