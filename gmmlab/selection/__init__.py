"""Model selection: which covariance model and how many components.

- :func:`~gmmlab.selection.select.select` (:mod:`gmmlab.selection.select`): every model x K by
  EM, ranked by BIC, ICL or AIC, as mclust's ``mclustBIC``;
- :func:`gmmlab.selection.bootstrap.bootstrap_lrt`: the parametric bootstrap
  likelihood-ratio test of K against K + 1, as mclust's ``mclustBootstrapLRT`` (its command:
  ``python -m gmmlab.selection.bootstrap``; not imported here, so that command runs it
  fresh);
- ``gmmlab-select`` (:mod:`gmmlab.selection.cli`): :func:`select` from the command line;
- :func:`gmmlab.selection.evidence.marginal_likelihood` and
  :func:`~gmmlab.selection.evidence.posterior_over_k`: the Bayesian evidence of each K with its
  Monte Carlo error, and the posterior over K (exported by ``gmmlab``).
"""

from gmmlab.selection.select import SelectionResult, select

__all__ = ["SelectionResult", "select"]
