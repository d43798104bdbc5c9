"""The ``pymc`` backend: a Bayesian Gaussian mixture, marginalised over the labels.

Generative story (priors scaled to the data: centre m and spread s of each feature):

    pi ~ Dirichlet(alpha 1_K)
    mu_k ~ N(m, (mean_scale s)^2)              (optionally ordered along the first feature)
    Sigma_k, covariance_prior 'lkj' (the default):
             full  L_k ~ LKJCholeskyCov(eta, HalfNormal(sigma_scale s)), Sigma_k = L_k L_k^T
             tied  one such L for all k;  diag  sigma_kd ~ HalfNormal(sigma_scale s_d)
             spherical  sigma_k ~ HalfNormal(sigma_scale mean(s))
    Sigma_k, covariance_prior 'inverse_wishart' (Fraley & Raftery 2007, J. Classif. 24:155):
             full/tied  Sigma_k ~ InverseWishart(nu = D + 2, Psi = sigma_scale^2 S / K^(2/D)),
             S the data's covariance; diag  sigma_kd^2 ~ InverseGamma(nu/2, Psi_dd/2);
             spherical  sigma_k^2 ~ InverseGamma(nu/2, mean(diag Psi)/2)
    x_n ~ sum_k pi_k N(mu_k, Sigma_k)          (pm.NormalMixture in 1-D, pm.Mixture of MvNormal)

Inference by NUTS (PyMC's own sampler, or nutpie / numpyro when installed and asked for) or
ADVI. The draws are relabelled (label switching) before the point estimate, the posterior mean.

The two covariance priors differ where a component meets several identical or collinear points:
the LKJ/HalfNormal density stays finite at zero variance, so the likelihood's pole makes the
posterior improper there; the inverse-Wishart density vanishes like exp(-tr(Psi Sigma^-1)/2),
faster than any power of the pole, and keeps the posterior proper (the singularity study).
"""

import importlib.util
import time

import numpy as np
from threadpoolctl import threadpool_limits

from gmmlab import metrics
from gmmlab.backends import FitResult
from gmmlab.em import check_choice
from gmmlab.gaussian import COVARIANCE_TYPES

INFERENCE = ("nuts", "advi")
SAMPLERS = ("pymc", "nutpie", "numpyro")
RELABEL = ("pivot", "stephens")
COVARIANCE_PRIORS = ("lkj", "inverse_wishart")
MAX_TREEDEPTH = 10  # PyMC's NUTS default
STARTS = ("em", "quantiles")


def build_model(X, n_components, covariance_type, *, ordered=True, alpha=1.0, mean_scale=2.0,
                covariance_prior="lkj", sigma_scale=1.0, eta=2.0):
    """The PyMC model of X (N, D), with named dims component/feature and deterministic
    ``weights (component,)``, ``means (component, feature)``, ``covariances (component,
    feature, feature_)``."""
    import pymc as pm
    import pytensor.tensor as pt

    check_choice("covariance_type", covariance_type, COVARIANCE_TYPES)
    check_choice("covariance_prior", covariance_prior, COVARIANCE_PRIORS)
    N, D = X.shape
    K = n_components
    centre, spread = X.mean(axis=0), X.std(axis=0)
    coords = {"component": np.arange(K), "feature": np.arange(D), "feature_": np.arange(D),
              "rest": np.arange(D - 1), "sample": np.arange(N)}
    with pm.Model(coords=coords) as model:
        weights = pm.Dirichlet("weights", a=np.full(K, alpha), dims="component")
        transform = {"transform": pm.distributions.transforms.ordered} if ordered else {}
        mu_first = pm.Normal("mu_first", mu=centre[0], sigma=mean_scale * spread[0],
                             dims="component", **transform)
        if D == 1:
            means = pm.Deterministic("means", mu_first[:, None], dims=("component", "feature"))
        else:
            mu_rest = pm.Normal("mu_rest", mu=centre[1:], sigma=mean_scale * spread[1:],
                                dims=("component", "rest"))
            means = pm.Deterministic("means", pt.concatenate([mu_first[:, None], mu_rest], 1),
                                     dims=("component", "feature"))
        if covariance_prior == "lkj":
            chols = _lkj_factors(pm, pt, covariance_type, K, D, sigma_scale * spread, eta)
        else:
            scale = sigma_scale**2 * np.cov(X, rowvar=False, bias=True).reshape(D, D) / K ** (2 / D)
            chols = _inverse_wishart_factors(pm, pt, covariance_type, K, D, scale)
        pm.Deterministic("covariances", pt.stack([c @ c.T for c in chols]),
                         dims=("component", "feature", "feature_"))
        if D == 1:
            pm.NormalMixture("x", w=weights, mu=mu_first, sigma=pt.stack([c[0, 0] for c in chols]),
                             observed=X[:, 0], dims="sample")
        else:
            components = [pm.MvNormal.dist(mu=means[k], chol=chols[k]) for k in range(K)]
            pm.Mixture("x", w=weights, comp_dists=components, observed=X,
                       dims=("sample", "feature"))
    return model


def _lkj_factors(pm, pt, covariance_type, K, D, scales, eta):
    """K lower-triangular factors L_k (D, D) of the covariances, with LKJ/HalfNormal priors."""
    covariance_type = _effective_type(covariance_type, D)
    if covariance_type in ("full", "tied"):
        chols = [pm.LKJCholeskyCov(f"chol{suffix}", n=D, eta=eta,
                                   sd_dist=pm.HalfNormal.dist(sigma=scales, shape=D),
                                   compute_corr=True)[0]
                 for suffix in _factor_suffixes(covariance_type, K)]
        return chols if covariance_type == "full" else chols * K
    if covariance_type == "diag":
        sigma = pm.HalfNormal("sigma", sigma=np.tile(scales, (K, 1)), dims=("component", "feature"))
        return [pt.diag(sigma[k]) for k in range(K)]
    sigma = pm.HalfNormal("sigma", sigma=float(np.mean(scales)), dims="component")  # spherical
    return [sigma[k] * pt.eye(D) for k in range(K)]


def _inverse_wishart_factors(pm, pt, covariance_type, K, D, scale):
    """K lower-triangular factors L_k (D, D) of the covariances, with inverse-Wishart priors
    IW(nu = D + 2, scale (D, D)) (inverse-gamma for diag and spherical variances).

    Full and tied use Bartlett's decomposition of the precision Sigma^-1 ~ Wishart(nu, scale^-1),
    written in reversed coordinates (J the exchange matrix) so that L needs one triangular
    solve and no Cholesky: J Sigma^-1 J = P P^T, P = C A with C C^T = J scale^-1 J, A lower
    triangular, A_ii^2 ~ chi^2(nu - i) (i = 0..D-1), A_ij ~ N(0, 1) below the diagonal; then
    Sigma = L L^T with L = J P^-T J, lower triangular.
    """
    nu = D + 2
    covariance_type = _effective_type(covariance_type, D)
    if covariance_type in ("full", "tied"):
        reverse = np.eye(D)[::-1]
        factor = np.linalg.cholesky(reverse @ np.linalg.inv(scale) @ reverse)
        chols = []
        for suffix in _factor_suffixes(covariance_type, K):
            bartlett = pt.zeros((D, D))
            bartlett = pt.set_subtensor(bartlett[np.diag_indices(D)], pt.sqrt(
                pm.ChiSquared(f"bartlett_chi2{suffix}", nu=nu - np.arange(D), shape=D)))
            if D > 1:
                bartlett = pt.set_subtensor(bartlett[np.tril_indices(D, -1)], pm.Normal(
                    f"bartlett_normal{suffix}", 0.0, 1.0, shape=D * (D - 1) // 2))
            precision_factor_inverse = pt.linalg.solve_triangular(factor @ bartlett, np.eye(D),
                                                                  lower=True)
            chols.append(reverse @ precision_factor_inverse.T @ reverse)
        return chols if covariance_type == "full" else chols * K
    if covariance_type == "diag":
        variance = pm.InverseGamma("variance", alpha=nu / 2, beta=np.diag(scale) / 2,
                                   dims=("component", "feature"))
        return [pt.diag(pt.sqrt(variance[k])) for k in range(K)]
    variance = pm.InverseGamma("variance", alpha=nu / 2, beta=np.mean(np.diag(scale)) / 2,
                               dims="component")  # spherical
    return [pt.sqrt(variance[k]) * pt.eye(D) for k in range(K)]


def _factor_suffixes(covariance_type, K):
    """Name suffixes of the covariance factors: one per component (full), one shared (tied)."""
    return [f"_{k}" for k in range(K)] if covariance_type == "full" else [""]


def _effective_type(covariance_type, D):
    """In 1-D every type but tied is one variance per component: spherical."""
    return "spherical" if D == 1 and covariance_type != "tied" else covariance_type


def fit_pymc(X, n_components, covariance_type, seed, reg_covar, *, inference="nuts",
             sampler="pymc", chains=2, tune=500, draws=500, target_accept=0.9,
             max_treedepth=MAX_TREEDEPTH, cores=1, ordered=True, relabel="pivot", start="em",
             advi_iterations=20_000, advi_learning_rate=0.01, alpha=1.0, mean_scale=2.0,
             covariance_prior="lkj", sigma_scale=1.0, eta=2.0):
    """Posterior draws, relabelled, summarised by their mean; diagnostics recorded.

    start: where the chains begin (then jittered): 'em', the weights and means of an EM fit
    (5 k-means starts), sorted along the first feature; or 'quantiles', means at evenly spread
    quantiles of the first feature. Started far from the data's modes, a chain can stick in a
    poor mode (seen on Old Faithful: R-hat 2.2). ``reg_covar`` only regularises that EM fit;
    the posterior has no such floor. covariance_prior: 'lkj' or 'inverse_wishart' (module
    docstring; only the second keeps the posterior proper where several identical or collinear
    points meet one component); sigma_scale scales either prior's spread of standard
    deviations, eta is the LKJ concentration (unused by the other). max_treedepth caps NUTS at
    2^max_treedepth gradients per draw (PyMC's sampler only); the share of draws that hit the
    cap is recorded, as a sign of a posterior too narrow or too long for the step size.
    """
    import pymc as pm

    check_choice("inference", inference, INFERENCE)
    check_choice("sampler", sampler, SAMPLERS)
    check_choice("relabel", relabel, RELABEL)
    check_choice("start", start, STARTS)
    if sampler != "pymc" and importlib.util.find_spec(sampler) is None:
        raise ValueError(f"sampler={sampler!r} is not installed; pip install {sampler}, or use "
                         f"sampler='pymc'.")
    if sampler != "pymc" and max_treedepth != MAX_TREEDEPTH:
        raise ValueError(f"max_treedepth={max_treedepth} applies to sampler='pymc' only, not to "
                         f"sampler={sampler!r}.")
    model = build_model(X, n_components, covariance_type, ordered=ordered, alpha=alpha,
                        mean_scale=mean_scale, covariance_prior=covariance_prior,
                        sigma_scale=sigma_scale, eta=eta)
    started = time.perf_counter()
    initvals = _start(X, n_components, covariance_type, seed, reg_covar, start)
    # One BLAS thread: PyTensor's ops call BLAS on D x D matrices, where threads only contend.
    # Two fits in separate processes on 2 cores took 11.4 ms per leapfrog step instead of 2.6
    # (joblib's workers limit the threads themselves; a shell loop or a scheduler may not).
    with model, threadpool_limits(limits=1):
        if inference == "nuts":
            idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores,
                              target_accept=target_accept, random_seed=seed, nuts_sampler=sampler,
                              initvals=initvals, progressbar=False,
                              compute_convergence_checks=False,
                              **({"nuts": {"max_treedepth": max_treedepth,
                                           "early_max_treedepth": min(8, max_treedepth)}}
                                 if sampler == "pymc" else {}))
        else:
            approximation = pm.fit(n=advi_iterations, method="advi", random_seed=seed,
                                   start=initvals, progressbar=False,
                                   obj_optimizer=pm.adam(learning_rate=advi_learning_rate))
            idata = approximation.sample(draws * chains, random_seed=seed)
        pm.compute_log_likelihood(idata, progressbar=False)
    sampling_seconds = time.perf_counter() - started
    summary = summarise_posterior(idata, X, relabel)
    diagnostics = summary.pop("diagnostics") | {"sampling_seconds": sampling_seconds,
                                                "inference": inference, "ordered": ordered}
    if inference == "nuts":
        stats = idata.sample_stats
        diagnostics["divergences"] = int(stats["diverging"].sum())
        if "reached_max_treedepth" in stats:
            diagnostics["max_treedepth_share"] = float(stats["reached_max_treedepth"].mean())
    return FitResult("pymc", n_components, covariance_type, idata=idata,
                     diagnostics=diagnostics, converged=diagnostics["max_rhat"] <= 1.01,
                     **summary)


def _start(X, n_components, covariance_type, seed, reg_covar, start):
    """Initial values of weights and means (components sorted along the first feature)."""
    from gmmlab.em import EMGaussianMixture

    if start == "quantiles":
        return {"mu_first": np.quantile(X[:, 0], (np.arange(n_components) + 0.5) / n_components)}
    fit = EMGaussianMixture(n_components, covariance_type=covariance_type, n_init=5,
                            reg_covar=max(reg_covar, 1e-6), random_state=seed).fit(X)
    order = np.argsort(fit.means_[:, 0])
    initvals = {"weights": fit.weights_[order], "mu_first": fit.means_[order, 0]}
    if X.shape[1] > 1:
        initvals["mu_rest"] = fit.means_[order, 1:]
    return initvals


def summarise_posterior(idata, X, relabel="pivot"):
    """Relabel the draws, then posterior means, standard deviations and diagnostics.

    Pivot: the draw of highest log-likelihood; every draw is matched to it by the Hungarian
    algorithm on squared distances between means. Stephens: his KL algorithm on the draws'
    responsibilities. R-hat before and after relabelling shows the label switching.
    """
    posterior = idata.posterior
    chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    raw = {name: posterior[name].to_numpy() for name in ("weights", "means", "covariances")}
    flat = {name: value.reshape((chains * n_draws,) + value.shape[2:])
            for name, value in raw.items()}
    loglik = idata.log_likelihood["x"].to_numpy().reshape(chains * n_draws, -1).sum(axis=1)
    if relabel == "pivot":
        pivot = int(np.argmax(loglik))
        permutations = metrics.relabel_to_pivot(flat["means"], flat["means"][pivot])
    else:
        permutations = metrics.stephens_relabel(np.stack([
            metrics.responsibilities(X, w, m, c)
            for w, m, c in zip(flat["weights"], flat["means"], flat["covariances"], strict=True)
        ]))
    relabelled = {name: metrics.apply_permutations(value, permutations)
                  for name, value in flat.items()}
    by_chain = {name: value.reshape((chains, n_draws) + value.shape[1:])
                for name, value in relabelled.items()}
    identity = np.arange(permutations.shape[1])
    diagnostics = dict(
        relabel=relabel,
        draws_permuted=int((permutations != identity).any(axis=1).sum()),
        n_draws_total=int(chains * n_draws),
        max_rhat_raw=metrics.max_rhat(raw["weights"], raw["means"]),
        max_rhat=metrics.max_rhat(by_chain["weights"], by_chain["means"]),
        min_ess_bulk=min(_min_ess(by_chain[n], "bulk") for n in ("weights", "means")),
        min_ess_tail=min(_min_ess(by_chain[n], "tail") for n in ("weights", "means")),
        # the posterior mean's covariances can hide chains that sit at a collapse
        min_eigenvalue_relative_any_draw=metrics.relative_to_data_variance(
            X, np.linalg.eigvalsh(flat["covariances"]).min()),
    )
    return dict(
        weights=relabelled["weights"].mean(axis=0),
        means=relabelled["means"].mean(axis=0),
        covariances=relabelled["covariances"].mean(axis=0),
        draws={"weights": relabelled["weights"], "means": relabelled["means"],
               "covariances": relabelled["covariances"], "permutations": permutations,
               "weights_sd": relabelled["weights"].std(axis=0),
               "means_sd": relabelled["means"].std(axis=0),
               "naive": {name: value.mean(axis=0) for name, value in flat.items()}},
        diagnostics=diagnostics,
    )


def _min_ess(chains_draws, method):
    import arviz as az

    flat = chains_draws.reshape(chains_draws.shape[0], chains_draws.shape[1], -1)
    return float(min(az.ess(flat[:, :, i], method=method) for i in range(flat.shape[2])))
