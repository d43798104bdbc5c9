"""The ``pymc`` backend: a Bayesian Gaussian mixture, marginalised over the labels.

Generative story (priors scaled to the data: centre m and spread s of each feature)::

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
    covariance_prior 'normal_inverse_wishart' (conjugate, full covariances only; the prior of
             :func:`gmmlab.marginal_likelihood`, so that fits and evidence agree): ``prior`` a
             dict {"family": "normal-inverse-wishart", "mean": m0, "kappa": k0, "dof": nu0,
             "scale": S0, "alpha": a} (:mod:`gmmlab.model.conjugate`; None: its default_prior),
             Sigma_k ~ InverseWishart(nu0, S0) (as above, Bartlett), pi ~ Dirichlet(a 1_K),
             mu_k = m0 + L_k o_k / sqrt(k0), o_k ~ N(0, I) (so mu_k | Sigma_k ~ N(m0,
             Sigma_k / k0)); ordered: the first coordinates of the offsets o_k, which
             also picks one labelling of every point of the parameter space
    x_n ~ sum_k pi_k N(mu_k, Sigma_k)

Two ways to write the likelihood, the same density (equal to 1e-10, tested):
'marginal' (the default), one batched expression, ``log p(x_n) = logsumexp_k [log pi_k
- 1/2 |L_k^-1 (x_n - mu_k)|^2 - sum_d log L_k,dd - D/2 log 2 pi]`` with L_k the Cholesky factor
of Sigma_k; and 'mixture', the textbook PyMC model (pm.NormalMixture in 1-D, pm.Mixture of
pm.MvNormal), kept as the reference that ``python experiments/speed/bench_bayes.py`` measures
against.

Inference by NUTS: nutpie (the default; Rust, chains in threads) or PyMC's own sampler; or
ADVI. nutpie gets the log density and its gradient, for the LKJ prior with the marginal
likelihood, from :mod:`gmmlab.backends.mixture_posterior` (written by hand in Numba, cached on
disk: a fresh process loads it instead of compiling); otherwise from the PyMC model compiled by
PyTensor's Numba backend, once per structure (covariance type, K, D, priors) and data set in a
process and reused for every seed.
The draws are relabelled (label switching) before the point estimate, the posterior mean.

The two covariance priors differ where a component meets several identical or collinear points:
the LKJ/HalfNormal density stays finite at zero variance, so the likelihood's pole makes the
posterior improper there; the inverse-Wishart density vanishes like exp(-tr(Psi Sigma^-1)/2),
faster than any power of the pole, and keeps the posterior proper (the singularity study).
"""

import contextlib
import dataclasses
import inspect
import threading
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from gmmlab.backends import FitResult
from gmmlab.model import metrics
from gmmlab.model.em import check_choice
from gmmlab.model.gaussian import COVARIANCE_TYPES

# A posterior's draws have converged when every relabelled weight and mean has R-hat at most
# this (Vehtari et al. 2021); reports flag the runs above it.
RHAT_MAX = 1.01

INFERENCE = ("nuts", "advi")
SAMPLERS = ("nutpie", "pymc")
LIKELIHOODS = ("marginal", "mixture")
RELABEL = ("pivot", "stephens")
COVARIANCE_PRIORS = ("lkj", "inverse_wishart", "normal_inverse_wishart")
DENSITIES = ("auto", "numba", "pytensor")
# nutpie's chains start at the EM fit jittered by U(-START_JITTER, START_JITTER) in every
# unconstrained coordinate. PyMC's jitter, U(-1, 1), multiplies a gap between ordered means or a
# weight ratio by up to e: on tutorial_1d (K = 3) 1 chain in 4 then stuck, in 1 fit in 8 at
# 4 x (1000 + 1000) and 3 in 8 at 4 x (250 + 250), in a minor mode (weights 0.7 / 0.2 / 0.1,
# R-hat 1.53); at 0.25, none of the same 16 fits did, and Old Faithful's 8 were as before.
START_JITTER = 0.25
# nutpie's mass-matrix adaptation: a diagonal plus a low-rank correction from the leading
# directions of the draws and their gradients, or the diagonal alone.
MASS_MATRICES = ("low_rank", "diag")
MAX_TREEDEPTH = 10  # the NUTS default of PyMC and nutpie
STARTS = ("em", "quantiles")
OBSERVATION_DIM = "obs"  # ArviZ 1.x reserves "sample"
STORED = ("weights", "means", "covariances")  # kept per draw besides the free variables


def build_model(X, n_components, covariance_type, *, likelihood="marginal", ordered=True,
                alpha=1.0, mean_scale=2.0, covariance_prior="lkj", sigma_scale=1.0, eta=2.0,
                prior=None):
    """The PyMC model of X (N, D), with named dims component/feature and deterministic
    ``weights (component,)``, ``means (component, feature)``, ``covariances (component,
    feature, feature_)``. The data and the prior scales derived from them are ``pm.Data``
    (:func:`data_values`). ``prior``: the normal-inverse-Wishart prior's dict, for
    covariance_prior 'normal_inverse_wishart' only (module docstring)."""
    import pymc as pm
    import pytensor.tensor as pt

    check_choice("covariance_type", covariance_type, COVARIANCE_TYPES)
    check_choice("covariance_prior", covariance_prior, COVARIANCE_PRIORS)
    check_choice("likelihood", likelihood, LIKELIHOODS)
    N, D = X.shape
    K = n_components
    conjugate_prior = _conjugate_prior(X, K, covariance_type, covariance_prior, prior)
    coords = {"component": np.arange(K), "feature": np.arange(D), "feature_": np.arange(D),
              "rest": np.arange(D - 1)}
    with pm.Model(coords=coords) as model:
        data = {name: pm.Data(name, value)
                for name, value in data_values(X, K, covariance_prior, sigma_scale,
                                               conjugate_prior).items()}
        centre, spread = data["centre"], data["spread"]
        if conjugate_prior is not None:
            alpha = conjugate_prior.alpha
        weights = pm.Dirichlet("weights", a=np.full(K, alpha), dims="component")
        transform = {"transform": pm.distributions.transforms.ordered} if ordered else {}
        if conjugate_prior is None:
            means = _independent_means(pm, pt, K, D, centre, spread, mean_scale, transform)
        if covariance_prior == "lkj":
            chols = _lkj_factors(pm, pt, covariance_type, K, D, sigma_scale * spread, eta)
        else:
            nu = D + 2 if conjugate_prior is None else conjugate_prior.dof
            chols = _inverse_wishart_factors(pm, pt, covariance_type, K, D, data, nu)
        if conjugate_prior is not None:
            means = _conjugate_means(pm, pt, K, D, chols, conjugate_prior, transform)
        pm.Deterministic("covariances", pt.stack([c @ c.T for c in chols]),
                         dims=("component", "feature", "feature_"))
        if likelihood == "marginal":
            pm.Potential("x", mixture_log_density(data["X"], weights, means, pt.stack(chols))
                         .sum())
        elif D == 1:
            pm.NormalMixture("x", w=weights, mu=means[:, 0],
                             sigma=pt.stack([c[0, 0] for c in chols]), observed=X[:, 0])
        else:
            components = [pm.MvNormal.dist(mu=means[k], chol=chols[k]) for k in range(K)]
            pm.Mixture("x", w=weights, comp_dists=components, observed=X)
    return model


def _conjugate_prior(X, K, covariance_type, covariance_prior, prior):
    """The normal-inverse-Wishart prior (:class:`gmmlab.model.conjugate.MixturePrior`) for
    covariance_prior 'normal_inverse_wishart', else None (and ``prior`` must be None)."""
    from gmmlab.model import conjugate

    if covariance_prior != "normal_inverse_wishart":
        if prior is not None:
            raise ValueError(f"prior is the normal-inverse-Wishart prior's dict, used with "
                             f"covariance_prior='normal_inverse_wishart' only; got "
                             f"covariance_prior={covariance_prior!r} and prior={prior!r}.")
        return None
    if covariance_type != "full":
        raise ValueError("covariance_prior='normal_inverse_wishart' puts one inverse-Wishart "
                         "on each component's covariance: covariance_type must be 'full', "
                         f"got {covariance_type!r}.")
    prior = conjugate.make_prior(prior, X)
    if not prior.conjugate:
        raise ValueError(f"prior['family'] must be {conjugate.CONJUGATE!r} in the pymc "
                         f"backend, got {prior.family!r}.")
    return prior


def _independent_means(pm, pt, K, D, centre, spread, mean_scale, transform):
    """mu_kd ~ N(centre_d, (mean_scale spread_d)^2), the first feature's ordered if asked."""
    mu_first = pm.Normal("mu_first", mu=centre[0], sigma=mean_scale * spread[0],
                         dims="component", **transform)
    if D == 1:
        means = pm.Deterministic("means", mu_first[:, None], dims=("component", "feature"))
    else:
        mu_rest = pm.Normal("mu_rest", mu=centre[1:], sigma=mean_scale * spread[1:],
                            dims=("component", "rest"))
        means = pm.Deterministic("means", pt.concatenate([mu_first[:, None], mu_rest], 1),
                                 dims=("component", "feature"))
    return means


def _conjugate_means(pm, pt, K, D, chols, prior, transform):
    """mu_k = m0 + L_k o_k / sqrt(k0), o_k ~ N(0, I), the offsets' first coordinates ordered
    if asked: mu_k | Sigma_k ~ N(m0, Sigma_k / k0)."""
    offsets = pm.Normal("mean_offset_first", 0.0, 1.0, dims="component", **transform)[:, None]
    if D > 1:
        offsets = pt.concatenate([offsets, pm.Normal("mean_offset_rest", 0.0, 1.0,
                                                     dims=("component", "rest"))], 1)
    return pm.Deterministic("means", prior.mean + pt.stack(
        [chols[k] @ offsets[k] for k in range(K)]) / np.sqrt(prior.kappa),
        dims=("component", "feature"))


def data_values(X, n_components, covariance_prior="lkj", sigma_scale=1.0, conjugate_prior=None):
    """The model's ``pm.Data`` for X (N, D): X, its centre and spread per feature, and for the
    inverse-Wishart priors the Cholesky factor C of J Psi^-1 J and the diagonal of Psi
    (J the exchange matrix): Psi = sigma_scale^2 S / K^(2/D) (S the covariance of X), or the
    normal-inverse-Wishart ``conjugate_prior``'s scale."""
    N, D = X.shape
    values = {"X": X, "centre": X.mean(axis=0), "spread": X.std(axis=0)}
    if covariance_prior != "lkj":
        scale = (sigma_scale**2 * np.cov(X, rowvar=False, bias=True).reshape(D, D)
                 / n_components ** (2 / D)) if conjugate_prior is None else (
                     conjugate_prior.scale)
        reverse = np.eye(D)[::-1]
        values["psi_factor"] = np.linalg.cholesky(reverse @ np.linalg.inv(scale) @ reverse)
        values["psi_diagonal"] = np.diag(scale).copy()
    return values


def mixture_log_density(X, weights, means, chols):
    """log p(x_n) = logsumexp_k [log pi_k + log N(x_n | mu_k, L_k L_k^T)] as a PyTensor
    expression: X (N, D), weights (K,), means (K, D), chols (K, D, D) lower triangular; (N,)."""
    import pytensor.tensor as pt

    D = chols.shape[-1]
    inverse = pt.linalg.solve_triangular(chols, pt.eye(D)[None], lower=True, b_ndim=2)
    centred = X[:, None, :] - means[None]  # (N, K, D)
    whitened = pt.sum(inverse[None] * centred[:, :, None, :], axis=-1)  # L_k^-1 (x_n - mu_k)
    log_det = pt.sum(pt.log(pt.diagonal(chols, axis1=1, axis2=2)), axis=1)  # 1/2 log |Sigma_k|
    log_components = (pt.log(weights)[None] - 0.5 * pt.sum(whitened**2, axis=-1)
                      - log_det[None] - 0.5 * D * np.log(2 * np.pi))
    return pt.logsumexp(log_components, axis=1)


def _lkj_factors(pm, pt, covariance_type, K, D, scales, eta):
    """K lower-triangular factors L_k (D, D) of the covariances, with LKJ/HalfNormal priors."""
    covariance_type = _effective_type(covariance_type, D)
    if covariance_type in ("full", "tied"):
        chols = [pm.expand_packed_triangular(D, pm.LKJCholeskyCov(
                     f"chol{suffix}", n=D, eta=eta, compute_corr=False,
                     sd_dist=pm.HalfNormal.dist(sigma=scales, shape=D)))
                 for suffix in _factor_suffixes(covariance_type, K)]
        return chols if covariance_type == "full" else chols * K
    if covariance_type == "diag":
        sigma = pm.HalfNormal("sigma", sigma=pt.tile(scales[None], (K, 1)),
                              dims=("component", "feature"))
        return [pt.diag(sigma[k]) for k in range(K)]
    sigma = pm.HalfNormal("sigma", sigma=pt.mean(scales), dims="component")  # spherical
    return [sigma[k] * pt.eye(D) for k in range(K)]


def _inverse_wishart_factors(pm, pt, covariance_type, K, D, data, nu):
    """K lower-triangular factors L_k (D, D) of the covariances, with inverse-Wishart priors
    IW(nu, Psi) (inverse-gamma for diag and spherical variances); ``data`` holds
    psi_factor and psi_diagonal (:func:`data_values`).

    Full and tied use Bartlett's decomposition of the precision Sigma^-1 ~ Wishart(nu, Psi^-1),
    written in reversed coordinates (J the exchange matrix) so that L needs one triangular
    solve and no Cholesky: J Sigma^-1 J = P P^T, P = C A with C C^T = J Psi^-1 J, A lower
    triangular, A_ii^2 ~ chi^2(nu - i) (i = 0..D-1), A_ij ~ N(0, 1) below the diagonal; then
    Sigma = L L^T with L = J P^-T J, lower triangular.
    """
    covariance_type = _effective_type(covariance_type, D)
    if covariance_type in ("full", "tied"):
        reverse = np.eye(D)[::-1]
        chols = []
        for suffix in _factor_suffixes(covariance_type, K):
            bartlett = pt.zeros((D, D))
            bartlett = pt.set_subtensor(bartlett[np.diag_indices(D)], pt.sqrt(
                pm.ChiSquared(f"bartlett_chi2{suffix}", nu=nu - np.arange(D), shape=D)))
            if D > 1:
                bartlett = pt.set_subtensor(bartlett[np.tril_indices(D, -1)], pm.Normal(
                    f"bartlett_normal{suffix}", 0.0, 1.0, shape=D * (D - 1) // 2))
            precision_factor_inverse = pt.linalg.solve_triangular(
                data["psi_factor"] @ bartlett, np.eye(D), lower=True)
            chols.append(reverse @ precision_factor_inverse.T @ reverse)
        return chols if covariance_type == "full" else chols * K
    if covariance_type == "diag":
        variance = pm.InverseGamma("variance", alpha=nu / 2,
                                   beta=pt.tile(data["psi_diagonal"][None] / 2, (K, 1)),
                                   dims=("component", "feature"))
        return [pt.diag(pt.sqrt(variance[k])) for k in range(K)]
    variance = pm.InverseGamma("variance", alpha=nu / 2, beta=pt.mean(data["psi_diagonal"]) / 2,
                               dims="component")  # spherical
    return [pt.sqrt(variance[k]) * pt.eye(D) for k in range(K)]


def _factor_suffixes(covariance_type, K):
    """Name suffixes of the covariance factors: one per component (full), one shared (tied)."""
    return [f"_{k}" for k in range(K)] if covariance_type == "full" else [""]


def _effective_type(covariance_type, D):
    """In 1-D every type but tied is one variance per component: spherical."""
    return "spherical" if D == 1 and covariance_type != "tied" else covariance_type


@contextlib.contextmanager
def numba_optimisation(level):
    """Numba's LLVM optimisation level for the functions compiled inside the block, restored
    after it (the process-wide setting, ``NUMBA_OPT``, is left alone).

    The PyMC model's functions compile at level 0: measured on Old Faithful's K = 2 model with
    nutpie, compile 9.5 s against 15 s at Numba's default level 3, with the same sampling time
    (1.7 s for 4 x 2000 iterations); on 2-D N = 5000, 0.27 ms a leapfrog step against 0.33.
    Functions compiled elsewhere (gmmlab's EM kernels, a user's own) keep the default.

    Parameters
    ----------
    level : int
        0 to 3.
    """
    from numba.core import config

    saved = config.OPT
    config.OPT = type(saved)(level)
    try:
        yield
    finally:
        config.OPT = saved


@dataclasses.dataclass(frozen=True)
class FitSpec:
    """What one PyMC fit is asked for, checked once: the model and how it is sampled.

    Its fields are the ``pymc`` backend's options (``backend.<field>=...``; they are
    :func:`fit_pymc`'s keyword parameters, so the configuration schema cannot drift from
    them). Invalid choices and combinations raise ValueError naming the field, the value and
    what is accepted. ``density='auto'`` is resolved here: 'numba' where the hand-written
    posterior applies (NUTS by nutpie on the marginal likelihood, LKJ prior, ordered means),
    else 'pytensor'.

    Attributes
    ----------
    n_components : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    inference : {'nuts', 'advi'}
    sampler : {'nutpie', 'pymc'}
        NUTS by nutpie (Rust, chains in threads) or by PyMC.
    likelihood : {'marginal', 'mixture'}
        The hand-written marginal density or PyMC's textbook mixture (module docstring).
    chains, tune, draws : int
        Chains, and tuning and kept draws per chain (ADVI: chains x draws from the fit).
    target_accept : float
    max_treedepth : int
        NUTS makes at most 2^max_treedepth gradient evaluations per draw.
    cores : int or None
        Chains run at once (nutpie: threads, PyMC: processes); None, all CPUs.
    ordered : bool
        Means ordered along the first feature (one labelling of the posterior).
    relabel : {'pivot', 'stephens'}
    start : {'em', 'quantiles'}
    advi_iterations : int
    advi_learning_rate : float
    alpha, mean_scale, sigma_scale, eta : float
        Prior constants (module docstring).
    covariance_prior : {'lkj', 'inverse_wishart', 'normal_inverse_wishart'}
    density : {'auto', 'numba', 'pytensor'}
    mass_matrix : {'low_rank', 'diag'}
    prior : dict or None
        The normal-inverse-Wishart prior's dict (:mod:`gmmlab.model.conjugate`), with
        covariance_prior 'normal_inverse_wishart' only (checked against the data by
        :func:`build_model`); None: its data-scaled default. Its alpha replaces ``alpha``.
    """

    n_components: int
    covariance_type: str
    inference: str = "nuts"
    sampler: str = "nutpie"
    likelihood: str = "marginal"
    chains: int = 4
    tune: int = 1000
    draws: int = 1000
    target_accept: float = 0.9
    max_treedepth: int = MAX_TREEDEPTH
    cores: int | None = None
    ordered: bool = True
    relabel: str = "pivot"
    start: str = "em"
    advi_iterations: int = 20_000
    advi_learning_rate: float = 0.01
    alpha: float = 1.0
    mean_scale: float = 2.0
    covariance_prior: str = "lkj"
    sigma_scale: float = 1.0
    eta: float = 2.0
    density: str = "auto"
    mass_matrix: str = "low_rank"
    prior: dict | None = None

    def __post_init__(self):
        check_choice("covariance_type", self.covariance_type, COVARIANCE_TYPES)
        check_choice("inference", self.inference, INFERENCE)
        check_choice("sampler", self.sampler, SAMPLERS)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        check_choice("relabel", self.relabel, RELABEL)
        check_choice("start", self.start, STARTS)
        check_choice("covariance_prior", self.covariance_prior, COVARIANCE_PRIORS)
        check_choice("density", self.density, DENSITIES)
        check_choice("mass_matrix", self.mass_matrix, MASS_MATRICES)
        hand_written = (self.inference == "nuts" and self.sampler == "nutpie"
                        and self.likelihood == "marginal" and self.covariance_prior == "lkj"
                        and self.ordered)
        if self.density == "numba" and not hand_written:
            raise ValueError(
                "density='numba' is written for NUTS by nutpie on the marginal likelihood "
                f"with the LKJ prior and ordered means; got inference={self.inference!r}, "
                f"sampler={self.sampler!r}, likelihood={self.likelihood!r}, "
                f"covariance_prior={self.covariance_prior!r}, ordered={self.ordered!r} "
                "(use density='pytensor' or 'auto')")
        if self.density == "auto":
            object.__setattr__(self, "density", "numba" if hand_written else "pytensor")

    @property
    def structure(self):
        """:func:`build_model`'s arguments: what the model is, whatever samples it."""
        return {name: getattr(self, name) for name in (
            "n_components", "covariance_type", "likelihood", "ordered", "alpha", "mean_scale",
            "covariance_prior", "sigma_scale", "eta", "prior")}

    @property
    def way(self):
        """The key of :data:`SAMPLE`: 'advi', 'numba' (NUTS by nutpie on the hand-written
        posterior), 'nutpie' or 'pymc'."""
        if self.inference == "advi":
            return "advi"
        return "numba" if self.density == "numba" else self.sampler

    def inference_record(self):
        """What ran, for the record's diagnostics: inference, sampler, density, ordered and
        the mass matrix adapted (PyMC's sampler adapts a diagonal one)."""
        nuts = self.inference == "nuts"
        return {"inference": self.inference, "sampler": self.sampler if nuts else None,
                "density": self.density if nuts else None, "ordered": self.ordered,
                "mass_matrix": (self.mass_matrix if self.sampler == "nutpie" else "diag")
                if nuts else None}


def fit_pymc(X, n_components, covariance_type, seed, reg_covar, **options):
    """Posterior draws, relabelled, summarised by their mean; diagnostics recorded.

    options: the fields of :class:`FitSpec` (this function's signature lists them with their
    defaults). sampler: 'nutpie' or 'pymc' (NUTS); likelihood: 'marginal' or 'mixture' (module
    docstring). cores: chains run at once (nutpie: threads, PyMC: processes); None, all CPUs.
    start: where the chains begin (nutpie: then jittered by U(-0.25, 0.25) in the
    unconstrained space, :data:`START_JITTER`; PyMC's sampler: its own U(-1, 1)): 'em', the
    weights and means of an EM fit (5 k-means starts), sorted along the first feature; or
    'quantiles', means at evenly spread quantiles of the first feature. Started far from the
    data's modes, a chain can stick in a poor mode (seen on Old Faithful: R-hat 2.2).
    ``reg_covar`` only regularises that EM fit; the posterior has no such floor.
    covariance_prior: 'lkj', 'inverse_wishart' or 'normal_inverse_wishart' (module docstring;
    only the last two keep the posterior proper where several identical or collinear points
    meet one component); prior: the last one's dict (None: its default, as
    :func:`gmmlab.marginal_likelihood`'s), its alpha replacing ``alpha``;
    sigma_scale scales either prior's spread of standard deviations, eta is the LKJ
    concentration (unused by the other). max_treedepth caps NUTS at 2^max_treedepth gradients
    per draw; the share of draws that hit the cap is recorded, as a sign of a posterior too
    narrow or too long for the step size.
    density: how nutpie gets the log density and gradient; 'numba', written by hand and cached
    on disk by Numba (:mod:`gmmlab.backends.mixture_posterior`: no compile in a fresh process
    once cached), for NUTS by nutpie on the marginal likelihood, LKJ prior, ordered means;
    'pytensor', compiled from the PyMC model; 'auto' (the default), 'numba' where it applies.
    The diagnostics record which ran.
    mass_matrix: nutpie's adaptation, 'low_rank' (the default: diagonal plus a low-rank
    correction, which follows the correlations between means, weights and covariance
    factors; ``python experiments/speed/bench_bayes.py`` compares it with 'diag') or 'diag'. PyMC's
    sampler adapts a diagonal one whatever this says.
    """
    spec = FitSpec(n_components, covariance_type, **options)
    started = time.perf_counter()
    initvals = _start(X, n_components, covariance_type, seed, reg_covar, spec.start)
    conjugate_prior = _conjugate_prior(X, n_components, covariance_type, spec.covariance_prior,
                                       spec.prior)
    if conjugate_prior is not None:
        initvals = _offset_start(initvals, conjugate_prior, X)
    # One BLAS thread: the model's ops work on D x D matrices, where threads only contend.
    # Numba notes each PyTensor function it compiles but cannot cache on disk (it holds
    # pointers); the function runs all the same, so the note is not shown.
    with threadpool_limits(limits=1), warnings.catch_warnings(), numba_optimisation(0):
        warnings.filterwarnings("ignore", message="Cannot cache compiled function")
        idata, compile_seconds, sampler_seconds = SAMPLE[spec.way](X, spec, initvals, seed)
    add_log_likelihood(idata, X)
    timings = {"sampling_seconds": time.perf_counter() - started - compile_seconds,
               "compile_seconds": compile_seconds, "sampler_seconds": sampler_seconds}
    summary = summarise_posterior(idata, X, spec.relabel)
    add_relabelled_posterior(idata, summary["draws"])
    alpha = spec.alpha if conjugate_prior is None else conjugate_prior.alpha
    diagnostics = (summary.pop("diagnostics") | nonempty_components(X, summary["draws"], seed)
                   | {"alpha": alpha} | timings | spec.inference_record()
                   | (sampler_statistics(idata) if spec.inference == "nuts" else {}))
    return FitResult("pymc", n_components, covariance_type, idata=idata,
                     diagnostics=diagnostics, converged=diagnostics["max_rhat"] <= RHAT_MAX,
                     **summary)


def _options_signature(function, spec_class):
    """``function``'s signature with the fields of ``spec_class`` (but K and the covariance
    type) as keyword-only parameters in place of ``**options``: what the configuration schema
    and the option checks read (:func:`gmmlab.backends.check`)."""
    parameters = [p for p in inspect.signature(function).parameters.values()
                  if p.kind is not inspect.Parameter.VAR_KEYWORD]
    parameters += [inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY,
                                     default=field.default)
                   for field in dataclasses.fields(spec_class)
                   if field.name not in ("n_components", "covariance_type")]
    return inspect.Signature(parameters)


fit_pymc.__signature__ = _options_signature(fit_pymc, FitSpec)


# Compiled models by structure and data, reused across seeds in this process.
_NUTPIE_MODELS = {}


def compiled_nutpie_model(X, structure):
    """nutpie's compiled model of X under ``structure`` (build_model's arguments), and the
    seconds spent compiling (0 when reused). The data are frozen into the graph as constants:
    Old Faithful's K = 2 full model compiles in 8 s so, against 20 s with the data as shared
    inputs that another data set could swap in (measured here), so a model is compiled once
    per structure and data set and reused across seeds."""
    import hashlib

    import nutpie
    from pymc.model.transform.optimization import freeze_dims_and_data

    key = (repr(sorted(structure.items())), X.shape, hashlib.sha256(X.tobytes()).hexdigest())
    if key in _NUTPIE_MODELS:
        return *_NUTPIE_MODELS[key], 0.0
    began = time.perf_counter()
    model = freeze_dims_and_data(build_model(X, **structure))
    compiled = nutpie.compile_pymc_model(model, backend="numba", var_names=STORED)
    _NUTPIE_MODELS[key] = model, compiled
    return model, compiled, time.perf_counter() - began


def _nutpie_options(spec, seed):
    """nutpie.sample's keywords of a spec."""
    return dict(chains=spec.chains, tune=spec.tune, draws=spec.draws, seed=seed,
                cores=spec.cores, target_accept=spec.target_accept,
                maxdepth=spec.max_treedepth, adaptation=spec.mass_matrix,
                progress_bar=show_progress())


def _sample_nutpie(X, spec, initvals, seed):
    """nutpie's NUTS from jittered starts at ``initvals``; (DataTree, compile seconds,
    sampler seconds)."""
    import nutpie

    model, compiled, compile_seconds = compiled_nutpie_model(X, spec.structure)
    compiled = dataclasses.replace(compiled,
                                   initial_point_func=_initial_point_function(model, initvals))
    began = time.perf_counter()
    idata = nutpie.sample(compiled, **_nutpie_options(spec, seed))
    return idata, compile_seconds, time.perf_counter() - began


def _sample_hand_written(X, spec, initvals, seed):
    """nutpie's NUTS on the hand-written posterior (:mod:`gmmlab.backends.mixture_posterior`)
    from jittered starts at ``initvals``; (DataTree, compile seconds: importing that module,
    which compiles its callbacks or loads them from Numba's cache, 0 once imported; sampler
    seconds)."""
    import sys

    import nutpie

    began = time.perf_counter()
    imported = "gmmlab.backends.mixture_posterior" in sys.modules
    from gmmlab.backends import mixture_posterior
    compile_seconds = 0.0 if imported else time.perf_counter() - began

    K, D = spec.n_components, X.shape[1]
    covariance_type = _effective_type(spec.covariance_type, D)
    priors = {name: getattr(spec, name) for name in ("alpha", "mean_scale", "sigma_scale",
                                                     "eta")}
    data = mixture_posterior.posterior_data(X, K, covariance_type, **priors)
    weights = initvals.get("weights", np.full(K, 1 / K))
    means = np.column_stack([initvals["mu_first"],
                             initvals.get("mu_rest", np.tile(X.mean(axis=0)[1:], (K, 1)))])

    def start(chain_seed):
        return mixture_posterior.unconstrained_start(data, weights, means, START_JITTER,
                                                     np.random.default_rng(chain_seed))

    compiled = mixture_posterior.compile_model(X, K, covariance_type, start, **priors)
    began = time.perf_counter()
    idata = nutpie.sample(compiled, **_nutpie_options(spec, seed))
    return idata, compile_seconds, time.perf_counter() - began


def _initial_point_function(model, initvals):
    """seed -> the flat unconstrained start nutpie expects (free variables in model order),
    at ``initvals`` (other variables at their support points), jittered by
    U(-START_JITTER, START_JITTER). nutpie's own start drops ``initvals`` and puts ordered
    means at -inf."""
    from pymc.initial_point import make_initial_point_fn

    point_function = make_initial_point_fn(model=model, overrides=initvals,
                                           jitter_rvs=set(), return_transformed=True)
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    lock = threading.Lock()  # nutpie's chains call it from threads; a PyTensor function is
    # not thread-safe (unlocked, concurrent calls made some starts fail at random)

    def initial_point(seed):
        with lock:
            point = point_function(seed)
        flat = np.concatenate([np.ravel(point[name]) for name in names]).astype(float)
        return flat + np.random.default_rng(seed).uniform(-START_JITTER, START_JITTER,
                                                          size=flat.size)

    return initial_point


def _sample_pymc(X, spec, initvals, seed):
    """PyMC's own NUTS; (DataTree, 0, sampler seconds: PyMC compiles inside pm.sample)."""
    import pymc as pm

    with build_model(X, **spec.structure):
        began = time.perf_counter()
        idata = pm.sample(draws=spec.draws, tune=spec.tune, chains=spec.chains,
                          cores=spec.cores, target_accept=spec.target_accept,
                          random_seed=seed, nuts_sampler="pymc", initvals=initvals,
                          progressbar=show_progress(), compute_convergence_checks=False,
                          discard_tuned_samples=False,
                          nuts={"max_treedepth": spec.max_treedepth,
                                "early_max_treedepth": min(8, spec.max_treedepth)})
    seconds = time.perf_counter() - began
    del idata["warmup_posterior"]  # the tuning statistics stay, as nutpie's do
    return idata, 0.0, seconds


def _advi(X, spec, initvals, seed):
    """Mean-field ADVI, then chains x draws from the approximation as one chain; (DataTree,
    0, seconds)."""
    import pymc as pm

    with build_model(X, **spec.structure):
        began = time.perf_counter()
        approximation = pm.fit(n=spec.advi_iterations, method="advi", random_seed=seed,
                               start=initvals, progressbar=False,
                               obj_optimizer=pm.adam(learning_rate=spec.advi_learning_rate))
        idata = approximation.sample(spec.chains * spec.draws, random_seed=seed)
    return idata, 0.0, time.perf_counter() - began


# How a spec's draws are made (FitSpec.way): one signature, (X, spec, initvals, seed) ->
# (DataTree, compile seconds, sampler seconds).
SAMPLE = {"advi": _advi, "numba": _sample_hand_written, "nutpie": _sample_nutpie,
          "pymc": _sample_pymc}


def add_log_likelihood(idata, X):
    """The ``log_likelihood`` group (chain, draw, obs): log p(x_n | theta_s) of every draw, as
    PSIS-LOO needs; computed from the draws, so the same for both likelihoods."""
    import xarray as xr

    posterior = idata["posterior"]
    chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    parameters = [posterior[name].to_numpy().reshape((chains * n_draws,)
                                                     + posterior[name].shape[2:])
                  for name in ("weights", "means", "covariances")]
    pointwise = metrics.pointwise_log_likelihood(X, *parameters)
    idata["log_likelihood"] = xr.DataTree(xr.Dataset(
        {"x": (("chain", "draw", OBSERVATION_DIM), pointwise.reshape(chains, n_draws, -1))},
        coords={"chain": posterior["chain"].to_numpy(), "draw": posterior["draw"].to_numpy()}))


def show_progress():
    """A sampler shows its progress bar only to a person watching: stderr is a terminal and
    this is the main process (a joblib or submitit worker of a sweep would interleave bars;
    the sweep prints one line per finished run instead)."""
    import multiprocessing
    import sys

    return sys.stderr.isatty() and multiprocessing.parent_process() is None


def add_relabelled_posterior(idata, draws):
    """The ``relabelled_posterior`` group (chain, draw, ...): the weights and means after
    relabelling, stored with the draws so reports show the relabelled trace without redoing it.
    draws: summarise_posterior's relabelled draws, shape (chain x draw, ...)."""
    import xarray as xr

    posterior = idata["posterior"]
    chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    idata["relabelled_posterior"] = xr.DataTree(xr.Dataset(
        {name: (posterior[name].dims, draws[name].reshape((chains, n_draws)
                                                          + draws[name].shape[1:]))
         for name in ("weights", "means")},
        coords={dim: posterior[dim].to_numpy() for dim in ("chain", "draw")}))


def sampler_statistics(idata):
    """Divergences, share of draws at the tree-depth cap, and leapfrog steps (gradients) in
    tuning and in the draws, from either sampler's statistics."""
    stats = idata["sample_stats"]
    capped = "reached_max_treedepth" if "reached_max_treedepth" in stats else "maxdepth_reached"
    out = {"divergences": int(stats["diverging"].sum()),
           "max_treedepth_share": float(stats[capped].mean()),
           "leapfrog_steps_draws": int(stats["n_steps"].sum())}
    if "warmup_sample_stats" in idata.children:
        out["leapfrog_steps_tuning"] = int(idata["warmup_sample_stats"]["n_steps"].sum())
    return out


def _start(X, n_components, covariance_type, seed, reg_covar, start):
    """Initial values of weights and means (components sorted along the first feature)."""
    from gmmlab.model.em import EMGaussianMixture

    if start == "quantiles":
        return {"mu_first": np.quantile(X[:, 0], (np.arange(n_components) + 0.5) / n_components)}
    fit = EMGaussianMixture(n_components, covariance_type=covariance_type, n_init=5,
                            reg_covar=max(reg_covar, 1e-6), random_state=seed).fit(X)
    order = np.argsort(fit.means_[:, 0])
    initvals = {"weights": fit.weights_[order], "mu_first": fit.means_[order, 0]}
    if X.shape[1] > 1:
        initvals["mu_rest"] = fit.means_[order, 1:]
    return initvals


def _offset_start(initvals, prior, X):
    """The start of the normal-inverse-Wishart model's mean offsets o_k = sqrt(k0) L^-1 (mu_k -
    m0) from :func:`_start`'s means, L the Cholesky factor of the inverse-Wishart's mode
    S0 / (nu0 + D + 1); components sorted by the offsets' first coordinate (ordered)."""
    K, D = len(initvals["mu_first"]), X.shape[1]
    means = np.column_stack([initvals["mu_first"],
                             initvals.get("mu_rest", np.tile(prior.mean[1:], (K, 1)))])
    factor = np.linalg.cholesky(prior.scale / (prior.dof + D + 1))
    offsets = np.sqrt(prior.kappa) * np.linalg.solve(factor, (means - prior.mean).T).T
    order = np.argsort(offsets[:, 0])
    start = {"mean_offset_first": offsets[order, 0]}
    if D > 1:
        start["mean_offset_rest"] = offsets[order, 1:]
    if "weights" in initvals:
        start["weights"] = initvals["weights"][order]
    return start


def nonempty_components(X, draws, seed, block=500):
    """The posterior of K+, the number of components with at least one point: for every draw s,
    allocations z_n ~ Categorical(responsibilities of x_n under theta_s), K+_s the number of
    distinct labels (Malsiner-Walli, Fruhwirth-Schnatter & Grun 2016). With a sparse Dirichlet
    (``alpha`` small, e.g. 0.01, over a generous K) superfluous components empty, and the mode of
    K+ estimates the number of clusters.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    draws : dict
        weights (S, K), means (S, K, D), covariances (S, K, D, D). A weight may be exactly 0
        (an emptied component's, underflowed): that component is empty in that draw.
    seed : int

    Returns
    -------
    dict
        nonempty_components_probabilities: list of K shares (K+ = 1..K);
        nonempty_components_mode: the K+ of highest share.
    """
    from gmmlab.model.gibbs import allocations

    rng = np.random.default_rng(seed)
    S, K = draws["weights"].shape
    occupied = np.empty(S, dtype=int)
    for start in range(0, S, block):
        part = slice(start, start + block)
        z = allocations(X, draws["weights"][part], draws["means"][part],
                        draws["covariances"][part], rng)  # (s, N)
        occupied[part] = (np.eye(K, dtype=bool)[z].any(axis=1)).sum(axis=1)
    shares = np.bincount(occupied, minlength=K + 1)[1:] / S
    return {"nonempty_components_probabilities": shares.tolist(),
            "nonempty_components_mode": int(np.argmax(shares)) + 1}


def summarise_posterior(idata, X, relabel="pivot"):
    """Relabel the draws, then posterior means, standard deviations and diagnostics.

    Pivot: the draw of highest log-likelihood; every draw is matched to it by the Hungarian
    algorithm on squared distances between means. Stephens: his KL algorithm on the draws'
    responsibilities. R-hat before and after relabelling shows the label switching.
    """
    posterior = idata["posterior"]
    chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    raw = {name: posterior[name].to_numpy() for name in ("weights", "means", "covariances")}
    flat = {name: value.reshape((chains * n_draws,) + value.shape[2:])
            for name, value in raw.items()}
    loglik = idata["log_likelihood"]["x"].to_numpy().reshape(chains * n_draws, -1).sum(axis=1)
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
    """Smallest bulk or tail ESS (tail: of the 5 % and 95 % quantiles) over the quantities."""
    import arviz as az

    options = {"prob": (0.05, 0.95)} if method == "tail" else {}
    flat = chains_draws.reshape(chains_draws.shape[0], chains_draws.shape[1], -1)
    return float(min(az.ess(flat[:, :, i], method=method, **options)
                     for i in range(flat.shape[2])))
