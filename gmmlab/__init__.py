"""gmmlab: compare ways of fitting Gaussian mixture models on the same data.

Importing gmmlab changes nothing outside it: no environment variable, no matplotlib backend.
"""

from gmmlab.datasets import load_dataset
from gmmlab.model.em import ConvergenceWarning, EMGaussianMixture, SingularCovarianceError
from gmmlab.selection import SelectionResult, select
from gmmlab.selection.evidence import marginal_likelihood, posterior_over_k

__all__ = ["ConvergenceWarning", "EMGaussianMixture", "SelectionResult", "SingularCovarianceError",
           "load_dataset", "marginal_likelihood", "posterior_over_k", "select"]
__version__ = "0.1.0"
