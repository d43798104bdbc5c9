"""Model selection: which covariance model and how many components.

- :func:`select` (:mod:`gmmlab.selection.select`): every model x K by EM, ranked by BIC, ICL or
  AIC, as mclust's ``mclustBIC``;
- :func:`bootstrap_lrt` (:mod:`gmmlab.selection.bootstrap`): the parametric bootstrap
  likelihood-ratio test of K against K + 1, as mclust's ``mclustBootstrapLRT``;
- ``gmmlab-select`` (:mod:`gmmlab.selection.cli`): :func:`select` from the command line.
"""

from gmmlab.selection.bootstrap import bootstrap_lrt
from gmmlab.selection.select import SelectionResult, select

__all__ = ["SelectionResult", "bootstrap_lrt", "select"]
