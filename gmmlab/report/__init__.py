"""Reports: interpreting the results table (:mod:`~gmmlab.report.analysis`), figures
(:mod:`~gmmlab.report.plots`, matplotlib) and the HTML / Markdown builder
(:mod:`~gmmlab.report.builder`: ``gmmlab-report``). The top layer: analysis never imports
plots.
"""
