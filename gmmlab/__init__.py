"""gmmlab: compare ways of fitting Gaussian mixture models on the same data.

Importing gmmlab changes nothing outside it: no environment variable, no matplotlib backend.
"""

from gmmlab.datasets import load_dataset
from gmmlab.model.em import ConvergenceWarning, EMGaussianMixture, SingularCovarianceError
from gmmlab.selection import SelectionResult, select

__all__ = ["ConvergenceWarning", "EMGaussianMixture", "SelectionResult", "SingularCovarianceError",
           "load_dataset", "select"]
__version__ = "0.1.0"
