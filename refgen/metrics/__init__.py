"""Sample-quality and likelihood metrics: FID, Inception Score, KID, precision/recall,
density/coverage, bits per dimension. Each module's docstring states the published
definition and every convention that changes the number. FID's sample-size bias and its 1/N
extrapolation live in ``refgen.metrics.bias`` (not imported here, so that
``python -m refgen.metrics.bias`` runs it as a script without a double import).

The functions ``kid``, ``inception_score`` and ``precision_recall`` live in the private
modules ``_kid``, ``_inception_score`` and ``_precision_recall`` (read their docstrings for
the definitions): a public submodule of the same name as the function would be shadowed
by it (``import refgen.metrics.kid`` gave the function)."""
from .fid import METHODS, RunningStatistics, feature_statistics, fid_from_features, frechet_distance
from ._inception_score import MeanStd, inception_score
from ._kid import KIDResult, kid, mmd2_unbiased, polynomial_kernel
from ._precision_recall import (DensityCoverage, PrecisionRecall, density_coverage, knn_radii,
                               pairwise_sq_distances, precision_recall)
from .likelihood import (bits_per_dim, bits_per_dim_discrete, bits_per_dim_from_elbo,
                         bits_per_dim_from_ode, data_scale)
from .inception import FIDInceptionV3, load_fid_inception, download_inception_weights
from .extractors import EXTRACTORS, Extractor, get_extractor
from .report import SAMPLE_METRICS, evaluate_samples, format_report
from .modes import ModeCoverage, mode_coverage

__all__ = [
    "METHODS", "RunningStatistics", "feature_statistics", "fid_from_features", "frechet_distance",
    "MeanStd", "inception_score", "KIDResult", "kid", "mmd2_unbiased", "polynomial_kernel",
    "DensityCoverage", "PrecisionRecall", "density_coverage", "knn_radii",
    "pairwise_sq_distances", "precision_recall", "bits_per_dim", "bits_per_dim_discrete",
    "bits_per_dim_from_elbo", "bits_per_dim_from_ode", "data_scale", "FIDInceptionV3",
    "load_fid_inception", "download_inception_weights", "EXTRACTORS", "Extractor",
    "get_extractor", "SAMPLE_METRICS", "evaluate_samples", "format_report", "ModeCoverage",
    "mode_coverage",
]
