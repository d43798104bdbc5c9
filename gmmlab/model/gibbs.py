"""The Gibbs sampler of a Gaussian mixture under a (semi-)conjugate prior
(:mod:`gmmlab.model.conjugate`), with random label permutations (Fruhwirth-Schnatter 2001).

One sweep, given the allocations z (and, semi-conjugate, the previous means)::

    n_k, sums, squares of the points allocated to k
    pi ~ Dirichlet(alpha + n)
    conjugate:       Sigma_k ~ InvWishart(nu_n, S_n),  mu_k ~ N(m_n, Sigma_k / kappa_n)
    semi-conjugate:  Sigma_k ~ InvWishart(nu_0 + n_k, S_0 + sum_(z_i = k) (x_i - mu_k)(.)^T)
                     mu_k ~ N(B_k (B_0^-1 m_0 + Sigma_k^-1 sums_k), B_k),
                     B_k = (B_0^-1 + n_k Sigma_k^-1)^-1
    z_i ~ Categorical(pi_k N(x_i | mu_k, Sigma_k) / sum_l ...)
    then the labels of (pi, mu, Sigma, z) are permuted at random.

The prior and likelihood are symmetric in the labels, so the permutation leaves the posterior
invariant, and the draws visit all K! modes: what an evidence estimator that symmetrises over
labels needs. Chains run side by side (vectorised over the chain axis).

Each kept draw records the parameters (pi, mu, Sigma) and the full-conditional densities they
were drawn from (:class:`Conditionals`): a Rao-Blackwellised proposal for bridge sampling.
"""

from dataclasses import dataclass

import numpy as np

from gmmlab.model.conjugate import posterior_parameters, sufficient_statistics


@dataclass
class Conditionals:
    """The full conditionals of kept draws, S of them, K components, D features:
    pi ~ Dirichlet(concentration (S, K)); Sigma_k ~ InvWishart(dof (S, K), scale (S, K, D, D));
    mu_k ~ N(centre (S, K, D), Sigma_k / kappa (S, K)) (conjugate; ``precision`` None) or
    N(centre, precision^-1) with precision (S, K, D, D) (semi-conjugate; ``kappa`` None)."""

    concentration: np.ndarray
    dof: np.ndarray
    scale: np.ndarray
    centre: np.ndarray
    kappa: np.ndarray | None = None
    precision: np.ndarray | None = None

    def take(self, index):
        """The conditionals of the draws at ``index`` (flat over chains and draws)."""
        return Conditionals(**{name: None if value is None else value[index]
                               for name, value in vars(self).items()})


@dataclass
class GibbsDraws:
    """Kept draws, flat over chains: weights (S, K), means (S, K, D), covariances (S, K, D,
    D), their conditionals, the number of chains (draws chain by chain), sweeps and seconds."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    conditionals: Conditionals
    chains: int
    sweeps: int


def sample(X, n_components, prior, *, chains=4, burn=500, draws=1000, rng):
    """Gibbs draws of the mixture's posterior (module docstring).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_components : int
    prior : gmmlab.model.conjugate.MixturePrior
    chains, burn, draws : int
        Chains run side by side; each discards ``burn`` sweeps then keeps ``draws``.
    rng : numpy.random.Generator

    Returns
    -------
    GibbsDraws
        chains x draws draws, chain by chain.

    The chains start from allocations by quantiles of the first feature (K equal groups).
    """
    N, D = X.shape
    K = n_components
    start = np.empty(N, dtype=int)
    start[np.argsort(X[:, 0], kind="stable")] = np.arange(N) * K // N
    z = np.tile(start, (chains, 1))
    counts, sums, _ = sufficient_statistics(X, np.eye(K)[z])
    means = (sums + prior.mean) / (counts[..., None] + 1)  # semi-conjugate's first sweep
    kept = {name: [] for name in ("weights", "means", "covariances", "concentration",
                                  "dof", "scale", "centre", "kappa", "precision")}
    for sweep in range(burn + draws):
        counts, sums, squares = sufficient_statistics(X, np.eye(K)[z])
        concentration = prior.alpha + counts
        weights = rng.gamma(concentration)
        weights /= weights.sum(axis=-1, keepdims=True)
        if prior.conjugate:
            centre, kappa, dof, scale = posterior_parameters(prior, counts, sums, squares)
            covariances = inverse_wishart(dof, scale, rng)
            means = centre + np.einsum("...de,...e->...d", np.linalg.cholesky(
                covariances / kappa[..., None, None]), rng.standard_normal(centre.shape))
            precision = None
        else:
            scatter = (squares - means[..., :, None] * sums[..., None, :]
                       - sums[..., :, None] * means[..., None, :]
                       + counts[..., None, None] * means[..., :, None] * means[..., None, :])
            dof, scale = prior.dof + counts, prior.scale + scatter
            covariances = inverse_wishart(dof, scale, rng)
            prior_precision = np.linalg.inv(prior.mean_covariance)
            covariance_inverse = np.linalg.inv(covariances)
            precision = prior_precision + counts[..., None, None] * covariance_inverse
            centre = np.linalg.solve(precision, ((prior_precision @ prior.mean) + np.einsum(
                "...de,...e->...d", covariance_inverse, sums))[..., None])[..., 0]
            means = centre + np.linalg.solve(np.swapaxes(np.linalg.cholesky(precision), -1, -2),
                                             rng.standard_normal(centre.shape)[..., None])[..., 0]
            kappa = None
        permutation = np.argsort(rng.random((chains, K)), axis=1)  # new label j = old perm[j]
        if sweep >= burn:
            state = dict(weights=weights, means=means, covariances=covariances,
                         concentration=concentration, dof=dof, scale=scale, centre=centre,
                         kappa=kappa, precision=precision)
            for name, value in state.items():
                if value is not None:
                    kept[name].append(_permute(value, permutation))
        z = allocations(X, weights, means, covariances, rng)
        weights, means, covariances = (_permute(v, permutation)
                                       for v in (weights, means, covariances))
        z = np.argsort(permutation, axis=1)[np.arange(chains)[:, None], z]
    flat = {name: np.concatenate(np.swapaxes(np.stack(value), 0, 1)) if value else None
            for name, value in kept.items()}  # (chains x draws, ...), chain by chain
    return GibbsDraws(flat.pop("weights"), flat.pop("means"), flat.pop("covariances"),
                      Conditionals(**flat), chains=chains, sweeps=burn + draws)


def _permute(value, permutation):
    """value (chains, K, ...) with its components reordered: new j = old permutation[j]."""
    return np.take_along_axis(value, permutation.reshape(permutation.shape + (1,) * (
        value.ndim - 2)), axis=1)


def inverse_wishart(dof, scale, rng):
    """Draws Sigma ~ InvWishart(dof (...,), scale (..., D, D)) by Bartlett's decomposition of
    Sigma^-1 ~ Wishart(dof, scale^-1) = (L A)(L A)^T, L L^T = scale^-1, A lower triangular with
    A_ii^2 ~ chi^2(dof - i), A_ij ~ N(0, 1) below the diagonal; Sigma = (L A)^-T (L A)^-1."""
    D = scale.shape[-1]
    bartlett = np.tril(rng.standard_normal(scale.shape), -1)
    diagonal = np.sqrt(rng.chisquare(dof[..., None] - np.arange(D)))
    bartlett[..., np.arange(D), np.arange(D)] = diagonal
    factor_inverse = np.linalg.inv(np.linalg.cholesky(np.linalg.inv(scale)) @ bartlett)
    return np.swapaxes(factor_inverse, -1, -2) @ factor_inverse


def allocations(X, weights, means, covariances, rng):
    """z_i ~ Categorical(responsibilities) for each chain: weights (C, K), means (C, K, D),
    covariances (C, K, D, D) -> (C, N). A weight may be exactly 0 (an emptied component of a
    sparse Dirichlet prior underflows): that component gets no point."""
    D = X.shape[1]
    chols = np.linalg.cholesky(covariances)
    centred = X[None, None] - means[:, :, None, :]  # (C, K, N, D)
    whitened = np.linalg.solve(chols[:, :, None], centred[..., None])[..., 0]
    with np.errstate(divide="ignore"):  # log 0 = -inf: probability 0
        log_weights = np.log(weights)
    log_p = (log_weights[:, :, None] - np.log(np.diagonal(chols, axis1=-2, axis2=-1)).sum(
        -1)[:, :, None] - 0.5 * (whitened**2).sum(-1) - 0.5 * D * np.log(2 * np.pi))
    log_p -= log_p.max(axis=1, keepdims=True)
    probabilities = np.exp(log_p)
    cumulative = np.cumsum(probabilities, axis=1) / probabilities.sum(axis=1, keepdims=True)
    u = rng.random((weights.shape[0], 1, X.shape[0]))
    return np.minimum((cumulative < u).sum(axis=1), weights.shape[1] - 1)
