"""The run record: what one job writes to ``result.json``, one typed description of its keys.

:func:`gmmlab.study.job.run_job` builds it, :func:`gmmlab.study.results.read_result` reads it
back, ``gmmlab-collect`` flattens it into one row of ``results.csv`` (nested keys joined by
dots, e.g. ``param_error.means``) and the reports read that table. Keys that do not apply are
None (no held-out split, no truth, no posterior); a failed run has the identification keys,
``status: failed`` and ``message``.
"""

from typing import TypedDict


class RunRecord(TypedDict, total=False):
    """One run's ``result.json``.

    Attributes
    ----------
    status : {'ok', 'singular', 'failed'}
        'singular': finished at a collapse, the last sound parameters kept.
    message : str
        Why the run failed ('' otherwise).
    degenerate : bool
        The fit is a spurious maximiser (:func:`gmmlab.model.metrics.degeneracy`).
    degeneracy_reason : str or None
    backend, dataset : str
        Names (a user function's ``module:function`` target).
    variant, data_setting : str
        The report's labels of the method and of the data.
    n_components, seed : int
    covariance_type : str
    reg_covar : float
    true_components : int or None
    loglik, loglik_per_sample : float
        Train log-likelihood, total and per sample.
    test_loglik_per_sample : float or None
        Held-out (for PyMC: the posterior predictive).
    bic, aic, icl, icl_entropy : float
        Information criteria, lower is better (:func:`gmmlab.model.metrics.information_criteria`).
    n_params, n_samples, n_features, n_iter : int
    n_test : int or None
    converged : bool
    fit_seconds : float
    loglik_history : list of float
    param_error : dict
        ``weights``, ``means``, ``covariances`` errors against the truth, components matched.
    permutation : list of int
        The matching of fitted to true components.
    ari, nmi : float or None
        Agreement of the MAP labels with the true ones.
    unmatched : dict
    singular : dict
        Collapse diagnostics (iteration, resets, smallest eigenvalue, smallest weight x N).
    diagnostics : dict
        The backend's own (PyMC: R-hat, ESS, divergences, timings, K+ posterior).
    loo : dict
        PSIS-LOO of a posterior (elpd, p, se, Pareto k).
    params, truth : dict
        ``weights`` (K,), ``means`` (K, D), ``covariances`` (K, D, D) as lists.
    dataset_provenance : str
    dataset_metadata : dict
    provenance : dict
        Resolved configuration, overrides, package versions, Python, git commit, host,
        start time and wall seconds.
    resume_key : dict or None
        What the resume rule compares (:func:`gmmlab.study.job.resume_key`).
    """

    status: str
    message: str
    degenerate: bool
    degeneracy_reason: str | None
    backend: str
    dataset: str
    variant: str
    data_setting: str
    n_components: int
    seed: int
    covariance_type: str
    reg_covar: float
    true_components: int | None
    loglik: float
    loglik_per_sample: float
    test_loglik_per_sample: float | None
    bic: float
    aic: float
    icl: float
    icl_entropy: float
    n_params: int
    n_samples: int
    n_features: int
    n_iter: int
    n_test: int | None
    converged: bool
    fit_seconds: float
    loglik_history: list
    param_error: dict
    permutation: list
    ari: float | None
    nmi: float | None
    unmatched: dict
    singular: dict
    diagnostics: dict
    loo: dict
    params: dict
    truth: dict
    dataset_provenance: str
    dataset_metadata: dict
    provenance: dict
    resume_key: dict | None
