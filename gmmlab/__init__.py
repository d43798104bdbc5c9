"""gmmlab: compare ways of fitting Gaussian mixture models on the same data."""

import os

# Before PyTensor and Numba are imported (gmmlab is imported first by its commands):
# - PyTensor's C backend looks for a BLAS and warns when a pip install has none; gmmlab's
#   models run on its Numba backend, which brings its own, so the search is switched off.
# - Numba's LLVM optimisation level 0: a PyMC model compiles for nutpie in ~10 s instead of
#   ~15 s, and sampling measured no slower (python -m gmmlab.bench --bayes). Either can be set
#   by the user beforehand.
if "blas__ldflags" not in os.environ.get("PYTENSOR_FLAGS", ""):
    os.environ["PYTENSOR_FLAGS"] = ",".join(
        filter(None, [os.environ.get("PYTENSOR_FLAGS"), "blas__ldflags="]))
os.environ.setdefault("NUMBA_OPT", "0")

from gmmlab.em import ConvergenceWarning, EMGaussianMixture, SingularCovarianceError  # noqa: E402

__all__ = ["ConvergenceWarning", "EMGaussianMixture", "SingularCovarianceError"]
__version__ = "0.1.0"
