"""gmmlab: compare ways of fitting Gaussian mixture models on the same data."""

from gmmlab.em import ConvergenceWarning, EMGaussianMixture, SingularCovarianceError

__all__ = ["ConvergenceWarning", "EMGaussianMixture", "SingularCovarianceError"]
__version__ = "0.1.0"
