"""Gaussian mixtures from scratch: mock data, k-means, EM with four covariance types, plotting helpers."""

from gmm.data import MixtureData, make_mixture, random_covariance
from gmm.em import COVARIANCE_TYPES, ConvergenceWarning, GaussianMixture, n_parameters, to_full_covariances
from gmm.kmeans import KMeans, kmeans_plusplus

__all__ = [
    "COVARIANCE_TYPES",
    "ConvergenceWarning",
    "GaussianMixture",
    "KMeans",
    "MixtureData",
    "kmeans_plusplus",
    "make_mixture",
    "n_parameters",
    "random_covariance",
    "to_full_covariances",
]
