"""The Gaussian mixture itself: per-covariance-type formulas (:mod:`~gmmlab.model.gaussian`),
the EM estimator (:mod:`~gmmlab.model.em`), mclust's hierarchical start
(:mod:`~gmmlab.model.hc`), the metrics of a fit (:mod:`~gmmlab.model.metrics`) and the search
for one cell's best fit (:mod:`~gmmlab.model.search`).

The bottom layer of gmmlab: it imports no other part of gmmlab.
"""
