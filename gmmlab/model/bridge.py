"""The evidence of a Gaussian mixture from Gibbs draws (:mod:`gmmlab.model.gibbs`): a
proposal that accounts for the K! label permutations, and bridge or importance sampling.

The proposal (Fruhwirth-Schnatter 2004) is made of the full conditionals of S kept draws,
each under every permutation rho of the labels,

    q(theta) = 1/(S K!) sum_s sum_rho q_s(rho(theta)),

a density with the posterior's symmetry and its shape (a Rao-Blackwellised mixture).

'bridge': Meng & Wong's (1996) optimal bridge sampling, iterated as Gronau et al. (2017) and
    R's bridgesampling: with l1 = log p(X, theta) - log q(theta) at N1 posterior draws, l2 at
    N2 proposal draws, s_i = N_i / (N1 + N2) (N1 the effective size),

        r <- mean_l2[ e^l2 / (s1 e^l2 + s2 r) ] / mean_l1[ 1 / (s1 e^l1 + s2 r) ],

    and its relative error (Fruhwirth-Schnatter 2004, eq. 14; bridgesampling's
    error_measures): RE^2 = Var(f1) / (N2 E(f1)^2) + tau Var(f2) / (N1 E(f2)^2) with
    f1 = p/(s1 p + s2 q) at the proposal draws, f2 = q/(s1 p + s2 q) at the posterior
    draws (p normalised by the estimate), tau f2's integrated autocorrelation time. The
    standard error of log p(X) is RE.
'importance': importance sampling from q (Lee & Robert's 2016 dual importance sampling),
    log mean e^l2, standard error sd(e^l2) / (sqrt(N2) mean(e^l2)).

:func:`estimate` runs either on the draws of :func:`gmmlab.model.gibbs.sample`; the
``gibbs`` backend and :func:`gmmlab.marginal_likelihood` both call it.
"""

import math
from itertools import permutations

import numpy as np
from scipy.special import gammaln, logsumexp

from gmmlab.model import conjugate, gibbs, metrics

METHODS = ("bridge", "importance")
MAX_PERMUTED = 6  # the proposal sums over K! permutations: 720 at K = 6
LOG_2PI = math.log(2 * math.pi)


def check_permutable(n_components):
    """K as an int; ValueError unless 1 <= K <= MAX_PERMUTED (the proposal sums over K!)."""
    K = int(n_components)
    if not 1 <= K <= MAX_PERMUTED:
        raise ValueError(f"n_components must be 1..{MAX_PERMUTED} for the evidence (its "
                         f"proposal sums over the K! label permutations), got {n_components!r}.")
    return K


def estimate(X, prior, chain, method="bridge", *, rng, proposal_components=100,
             proposal_draws=None):
    """log p(X | K) and its standard error from Gibbs draws (module docstring).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    prior : gmmlab.model.conjugate.MixturePrior
        The prior the draws were made under.
    chain : gmmlab.model.gibbs.GibbsDraws
        chains x draws posterior draws with their full conditionals.
    method : {'bridge', 'importance'}
    rng : numpy.random.Generator
    proposal_components : int
        S, the kept draws whose full conditionals make the proposal, taken from the first
        half of each chain (the bridge uses the second half's draws, as Gronau et al.).
    proposal_draws : int or None
        N2, draws from the proposal; None: as many as the posterior draws used.

    Returns
    -------
    (float, float, dict)
        log p(X), its standard error, and diagnostics (proposal components and draws,
        permutations; for the bridge its iterations and the posterior draws' effective size).
    """
    K = chain.weights.shape[1]
    chains, draws = chain.chains, chain.weights.shape[0] // chain.chains
    # per chain: first half -> proposal components, second half -> the bridge's posterior draws
    index = np.arange(chains * draws).reshape(chains, draws)
    first, second = index[:, :draws // 2].ravel(), index[:, draws // 2:].ravel()
    components = chain.conditionals.take(rng.choice(first, size=min(proposal_components,
                                                                    first.size),
                                                    replace=False))
    posterior = tuple(value[second] for value in (chain.weights, chain.means,
                                                  chain.covariances))
    n_proposal = proposal_draws or second.size
    proposal = draw_proposal(components, n_proposal, rng)
    l2 = log_joint(X, prior, *proposal) - log_proposal(components, *proposal)
    diagnostics = dict(proposal_components=len(components.dof), proposal_draws=n_proposal,
                       permutations=math.factorial(K))
    if method == "importance":
        weights = np.exp(l2 - l2.max())
        return (float(logsumexp(l2) - math.log(l2.size)),
                float(weights.std(ddof=1) / (math.sqrt(l2.size) * weights.mean())), diagnostics)
    l1 = log_joint(X, prior, *posterior) - log_proposal(components, *posterior)
    log_evidence, se, details = bridge_sampling(l1.reshape(chains, -1), l2)
    return log_evidence, se, diagnostics | details


def bridge_sampling(l1, l2, tolerance=1e-10, max_iterations=1000):
    """Meng & Wong's iterated bridge estimate of log p(X) and its standard error (module
    docstring).

    Parameters
    ----------
    l1 : ndarray of shape (n_chains, n_draws)
        log p(X, theta) - log q(theta) at posterior draws, chain by chain.
    l2 : ndarray of shape (n_proposal,)
        The same at draws from q.

    Returns
    -------
    (float, float, dict)
        log p(X), its standard error, and diagnostics (iterations, posterior draws' effective
        size).
    """
    from arviz_stats.base import array_stats

    chains, n_draws = l1.shape
    flat = l1.ravel()
    shift = np.median(flat)  # l - shift keeps exp() in range
    a, b = flat - shift, l2 - shift
    effective = float(array_stats.ess(a[None, None].reshape(1, chains, n_draws),
                                      method="mean", chain_axis=-2, draw_axis=-1).item())
    effective = min(effective, flat.size)
    N1, N2 = effective, b.size
    log_s1, log_s2 = math.log(N1 / (N1 + N2)), math.log(N2 / (N1 + N2))
    log_r = float(logsumexp(b) - math.log(N2))  # start: importance sampling
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        numerator = logsumexp(b - np.logaddexp(log_s1 + b, log_s2 + log_r)) - math.log(N2)
        denominator = logsumexp(-np.logaddexp(log_s1 + a, log_s2 + log_r)) - math.log(a.size)
        updated, log_r = log_r, float(numerator - denominator)
        if abs(updated - log_r) < tolerance:
            break
    # relative error: f1 at the proposal draws, f2 at the posterior draws
    f1 = np.exp(-np.logaddexp(log_s1, log_s2 - (b - log_r)))  # p / (s1 p + s2 q)
    f2 = np.exp(-np.logaddexp(log_s1 + (a - log_r), log_s2))  # q / (s1 p + s2 q)
    tau = flat.size / float(array_stats.ess(f2.reshape(1, chains, n_draws), method="mean",
                                            chain_axis=-2, draw_axis=-1).item())
    relative_squared = (f1.var(ddof=1) / (N2 * f1.mean() ** 2)
                        + tau * f2.var(ddof=1) / (flat.size * f2.mean() ** 2))
    return (log_r + shift, math.sqrt(relative_squared),
            {"bridge_iterations": iterations, "posterior_draws": int(flat.size),
             "posterior_effective_draws": effective})


# ------------------------------------------------------------------ densities


def log_joint(X, prior, weights, means, covariances):
    """log p(X | theta) + log p(theta) at M parameter sets: weights (M, K), means (M, K, D),
    covariances (M, K, D, D) -> (M,)."""
    M, K, D = means.shape
    log_likelihood = metrics.pointwise_log_likelihood(X, weights, means, covariances).sum(axis=1)
    kind = {"kappa": np.array([[prior.kappa]])} if prior.conjugate else {
        "precision": np.linalg.inv(prior.mean_covariance)[None, None]}
    prior_terms = gibbs.Conditionals(
        concentration=np.full((1, K), prior.alpha), dof=np.full((1, 1), prior.dof),
        scale=prior.scale[None, None], centre=prior.mean[None, None], **kind)
    pairs, constant = pairwise_log_densities(prior_terms, weights, means, covariances,
                                             shared=True)
    return log_likelihood + constant[0] + pairs[:, 0].sum(axis=-1)


def pairwise_log_densities(terms, weights, means, covariances, shared=False):
    """The log density of component j of each of M points under component k of each of S
    conditionals (gibbs.Conditionals), without the Dirichlet's normaliser:

        T[m, s, j, k] = (a_sk - 1) log pi_mj + log InvWishart(Sigma_mj | nu_sk, Psi_sk)
                        + log N(mu_mj | c_sk, Sigma_mj / kappa_sk or P_sk^-1),

    and the Dirichlet's log normaliser per s, log Gamma(sum_k a_sk) - sum_k log Gamma(a_sk).
    shared: the terms have one component (broadcast over k), and only j = k is wanted:
    T (M, S, K) then.

    Returns
    -------
    (ndarray of shape (M, S, K, K) or (M, S, K), ndarray of shape (S,))
    """
    D = means.shape[-1]
    precisions = np.linalg.inv(covariances)  # (M, J, D, D)
    log_det = np.linalg.slogdet(covariances)[1]  # (M, J)
    spec = "mjd,mjde,mje->mj"
    if shared:
        def pair(a, b):  # a over (m, j), b over (s, k): only j = k
            return a[:, None] + b[None]
        trace = np.einsum("skde,mked->msk", np.broadcast_to(
            terms.scale, (terms.scale.shape[0], means.shape[1], D, D)), precisions)
    else:
        def pair(a, b):
            return a[:, None, :, None] + b[None, :, None, :]
        trace = np.einsum("skde,mjed->msjk", terms.scale, precisions)
    dof = terms.dof
    wishart = (0.5 * dof * np.linalg.slogdet(terms.scale)[1] - 0.5 * dof * D * math.log(2)
               - conjugate.multigammaln_array(dof / 2, D))  # (S, K)
    value = pair(np.zeros_like(log_det), wishart) - 0.5 * trace
    value -= pair(log_det, np.zeros_like(dof)) * (0.5 * (_pair_b(dof, shared) + D + 1))
    if terms.kappa is not None:  # N(c, Sigma / kappa)
        kappa = _pair_b(terms.kappa, shared)
        quadratic = (pair(np.einsum(spec, means, precisions, means), np.zeros_like(dof))
                     - 2 * _cross(terms.centre, precisions, means, shared)
                     + _centre_quadratic(terms.centre, precisions, shared))
        value += (0.5 * D * (np.log(kappa) - LOG_2PI) - 0.5 * pair(log_det, np.zeros_like(dof))
                  - 0.5 * kappa * quadratic)
    else:  # N(c, P^-1)
        P = terms.precision
        Pc = np.einsum("skde,ske->skd", P, terms.centre)
        mu_P_mu = (np.einsum("mkd,skde,mke->msk", means, np.broadcast_to(
            P, (P.shape[0], means.shape[1], D, D)), means) if shared
            else np.einsum("mjd,skde,mje->msjk", means, P, means))
        mu_Pc = (np.einsum("mkd,skd->msk", means, np.broadcast_to(Pc, (Pc.shape[0],)
                                                                   + means.shape[1:]))
                 if shared else np.einsum("mjd,skd->msjk", means, Pc))
        c_P_c = np.einsum("skd,skd->sk", terms.centre, Pc)
        value += pair(np.zeros_like(log_det), 0.5 * np.linalg.slogdet(P)[1] - 0.5 * D * LOG_2PI
                      - 0.5 * c_P_c) - 0.5 * mu_P_mu + mu_Pc
    log_weights = np.log(weights)
    value += pair(log_weights, np.zeros_like(dof)) * (_pair_b(terms.concentration, shared) - 1)
    concentration = np.broadcast_to(terms.concentration, (dof.shape[0], means.shape[1]))
    constant = gammaln(concentration.sum(axis=1)) - gammaln(concentration).sum(axis=1)
    return value, constant


def _pair_b(values, shared):
    """values (S, K) broadcast against T (M, S, K) or (M, S, J, K)."""
    return values[None] if shared else values[None, :, None, :]


def _cross(centre, precisions, means, shared):
    """c_sk^T Sigma_mj^-1 mu_mj."""
    if shared:
        return np.einsum("skd,mkde,mke->msk", np.broadcast_to(
            centre, (centre.shape[0],) + means.shape[1:]), precisions, means)
    return np.einsum("skd,mjde,mje->msjk", centre, precisions, means)


def _centre_quadratic(centre, precisions, shared):
    """c_sk^T Sigma_mj^-1 c_sk."""
    if shared:
        return np.einsum("skd,mkde,ske->msk", np.broadcast_to(
            centre, (centre.shape[0], precisions.shape[1], centre.shape[-1])), precisions,
            np.broadcast_to(centre, (centre.shape[0], precisions.shape[1], centre.shape[-1])))
    return np.einsum("skd,mjde,ske->msjk", centre, precisions, centre)


def log_proposal(components, weights, means, covariances, block=64):
    """log q(theta) = log [1/(S K!) sum_s sum_rho q_s(rho(theta))] at M points (module
    docstring); (M,). Evaluated in blocks of points to bound memory (M x S x K! floats)."""
    K = means.shape[1]
    orders = np.array(list(permutations(range(K))))  # (P, K): component k <- point's rho[k]
    S = components.dof.shape[0]
    out = np.empty(means.shape[0])
    for start in range(0, means.shape[0], block):
        part = slice(start, start + block)
        pairs, constant = pairwise_log_densities(components, weights[part], means[part],
                                                 covariances[part])  # (m, S, J, K)
        summed = pairs[:, :, orders, np.arange(K)].sum(axis=-1)  # (m, S, P)
        out[part] = logsumexp(summed + constant[None, :, None], axis=(1, 2))
    return out - math.log(S * len(orders))


def draw_proposal(components, n_draws, rng):
    """n_draws from q: a conditional s at random, theta from it, its labels permuted at
    random; (weights (n, K), means (n, K, D), covariances (n, K, D, D))."""
    S, K = components.dof.shape
    chosen = components.take(rng.integers(S, size=n_draws))
    weights = rng.gamma(chosen.concentration)
    weights /= weights.sum(axis=1, keepdims=True)
    covariances = gibbs.inverse_wishart(chosen.dof, chosen.scale, rng)
    noise = rng.standard_normal(chosen.centre.shape)[..., None]
    if chosen.kappa is not None:
        factor = np.linalg.cholesky(covariances / chosen.kappa[..., None, None])
        means = chosen.centre + (factor @ noise)[..., 0]
    else:
        upper = np.swapaxes(np.linalg.cholesky(chosen.precision), -1, -2)
        means = chosen.centre + np.linalg.solve(upper, noise)[..., 0]
    order = np.argsort(rng.random((n_draws, K)), axis=1)
    return tuple(np.take_along_axis(v, order.reshape(order.shape + (1,) * (v.ndim - 2)), 1)
                 for v in (weights, means, covariances))
