"""Metrics computed by one piece of code for every backend, from point estimates
(weights (K,), means (K, D), full covariances (K, D, D)) and, for MCMC, posterior draws.

* log-likelihood (total, per sample; held-out), BIC, AIC, ICL (MAP and entropy forms);
* label-switching alignment against the truth (Hungarian algorithm) and parameter errors;
* posterior relabelling of MCMC draws (pivot and Stephens' KL algorithm) and R-hat before/after;
* clustering agreement (ARI, NMI), singularity indicators and the degeneracy rule.
"""

from types import SimpleNamespace

import numpy as np
from scipy import linalg
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from gmmlab.model import gaussian

# ------------------------------------------------------------------ likelihood and criteria


def component_log_densities(X, weights, means, covariances):
    """log pi_k + log N(x_n | mu_k, Sigma_k): (N, K); -inf for a singular component."""
    X = np.asarray(X, dtype=float)
    log_weights = np.log(np.asarray(weights, dtype=float))
    densities = np.full((len(X), len(log_weights)), -np.inf)
    for k, covariance in enumerate(np.asarray(covariances, dtype=float)):
        try:
            chol = gaussian.precisions_cholesky(covariance[None], "full")
        except (np.linalg.LinAlgError, ValueError):
            continue  # not positive definite: that component has no density
        densities[:, k] = gaussian.estimate_log_gaussian_prob(X, means[k : k + 1], chol, "full")[
            :, 0
        ]
    with np.errstate(divide="ignore"):
        return densities + log_weights


def log_likelihood_per_sample(X, weights, means, covariances):
    """log p(x_n) = log sum_k pi_k N(x_n | mu_k, Sigma_k): (N,)."""
    return logsumexp(component_log_densities(X, weights, means, covariances), axis=1)


def responsibilities(X, weights, means, covariances):
    """r_nk = pi_k N(x_n | k) / p(x_n): (N, K)."""
    densities = component_log_densities(X, weights, means, covariances)
    return np.exp(densities - logsumexp(densities, axis=1, keepdims=True))


# The information criteria of a fit, in scikit-learn's sign (lower is better): the keys of
# information_criteria's result that model selection ranks by, in the order reports list them.
INFORMATION_CRITERIA = ("bic", "aic", "icl", "icl_entropy")


def bic_of(loglik, n_parameters, n_samples):
    """Bayesian information criterion (Schwarz 1978), lower is better.

    BIC = -2 l + p log N, for a total log-likelihood ``loglik`` = l, ``n_parameters`` = p free
    parameters (:func:`gmmlab.model.gaussian.n_parameters`) and ``n_samples`` = N.

    Returns
    -------
    float
    """
    return -2 * loglik + n_parameters * np.log(n_samples)


def aic_of(loglik, n_parameters):
    """Akaike information criterion AIC = -2 l + 2 p (lower is better); see :func:`bic_of`."""
    return -2 * loglik + 2 * n_parameters


def information_criteria(X, weights, means, covariances, covariance_type):
    """loglik (total), n_params, BIC, AIC, the two ICLs, and the MAP labels argmax_k r_nk.

    With l = sum_n log p(x_n), p the free parameters of ``covariance_type`` and
    c_n = argmax_k r_nk (the MAP classification), all "lower is better" (scikit-learn's sign):

    * BIC = -2 l + p log N;  AIC = -2 l + 2 p;
    * ICL = -2 sum_n log(pi_c_n N(x_n | mu_c_n, Sigma_c_n)) + p log N
      = BIC - 2 sum_n log r_n,c_n: BIC with the complete-data log-likelihood of the MAP
      classification (Biernacki, Celeux & Govaert 2000; mclust's ``icl()``, there with the
      opposite sign);
    * ICL_entropy = BIC + 2 EN with EN = -sum_nk r_nk log r_nk, the entropy of the
      responsibilities (the soft-assignment form of the same paper).

    Both penalise overlapping components that BIC tolerates: BIC <= ICL <= ICL_entropy, as
    -log max_k r_nk <= -sum_k r_nk log r_nk for every sample.
    """
    N, D = np.shape(X)
    K = len(weights)
    densities = component_log_densities(X, weights, means, covariances)
    log_prob = logsumexp(densities, axis=1)
    loglik = float(log_prob.sum())
    log_resp = densities - log_prob[:, np.newaxis]
    resp = np.exp(log_resp)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = float(-np.nansum(np.where(resp > 0, resp * log_resp, 0.0)))
    labels = log_resp.argmax(axis=1)
    map_log_resp = float(log_resp[np.arange(N), labels].sum())
    n_params = gaussian.n_parameters(K, D, covariance_type)
    bic = bic_of(loglik, n_params, N)
    return dict(loglik=loglik, n_params=n_params, bic=bic, aic=aic_of(loglik, n_params),
                icl=bic - 2 * map_log_resp, icl_entropy=bic + 2 * entropy, entropy=entropy,
                labels=labels)


def pointwise_log_likelihood(X, weights, means, covariances):
    """log p(x_n | theta_s) = logsumexp_k [log pi_sk + log N(x_n | mu_sk, Sigma_sk)] for draws
    s: weights (S, K), means (S, K, D), covariances (S, K, D, D) -> (S, N). Batched over
    draws (a block at a time, to bound memory); a block holding a covariance that is not
    positive definite goes draw by draw (:func:`log_likelihood_per_sample`)."""
    X = np.asarray(X, dtype=float)
    weights, means, covariances = (np.asarray(v, dtype=float)
                                   for v in (weights, means, covariances))
    S, K, D = means.shape
    N = len(X)
    out = np.empty((S, N))
    block = max(1, 2_000_000 // (K * N * D))
    for start in range(0, S, block):
        part = slice(start, start + block)
        try:
            chols = np.linalg.cholesky(covariances[part])  # (s, K, D, D)
        except np.linalg.LinAlgError:
            out[part] = [log_likelihood_per_sample(X, *draw)
                         for draw in zip(weights[part], means[part], covariances[part],
                                         strict=True)]
            continue
        centred = X[None, None] - means[part][:, :, None, :]  # (s, K, N, D)
        whitened = np.einsum("skde,skne->sknd", np.linalg.inv(chols), centred)
        log_det = np.log(np.diagonal(chols, axis1=2, axis2=3)).sum(axis=2)  # (s, K)
        with np.errstate(divide="ignore"):
            log_components = (np.log(weights[part]) - log_det - 0.5 * D * np.log(2 * np.pi)
                              )[:, :, None] - 0.5 * np.sum(whitened**2, axis=3)
        out[part] = logsumexp(log_components, axis=1)
    return out


def posterior_predictive_log_density(X, draws_weights, draws_means, draws_covariances):
    """log (1/S sum_s p(x_n | theta_s)) per sample: (N,), over S posterior draws
    (:func:`pointwise_log_likelihood`)."""
    per_draw = pointwise_log_likelihood(X, draws_weights, draws_means, draws_covariances)
    return logsumexp(per_draw, axis=0) - np.log(len(per_draw))


# ------------------------------------------------------------------ alignment to the truth


def gaussian_symmetric_kl(mean_a, cov_a, mean_b, cov_b):
    """KL(a||b) + KL(b||a) = 1/2 [tr(B^-1 A) + tr(A^-1 B) + d^T (A^-1 + B^-1) d] - D."""
    difference = mean_a - mean_b
    chol_a, chol_b = linalg.cho_factor(cov_a), linalg.cho_factor(cov_b)
    trace = np.trace(linalg.cho_solve(chol_b, cov_a)) + np.trace(linalg.cho_solve(chol_a, cov_b))
    quadratic = difference @ (linalg.cho_solve(chol_a, difference)
                              + linalg.cho_solve(chol_b, difference))
    return 0.5 * (trace + quadratic) - len(mean_a)


def alignment_cost(fitted_means, true_means, fitted_covariances=None, true_covariances=None,
                   cost="means"):
    """Cost matrix (K_fit, K_true): squared distance between means, or symmetric KL."""
    if cost == "means":
        return ((fitted_means[:, None, :] - true_means[None, :, :]) ** 2).sum(axis=2)
    if cost == "kl":
        return np.array([[gaussian_symmetric_kl(m, c, tm, tc)
                          for tm, tc in zip(true_means, true_covariances, strict=True)]
                         for m, c in zip(fitted_means, fitted_covariances, strict=True)])
    raise ValueError(f"cost must be 'means' or 'kl', got {cost!r}.")


def align(fitted, truth, cost="means"):
    """Match fitted components to true ones (Hungarian algorithm) and measure the errors.

    fitted, truth: objects with ``weights (K,), means (K, D), covariances (K, D, D)``; the
    numbers of components may differ. Returns ``permutation`` (for each true component, the
    fitted component matched to it, or -1), unmatched fitted/true components, and on matched
    pairs: weights error (L1 sum), means RMSE (over pairs and coordinates), covariances mean
    relative Frobenius error ||S_fit - S_true||_F / ||S_true||_F.
    """
    fitted_means, true_means = np.asarray(fitted.means), np.asarray(truth.means)
    matrix = alignment_cost(fitted_means, true_means, np.asarray(fitted.covariances),
                            np.asarray(truth.covariances), cost)
    rows, cols = linear_sum_assignment(matrix)
    permutation = np.full(len(true_means), -1)
    permutation[cols] = rows
    fw, tw = np.asarray(fitted.weights)[rows], np.asarray(truth.weights)[cols]
    fc, tc = np.asarray(fitted.covariances)[rows], np.asarray(truth.covariances)[cols]
    return dict(
        permutation=permutation.tolist(),
        unmatched_fitted=sorted(set(range(len(fitted_means))) - set(rows.tolist())),
        unmatched_true=sorted(set(range(len(true_means))) - set(cols.tolist())),
        weights=float(np.abs(fw - tw).sum()),
        means=float(np.sqrt(((fitted_means[rows] - true_means[cols]) ** 2).mean())),
        covariances=float(np.mean(np.linalg.norm(fc - tc, axis=(1, 2))
                                  / np.linalg.norm(tc, axis=(1, 2)))),
        cost=cost,
    )


# ------------------------------------------------------------------ posterior relabelling


def relabel_to_pivot(draws_means, pivot_means):
    """Permutation per draw (S, K) matching each draw's components to the pivot's.

    For draw s, perm[s, l] is the draw component that takes label l: the Hungarian assignment
    minimising sum_l ||mu^(s)_perm[l] - pivot_l||^2.
    """
    permutations = np.empty(draws_means.shape[:2], dtype=int)
    for s, means in enumerate(draws_means):
        cost = ((means[:, None, :] - pivot_means[None, :, :]) ** 2).sum(axis=2)
        rows, cols = linear_sum_assignment(cost)
        permutations[s, cols] = rows
    return permutations


def stephens_relabel(draws_responsibilities, max_iter=100):
    """Stephens' (2000) KL relabelling of draws from their responsibilities (S, N, K).

    Alternates Q = mean over draws of the permuted responsibilities and, per draw, the
    permutation minimising sum_n sum_l p_n,perm[l] log(p_n,perm[l] / q_nl) (a Hungarian
    assignment), until no permutation changes. Returns the permutations (S, K).
    """
    P = np.clip(np.asarray(draws_responsibilities, dtype=float), 1e-300, None)
    S, _, K = P.shape
    permutations = np.tile(np.arange(K), (S, 1))
    plogp = (P * np.log(P)).sum(axis=1)  # (S, K): sum_n p_nj log p_nj
    for _ in range(max_iter):
        Q = np.take_along_axis(P, permutations[:, None, :], axis=2).mean(axis=0)
        log_q = np.log(np.clip(Q, 1e-300, None))
        changed = False
        for s in range(S):
            cost = plogp[s][:, None] - P[s].T @ log_q  # (draw component j, label l)
            rows, cols = linear_sum_assignment(cost)
            new = np.empty(K, dtype=int)
            new[cols] = rows
            if not np.array_equal(new, permutations[s]):
                permutations[s], changed = new, True
        if not changed:
            break
    return permutations


def apply_permutations(draws, permutations):
    """Reorder the component axis (axis 1) of draws (S, K, ...) by per-draw permutations."""
    index = permutations.reshape(permutations.shape + (1,) * (draws.ndim - 2))
    return np.take_along_axis(draws, index, axis=1)


def max_rhat(*chains_draws):
    """Largest rank-normalised split R-hat over all scalar quantities of the (chain, draw, ...)
    arrays. Quantities constant over every draw (the weight of a single component) have no
    R-hat and are skipped; nan if nothing varies."""
    import arviz as az

    flat = np.concatenate([np.asarray(a, dtype=float).reshape(a.shape[0], a.shape[1], -1)
                           for a in chains_draws], axis=2)
    varying = [i for i in range(flat.shape[2]) if np.ptp(flat[:, :, i]) > 0]
    return float(max((az.rhat(flat[:, :, i]) for i in varying), default=np.nan))


# ------------------------------------------------------------------ clustering and singularity


def clustering_agreement(true_labels, predicted_labels):
    """Adjusted Rand index and normalised mutual information of two labelings."""
    return dict(ari=float(adjusted_rand_score(true_labels, predicted_labels)),
                nmi=float(normalized_mutual_info_score(true_labels, predicted_labels)))


def relative_to_data_variance(X, value):
    """value / the mean feature variance of X (N, D); nan for constant data."""
    scale = float(np.var(X, axis=0).mean())
    return float(value / scale) if scale > 0 else float("nan")


def singularity_indicators(X, weights, means, covariances, loglik=None):
    """Signs of a collapse: smallest covariance eigenvalue relative to the mean data variance,
    smallest weight x N (the effective number of points of the smallest component), and
    whether the log-likelihood is non-finite."""
    smallest = float(np.linalg.eigvalsh(np.asarray(covariances, dtype=float)).min())
    if loglik is None:
        loglik = float(log_likelihood_per_sample(X, weights, means, covariances).sum())
    return dict(
        min_eigenvalue=smallest,
        min_eigenvalue_relative=relative_to_data_variance(X, smallest),
        min_weight_n=float(np.min(weights) * len(X)),
        loglik_nonfinite=not np.isfinite(loglik),
    )


def data_resolution(X):
    """The resolution of every feature: the smallest positive gap between two distinct values
    of that feature, (D,); 0 for a constant feature.

    Data recorded to a precision (Old Faithful's waiting times in whole minutes: 1) have that
    precision as resolution; continuous data have a small one.
    """
    X = np.asarray(X, dtype=float)
    resolution = np.zeros(X.shape[1])
    for d, column in enumerate(X.T):
        gaps = np.diff(np.unique(column))
        if len(gaps):
            resolution[d] = gaps.min()
    return resolution


def degeneracy(X, weights, covariances, reg_covar=0.0, resolution=None):
    """Why a fit is degenerate, or None: the rule every backend's fit is judged by.

    X : (N, D); weights (K,); full covariances (K, D, D). A fit is degenerate when a component

    1. has fewer than D + 1 points: pi_k N < D + 1 (no non-singular D-dimensional sample
       covariance comes from fewer points);
    2. hit the ``reg_covar`` floor: its smallest eigenvalue is at most 2 reg_covar, so at least
       half of that variance is the regulariser's (EM and scikit-learn add reg_covar to the
       diagonal);
    3. is narrower than the data can resolve: in some direction v its variance v' Sigma_k v is
       below v' R v, R = diag(r_d^2 / 12), the variance of rounding each feature to its
       resolution r_d (:func:`data_resolution`; uniform rounding error on [-r/2, r/2] has
       variance r^2 / 12), that is Sigma_k - R is not positive semi-definite. Such a component
       sits on tied values (Old Faithful's 14 waiting times of exactly 83 minutes): the
       likelihood grows without bound as it shrinks, and its width is the regulariser's,
       not the data's.

    ``resolution`` (D,) defaults to ``data_resolution(X)``; pass it to judge many fits of the
    same data. Returns the first reason found, naming the component, or None.
    """
    N, D = np.shape(X)
    weights = np.asarray(weights, dtype=float)
    covariances = np.asarray(covariances, dtype=float)
    resolution = data_resolution(X) if resolution is None else np.asarray(resolution)
    counts = weights * N
    if counts.min() < D + 1:
        k = int(counts.argmin())
        return (f"component {k} has weight x N = {counts[k]:.3g} points, fewer than "
                f"D + 1 = {D + 1}")
    rounding = np.diag(resolution**2 / 12)
    for k, covariance in enumerate(covariances):
        if not np.all(np.isfinite(covariance)):
            return f"component {k} has a non-finite covariance"
        smallest = np.linalg.eigvalsh(covariance)[0]
        if reg_covar > 0 and smallest <= 2 * reg_covar:
            return (f"component {k} is at the reg_covar floor: smallest eigenvalue "
                    f"{smallest:.3g} <= 2 x reg_covar = {2 * reg_covar:.3g}")
        margins, directions = np.linalg.eigh(covariance - rounding)
        if margins[0] < 0:
            v = directions[:, 0]
            return (f"component {k} has variance {v @ covariance @ v:.3g} in direction "
                    f"{np.array2string(v, precision=2)}, below the data's rounding variance "
                    f"{v @ rounding @ v:.3g} there (resolution r^2 / 12 per feature)")
    return None


# ------------------------------------------------------------------ everything for one fit


def fit_degeneracy(result, X, reg_covar=0.0, resolution=None):
    """The degeneracy reason of a backend's FitResult on X, or None.

    A collapse the backend reported (status 'singular', or a failure by a singular covariance)
    is degenerate by its own message; any other fit with parameters is judged by
    :func:`degeneracy`; a fit that failed for another reason is not degenerate.
    """
    if result.status == "singular":
        return f"the backend reported a collapse: {result.message}"
    if result.weights is None:
        error = result.singular.get("backend_error")
        return None if error is None else f"the backend failed on a singular covariance: {error}"
    return degeneracy(X, result.weights, result.covariances, reg_covar, resolution)



def evaluate(result, dataset, alignment_cost_name="means", reg_covar=0.0):
    """Every metric of a FitResult on its Dataset, as a flat-ish dict of plain numbers.

    Train and held-out log-likelihood, criteria, aligned parameter errors (when the truth is
    known), ARI/NMI (when labels are known), singularity indicators, ``degenerate`` and
    ``degeneracy_reason`` (:func:`fit_degeneracy`, with the ``reg_covar`` the fit used); for
    posterior draws also the posterior-predictive log density and PSIS-LOO with its Pareto k.
    """
    X = dataset.X
    report = {"loglik": None, "loglik_per_sample": None, "test_loglik_per_sample": None,
              "bic": None, "aic": None, "icl": None, "icl_entropy": None, "n_params": None,
              "param_error": None, "permutation": None, "ari": None, "nmi": None}
    singular = dict(result.singular)
    singular.pop("traceback", None)
    reason = fit_degeneracy(result, X, reg_covar)
    report |= {"degenerate": reason is not None, "degeneracy_reason": reason}
    if result.weights is None:
        return report | {"singular": singular}
    criteria = information_criteria(X, result.weights, result.means, result.covariances,
                                    result.covariance_type)
    report |= {key: criteria[key] for key in ("loglik", "bic", "aic", "icl", "icl_entropy",
                                               "n_params")}
    report["loglik_per_sample"] = criteria["loglik"] / len(X)
    if dataset.X_test is not None:
        report["test_loglik_per_sample"] = float(log_likelihood_per_sample(
            dataset.X_test, result.weights, result.means, result.covariances).mean())
    if dataset.truth is not None:
        aligned = align(result, dataset.truth, alignment_cost_name)
        report["param_error"] = {k: aligned[k] for k in ("weights", "means", "covariances")}
        report["permutation"] = aligned["permutation"]
        report["unmatched"] = {"fitted": aligned["unmatched_fitted"],
                               "true": aligned["unmatched_true"]}
    if dataset.labels is not None:
        report |= clustering_agreement(dataset.labels, criteria["labels"])
    report["singular"] = singular | singularity_indicators(
        X, result.weights, result.means, result.covariances, criteria["loglik"])
    if result.draws is not None:
        report |= _posterior_metrics(result, dataset)
        if dataset.truth is not None:
            # The posterior mean of the draws as sampled, before relabelling.
            naive = SimpleNamespace(**result.draws["naive"])
            aligned = align(naive, dataset.truth, alignment_cost_name)
            report["param_error_naive"] = {k: aligned[k] for k in ("weights", "means",
                                                                   "covariances")}
    return report


def _posterior_metrics(result, dataset):
    """Posterior-predictive log density (train, held-out) and PSIS-LOO (elpd, its standard
    error, effective parameters, largest Pareto k and the count above 0.7) from the draws."""
    import arviz as az

    draws = result.draws
    samples = (draws["weights"], draws["means"], draws["covariances"])
    out = {"posterior_predictive_loglik_per_sample": float(
        posterior_predictive_log_density(dataset.X, *samples).mean())}
    if dataset.X_test is not None:
        out["test_posterior_predictive_loglik_per_sample"] = float(
            posterior_predictive_log_density(dataset.X_test, *samples).mean())
    if result.idata is not None and "log_likelihood" in result.idata.children:
        loo = az.loo(result.idata, pointwise=True)
        out["loo"] = {"elpd": float(loo.elpd), "se": float(loo.se), "p": float(loo.p),
                      "looic": -2 * float(loo.elpd),
                      "pareto_k_max": float(np.max(loo.pareto_k)),
                      "pareto_k_above_0.7": int((np.asarray(loo.pareto_k) > 0.7).sum())}
    return out
