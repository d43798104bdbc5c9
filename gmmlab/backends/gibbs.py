"""Backend 'gibbs': the posterior of a full-covariance Gaussian mixture under the conjugate
(normal-inverse-Wishart) prior by Gibbs sampling, with its evidence p(X | K) by bridge sampling
from the same draws.

    pi ~ Dirichlet(alpha, ..., alpha),  Sigma_k ~ InvWishart(nu0, S0),
    mu_k | Sigma_k ~ N(m0, Sigma_k / kappa0)

(:mod:`gmmlab.model.conjugate`; the default prior is scaled to the data as mclust's
defaultPrior at K = 1, the same for every K so that the evidence of different K compares).
The sampler (:mod:`gmmlab.model.gibbs`) permutes the labels at random every sweep, so the
draws visit all K! modes; the posterior summary relabels them (pivot, as the ``pymc``
backend) and PSIS-LOO is computed from them as for any posterior. The evidence
(:mod:`gmmlab.model.bridge`) reuses the draws: only the proposal and the bridge iteration are
added, and the diagnostics record both times. The same prior is the ``pymc`` backend's
``covariance_prior=normal_inverse_wishart``, so the two samplers' posteriors can be compared.

A small ``alpha`` over a generous K (``backend=gibbs_sparse``: 0.01) makes the sparse finite
mixture of Malsiner-Walli, Fruhwirth-Schnatter & Grun (2016), whose number of non-empty
components K+ estimates the number of clusters; every fit records the posterior of K+.
"""

import time

import numpy as np

from gmmlab.backends import FitResult
from gmmlab.backends.bayes import (
    RHAT_MAX,
    add_log_likelihood,
    add_relabelled_posterior,
    nonempty_components,
    summarise_posterior,
)
from gmmlab.model import bridge, conjugate, gibbs
from gmmlab.model.em import check_choice


def fit_gibbs(X, n_components, covariance_type, seed, prior=None, alpha=None, chains=4,
              burn=500, draws=1000, evidence=True, evidence_method="bridge",
              relabel="pivot"):
    """Gibbs draws of the mixture's posterior, summarised by their relabelled mean, with the
    evidence p(X | K) and the posterior of K+.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_components : int
    covariance_type : {'full'}
    seed : int
    prior : dict or None
        The normal-inverse-Wishart prior as a dict (``{"family": "normal-inverse-wishart",
        "mean": m0, "kappa": k0, "dof": nu0, "scale": S0, "alpha": a}``); None:
        :func:`gmmlab.model.conjugate.default_prior`.
    alpha : float or None
        The weights' Dirichlet concentration, in place of the prior's (e.g. 0.01 for a sparse
        finite mixture); None: the prior's (1 by default).
    chains, burn, draws : int
        Chains run side by side; each discards ``burn`` sweeps and keeps ``draws``.
    evidence : bool
        Estimate log p(X | K) from the draws (K <= 6: the proposal sums over K! permutations).
    evidence_method : {'bridge', 'importance'}
    relabel : {'pivot', 'stephens'}

    Returns
    -------
    FitResult
        Posterior means (weights (K,), means (K, D), covariances (K, D, D)), the relabelled
        draws, an ArviZ DataTree (posterior, log_likelihood, relabelled_posterior) and
        diagnostics: R-hat and ESS after relabelling, ``log_evidence`` and
        ``log_evidence_se`` (when ``evidence``), the K+ posterior
        (``nonempty_components_probabilities``, ``nonempty_components_mode``),
        ``sampling_seconds`` and ``evidence_seconds``.

    Raises
    ------
    ValueError
        A covariance type other than 'full', a prior that is not the conjugate one (the key
        named), K > 6 with ``evidence``.
    """
    check_choice("covariance_type", covariance_type, ("full",))
    check_choice("evidence_method", evidence_method, bridge.METHODS)
    check_choice("relabel", relabel, ("pivot", "stephens"))
    X = np.asarray(X, dtype=float)
    K = bridge.check_permutable(n_components) if evidence else int(n_components)
    spec = conjugate.make_prior(prior, X).as_dict()
    if alpha is not None:
        spec["alpha"] = alpha
    prior = conjugate.make_prior(spec, X)
    if not prior.conjugate:
        raise ValueError(f"prior['family'] must be {conjugate.CONJUGATE!r} in the gibbs "
                         f"backend, got {prior.family!r}.")
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    chain = gibbs.sample(X, K, prior, chains=chains, burn=burn, draws=draws, rng=rng)
    idata = posterior_tree(chain)
    add_log_likelihood(idata, X)
    summary = summarise_posterior(idata, X, relabel)
    add_relabelled_posterior(idata, summary["draws"])
    sampled = time.perf_counter()
    diagnostics = (summary.pop("diagnostics") | nonempty_components(X, summary["draws"], seed)
                   | {"sampling_seconds": sampled - began, "alpha": prior.alpha,
                      "chains": chains, "burn": burn, "draws_per_chain": draws})
    if evidence:
        log_evidence, se, details = bridge.estimate(X, prior, chain, evidence_method, rng=rng)
        diagnostics |= {"log_evidence": log_evidence, "log_evidence_se": se,
                        "evidence_method": evidence_method,
                        "evidence_seconds": time.perf_counter() - sampled} | details
    return FitResult("gibbs", K, covariance_type, idata=idata, diagnostics=diagnostics,
                     converged=diagnostics["max_rhat"] <= RHAT_MAX, **summary)


def posterior_tree(chain):
    """The draws of a :class:`gmmlab.model.gibbs.GibbsDraws` as an ArviZ DataTree: group
    ``posterior`` with ``weights`` (chain, draw, component), ``means`` (..., feature) and
    ``covariances`` (..., feature, ``feature_``), named as the ``pymc`` backend's."""
    import arviz as az

    S, K, D = chain.means.shape
    shape = (chain.chains, S // chain.chains)
    return az.from_dict(
        {"posterior": {name: value.reshape(shape + value.shape[1:]) for name, value in (
            ("weights", chain.weights), ("means", chain.means),
            ("covariances", chain.covariances))}},
        dims={"weights": ["component"], "means": ["component", "feature"],
              "covariances": ["component", "feature", "feature_"]},
        coords={"component": np.arange(K), "feature": np.arange(D), "feature_": np.arange(D)})
