"""gmmlab: compare ways of fitting Gaussian mixture models on the same data."""

import os

# Before PyTensor and Numba are imported (gmmlab is imported first by its commands):
# - PyTensor's C backend looks for a BLAS and warns when a pip install has none; gmmlab's
#   models run on its Numba backend, which brings its own, so the search is switched off.
# - Numba's LLVM optimisation level 0: measured here on Old Faithful's K = 2 model with nutpie,
#   compile 9.5 s against 15 s at Numba's default level with the same sampling time (1.7 s for
#   4 x 2000 iterations); on 2-D N = 5000, 0.27 ms a leapfrog step against 0.33. The user can
#   set either variable beforehand.
if "blas__ldflags" not in os.environ.get("PYTENSOR_FLAGS", ""):
    os.environ["PYTENSOR_FLAGS"] = ",".join(
        filter(None, [os.environ.get("PYTENSOR_FLAGS"), "blas__ldflags="]))
os.environ.setdefault("NUMBA_OPT", "0")

from gmmlab.em import ConvergenceWarning, EMGaussianMixture, SingularCovarianceError  # noqa: E402
from gmmlab.selection import select  # noqa: E402

__all__ = ["ConvergenceWarning", "EMGaussianMixture", "SingularCovarianceError", "select"]
__version__ = "0.1.0"
