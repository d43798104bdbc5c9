"""The posterior of the ``pymc`` backend's model (:func:`gmmlab.backends.bayes.build_model`,
covariance_prior 'lkj') written by hand: log density and gradient in an unconstrained space,
compiled by Numba and cached on disk, handed to nutpie as C callbacks (no Python in the loop).

Why: nutpie's Numba path on the PyMC graph types and lowers, in every fresh process, a wrapper
that Numba cannot cache (it holds pointers); these functions take their data through nutpie's
``user_data`` pointer, so a fresh process loads the compiled code from Numba's cache.

Unconstrained coordinates theta, in this order (K components, D features)::

    z (K - 1)        pi = softmax([z, 0]) (additive log-ratios)     log|J| = sum_k log pi_k
    y (K)            means along the first feature, ordered: mu_0 = y_0,
                     mu_k = mu_(k-1) + exp(y_k)                     log|J| = sum_(k>=1) y_k
    mu_rest (K, D-1) the other features' means (identity)
    per covariance factor (full: K factors, tied: one):
      t (D)          log standard deviations sd_i = exp(t_i)        log|J| = sum_i t_i
      u (D(D-1)/2)   canonical partial correlations tanh(u_ij), row by row (tril order), giving
                     the Cholesky factor W of the correlation matrix (Lewandowski et al. 2009):
                     W_ij = tanh(u_ij) sqrt(1 - sum_(l<j) W_il^2), W_ii = sqrt(1 - sum_(l<i) W_il^2)
                     log|J| = sum_(i>j) [log(1 - tanh(u_ij)^2) + 1/2 log(1 - sum_(l<j) W_il^2)]
      L = diag(sd) W, Sigma = L L^T
    diag: t (K, D), sigma_kd = exp(t_kd);  spherical: t (K), sigma_k = exp(t_k)

The density is the model's, PyMC's value variables' density (``model.compile_logp(jacobian=
False)``: the Dirichlet, the Normal means, LKJCholeskyCov over the packed factor L or the
HalfNormal sigmas, the marginal likelihood sum_n logsumexp_k [log pi_k + log N(x_n | mu_k,
L_k L_k^T)]) plus log|d(constrained)/d theta|, with constrained = (pi_1..pi_(K-1), mu,
packed L or sigma). The gradient is written out by the chain rule (reverse order).

The data travel in one float64 array (:func:`posterior_data`): a header (K, D, covariance
code, N, alpha, eta, log normaliser of the priors, its own length), then the prior centre and
scales of the means, the HalfNormal scales, and X row by row.
"""

import contextlib
import dataclasses
import math

import numba
import numpy as np
from numba import types
from nutpie import _lib
from nutpie.sample import CompiledModel

FULL, TIED, DIAG, SPHERICAL = 0, 1, 2, 3
CODES = {"full": FULL, "tied": TIED, "diag": DIAG, "spherical": SPHERICAL}
HEADER = 8  # K, D, covariance code, N, alpha, eta, log normaliser, length of the array
LOG_2PI = math.log(2 * math.pi)


def posterior_data(X, n_components, covariance_type, *, alpha=1.0, mean_scale=2.0,
                   sigma_scale=1.0, eta=2.0):
    """The float64 array the compiled functions read: header, centre (D), prior sd of the
    means mean_scale s (D), HalfNormal scales sigma_scale s (D; spherical: their mean in every
    slot), X (N D). ``covariance_type`` is the effective one (1-D: spherical unless tied)."""
    N, D = X.shape
    K = n_components
    code = CODES[covariance_type]
    centre, spread = X.mean(axis=0), X.std(axis=0)
    sd_scales = sigma_scale * spread
    if code == SPHERICAL:
        sd_scales = np.full(D, sd_scales.mean())
    mean_sd = mean_scale * spread
    body = np.concatenate([centre, mean_sd, sd_scales, np.ravel(X)])
    normaliser = _log_normaliser(K, D, code, alpha, eta, mean_sd, sd_scales)
    header = [K, D, code, N, alpha, eta, normaliser, HEADER + body.size]
    return np.ascontiguousarray(np.concatenate([np.asarray(header, float), body]))


def _log_normaliser(K, D, code, alpha, eta, mean_sd, sd_scales):
    """The constant part of the log prior: Dirichlet, K D Normals, the HalfNormals and the LKJ
    normalising constant (as PyMC writes it) of each correlation factor."""
    from scipy.special import gammaln

    dirichlet = gammaln(K * alpha) - K * gammaln(alpha)
    normals = K * np.sum(-0.5 * LOG_2PI - np.log(mean_sd))
    half_normal = 0.5 * math.log(2 / math.pi) - np.log(sd_scales)  # per standard deviation
    if code == SPHERICAL:
        return dirichlet + normals + K * half_normal[0]
    if code == DIAG:
        return dirichlet + normals + K * half_normal.sum()
    k = np.arange(1, D)
    lkj = (D - 1) * gammaln(eta + 0.5 * (D - 1)) - np.sum(0.5 * k * math.log(math.pi)
                                                         + gammaln(eta + 0.5 * (D - 1 - k)))
    factors = K if code == FULL else 1
    return dirichlet + normals + factors * (half_normal.sum() + lkj)


@numba.njit(cache=True, error_model="numpy")
def n_unconstrained(K, D, code):
    """Length of theta."""
    if code == FULL:
        per_factor = K * (D + D * (D - 1) // 2)
    elif code == TIED:
        per_factor = D + D * (D - 1) // 2
    elif code == DIAG:
        per_factor = K * D
    else:
        per_factor = K
    return (K - 1) + K * D + per_factor


@numba.njit(cache=True, error_model="numpy")
def n_expanded(K, D):
    """Length of the expanded draw: weights (K), means (K D), covariances (K D D)."""
    return K + K * D + K * D * D


@numba.njit(cache=True, error_model="numpy")
def _unpack(data):
    """(K, D, code, N, alpha, eta, normaliser, centre, mean_sd, sd_scales, X) from the array."""
    K, D, code, N = int(data[0]), int(data[1]), int(data[2]), int(data[3])
    body = data[HEADER:]
    X = body[3 * D:3 * D + N * D].reshape((N, D))
    return (K, D, code, N, data[4], data[5], data[6], body[:D], body[D:2 * D],
            body[2 * D:3 * D], X)


@numba.njit(cache=True, error_model="numpy")
def _correlation_factor(u, D):
    """W (D, D), the Cholesky factor of a correlation matrix, from canonical partial
    correlations tanh(u); and log|dW/du| (off-diagonal entries of W)."""
    W = np.zeros((D, D))
    W[0, 0] = 1.0
    log_jacobian = 0.0
    position = 0
    for i in range(1, D):
        squares = 0.0
        for j in range(i):
            z = math.tanh(u[position])
            position += 1
            remaining = 1.0 - squares
            W[i, j] = z * math.sqrt(remaining)
            squares += W[i, j] ** 2
            log_jacobian += math.log1p(-z * z) + 0.5 * math.log(remaining)
        W[i, i] = math.sqrt(1.0 - squares)
    return W, log_jacobian


@numba.njit(cache=True, error_model="numpy")
def _correlation_factor_gradient(u, W, gradient_W, gradient_u):
    """Reverse pass of :func:`_correlation_factor`: d/du of F(W) + log|dW/du| given
    gradient_W = dF/dW (lower triangle, diagonal included), into gradient_u."""
    D = W.shape[0]
    position = 0
    for i in range(1, D):
        start = position
        position += i
        gradient_squares = -gradient_W[i, i] / (2.0 * W[i, i])  # W_ii = sqrt(1 - squares_i)
        squares = 1.0 - W[i, i] ** 2
        for j in range(i - 1, -1, -1):  # squares_(j+1) = squares_j + W_ij^2
            squares -= W[i, j] ** 2
            gradient_w = gradient_W[i, j] + 2.0 * W[i, j] * gradient_squares
            z = math.tanh(u[start + j])
            root = math.sqrt(1.0 - squares)  # W_ij = z root
            gradient_root = gradient_w * z + 1.0 / root  # + d/d root of log root (Jacobian)
            gradient_squares += -gradient_root / (2.0 * root)
            gradient_u[start + j] = gradient_w * root * (1.0 - z * z) - 2.0 * z


@numba.njit(cache=True, error_model="numpy")
def _parameters(theta, K, D, code):
    """theta -> log weights (K), means (K, D), standard deviations of the factors (F, D) and
    correlation factors (F, D, D) (F = K, 1 for tied), and log|J| of all but the factors'
    off-diagonal part (returned separately: the correlation Jacobian)."""
    log_weights = np.zeros(K)
    log_weights[:K - 1] = theta[:K - 1]
    shift = np.max(log_weights)
    log_weights -= shift + math.log(np.sum(np.exp(log_weights - shift)))
    log_jacobian = np.sum(log_weights)
    position = K - 1
    means = np.empty((K, D))
    means[0, 0] = theta[position]
    for k in range(1, K):
        means[k, 0] = means[k - 1, 0] + math.exp(theta[position + k])
        log_jacobian += theta[position + k]
    position += K
    for k in range(K):
        for d in range(1, D):
            means[k, d] = theta[position]
            position += 1
    F = 1 if code == TIED else K
    sds = np.empty((F, D))
    correlations = np.zeros((F, D, D))
    correlation_jacobian = 0.0
    n_corr = D * (D - 1) // 2
    for f in range(F):
        if code == FULL or code == TIED:
            for d in range(D):
                sds[f, d] = math.exp(theta[position + d])
                log_jacobian += theta[position + d]
            position += D
            W, jacobian = _correlation_factor(theta[position:position + n_corr], D)
            correlations[f] = W
            correlation_jacobian += jacobian
            position += n_corr
        elif code == DIAG:
            for d in range(D):
                sds[f, d] = math.exp(theta[position + d])
                log_jacobian += theta[position + d]
                correlations[f, d, d] = 1.0
            position += D
        else:
            sds[f, :] = math.exp(theta[position])
            log_jacobian += theta[position]
            for d in range(D):
                correlations[f, d, d] = 1.0
            position += 1
    return log_weights, means, sds, correlations, log_jacobian, correlation_jacobian


@numba.njit(cache=True, error_model="numpy")
def _log_likelihood(X, log_weights, means, chols, gradient_log_weights, gradient_means,
                    gradient_chols):
    """sum_n logsumexp_k [log pi_k + log N(x_n | mu_k, L_k L_k^T)] and its gradient (added to
    the three gradient arrays): with responsibilities gamma_nk and r_nk = L_k^-1 (x_n - mu_k),
    d/d log pi_k = sum_n gamma_nk, d/d mu_k = L_k^-T sum_n gamma_nk r_nk,
    d/d L_k = tril(L_k^-T sum_n gamma_nk r_nk r_nk^T) - sum_n gamma_nk diag(1 / L_k,dd)."""
    N, D = X.shape
    K = log_weights.shape[0]
    log_norms = np.empty(K)
    for k in range(K):
        log_norms[k] = log_weights[k] - 0.5 * D * LOG_2PI
        for d in range(D):
            log_norms[k] -= math.log(chols[k, d, d])
    counts = np.zeros(K)
    sums = np.zeros((K, D))
    scatters = np.zeros((K, D, D))
    whitened = np.empty((K, D))
    log_components = np.empty(K)
    total = 0.0
    for n in range(N):
        for k in range(K):
            squares = 0.0
            for d in range(D):  # forward substitution L_k r = x_n - mu_k
                value = X[n, d] - means[k, d]
                for e in range(d):
                    value -= chols[k, d, e] * whitened[k, e]
                value /= chols[k, d, d]
                whitened[k, d] = value
                squares += value * value
            log_components[k] = log_norms[k] - 0.5 * squares
        largest = np.max(log_components)
        mass = 0.0
        for k in range(K):
            log_components[k] = math.exp(log_components[k] - largest)
            mass += log_components[k]
        total += largest + math.log(mass)
        for k in range(K):
            gamma = log_components[k] / mass
            counts[k] += gamma
            for d in range(D):
                sums[k, d] += gamma * whitened[k, d]
                for e in range(d + 1):
                    scatters[k, d, e] += gamma * whitened[k, d] * whitened[k, e]
    for k in range(K):
        gradient_log_weights[k] += counts[k]
        L = chols[k]
        for d in range(D):
            for e in range(d):
                scatters[k, e, d] = scatters[k, d, e]
        for d in range(D - 1, -1, -1):  # back substitution L^T g = sums, L^T M = scatters
            value = sums[k, d]
            for e in range(d + 1, D):
                value -= L[e, d] * sums[k, e]
            sums[k, d] = value / L[d, d]
            for c in range(D):
                value = scatters[k, d, c]
                for e in range(d + 1, D):
                    value -= L[e, d] * scatters[k, e, c]
                scatters[k, d, c] = value / L[d, d]
        for d in range(D):
            gradient_means[k, d] += sums[k, d]
            for e in range(d + 1):
                gradient_chols[k, d, e] += scatters[k, d, e]
            gradient_chols[k, d, d] -= counts[k] / L[d, d]
    return total


@numba.njit(cache=True, error_model="numpy")
def log_density(theta, data, gradient):
    """The log posterior density of theta (up to log p(X)), its gradient written into
    ``gradient``, and log|d(constrained)/d theta|: the value minus it is PyMC's Jacobian-free
    log density at the constrained point (:func:`expand`)."""
    K, D, code, N, alpha, eta, normaliser, centre, mean_sd, sd_scales, X = _unpack(data)
    log_weights, means, sds, correlations, log_jacobian, correlation_jacobian = _parameters(
        theta, K, D, code)
    F = sds.shape[0]
    chols = np.empty((K, D, D))
    for k in range(K):
        chols[k] = sds[0 if code == TIED else k][:, None] * correlations[0 if code == TIED else k]
    gradient_log_weights = np.zeros(K)
    gradient_means = np.zeros((K, D))
    gradient_chols = np.zeros((K, D, D))
    value = normaliser + log_jacobian + correlation_jacobian + _log_likelihood(
        X, log_weights, means, chols, gradient_log_weights, gradient_means, gradient_chols)

    # pi ~ Dirichlet(alpha): (alpha - 1) sum log pi, and sum log pi from the Jacobian
    value += (alpha - 1.0) * np.sum(log_weights)
    gradient_log_weights += alpha
    total = np.sum(gradient_log_weights)
    for j in range(K - 1):
        gradient[j] = gradient_log_weights[j] - math.exp(log_weights[j]) * total
    position = K - 1

    # mu_kd ~ N(centre_d, mean_sd_d^2); mu_k0 = y_0 + sum_(l<=k) exp(y_l)
    for k in range(K):
        for d in range(D):
            deviation = (means[k, d] - centre[d]) / mean_sd[d]
            value -= 0.5 * deviation * deviation
            gradient_means[k, d] -= deviation / mean_sd[d]
    later = 0.0
    for k in range(K - 1, 0, -1):
        later += gradient_means[k, 0]
        gradient[position + k] = later * math.exp(theta[position + k]) + 1.0
    gradient[position] = later + gradient_means[0, 0]
    position += K
    for k in range(K):
        for d in range(1, D):
            gradient[position] = gradient_means[k, d]
            position += 1

    # standard deviations ~ HalfNormal(sd_scales); full/tied: W ~ LKJ(eta), L = diag(sd) W
    n_corr = D * (D - 1) // 2
    pymc_jacobian = 0.0  # log|dL/d(sd, W)| of PyMC's packed L, part of log|J|
    for f in range(F):
        factor_gradient = np.zeros((D, D))
        for k in range(K):
            if code == TIED or k == f:
                factor_gradient += gradient_chols[k]
        n_sds = 1 if code == SPHERICAL else D
        for d in range(n_sds):
            ratio = sds[f, d] / sd_scales[d]
            value -= 0.5 * ratio * ratio
            chain = 0.0  # d/d sd of the likelihood
            if code == SPHERICAL:
                for e in range(D):
                    chain += factor_gradient[e, e]
            else:
                for e in range(d + 1):
                    chain += factor_gradient[d, e] * correlations[f, d, e]
            gradient[position + d] = sds[f, d] * chain - ratio * ratio + 1.0
        position += n_sds
        if code == FULL or code == TIED:
            W = correlations[f]
            gradient_W = np.zeros((D, D))
            for i in range(D):
                exponent = 2.0 * eta - 3.0 + D - i
                value += exponent * math.log(W[i, i])
                pymc_jacobian += i * math.log(sds[f, i]) - math.log(W[i, i])
                for j in range(i + 1):
                    gradient_W[i, j] = sds[f, i] * factor_gradient[i, j]
                gradient_W[i, i] += exponent / W[i, i]
            _correlation_factor_gradient(theta[position:position + n_corr], W, gradient_W,
                                         gradient[position:position + n_corr])
            position += n_corr
    return value, log_jacobian + correlation_jacobian + pymc_jacobian


@numba.njit(cache=True, error_model="numpy")
def expand(theta, data, out):
    """theta -> weights (K), means (K, D), covariances (K, D, D), flat into ``out``."""
    K, D, code = int(data[0]), int(data[1]), int(data[2])
    log_weights, means, sds, correlations, _, _ = _parameters(theta, K, D, code)
    out[:K] = np.exp(log_weights)
    out[K:K + K * D] = means.ravel()
    position = K + K * D
    for k in range(K):
        f = 0 if code == TIED else k
        L = sds[f][:, None] * correlations[f]
        out[position:position + D * D] = (L @ L.T).ravel()
        position += D * D


LOGP_SIGNATURE = types.int64(types.uint64, types.CPointer(types.double),
                             types.CPointer(types.double), types.CPointer(types.double),
                             types.voidptr)
EXPAND_SIGNATURE = types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                               types.CPointer(types.double), types.voidptr)


@numba.njit(cache=True, error_model="numpy")
def _data_from_pointer(pointer):
    """The data array at nutpie's user_data pointer (its length is the header's last slot)."""
    length = int(numba.carray(pointer, (HEADER,), np.float64)[HEADER - 1])
    return numba.carray(pointer, (length,), np.float64)


def _logp_callback(dim, x_, gradient_, logp_, user_data_):
    """nutpie's log density callback: 0, or nutpie's error codes (-1 wrong size, 3 non-finite
    gradient, 4 non-finite density)."""
    data = _data_from_pointer(user_data_)
    if dim != n_unconstrained(int(data[0]), int(data[1]), int(data[2])):
        return -1
    gradient = numba.carray(gradient_, (dim,))
    value, _ = log_density(numba.carray(x_, (dim,)), data, gradient)
    logp_[0] = value
    if not np.all(np.isfinite(gradient)):
        return 3
    if not np.isfinite(value):
        return 4
    return 0


def _expand_callback(dim, expanded, x_, out_, user_data_):
    """nutpie's draw-expansion callback: 0, or -1 for a wrong size."""
    data = _data_from_pointer(user_data_)
    K, D = int(data[0]), int(data[1])
    if dim != n_unconstrained(K, D, int(data[2])) or expanded != n_expanded(K, D):
        return -1
    expand(numba.carray(x_, (dim,)), data, numba.carray(out_, (expanded,)))
    return 0


@contextlib.contextmanager
def _llvm_optimisation(level):
    """Numba's LLVM optimisation level for the compiles inside. gmmlab sets NUMBA_OPT=0 for
    PyTensor's models; at level 0 a call from one Numba function to another leaves the callee's
    address in the code, and Numba then refuses to cache it on disk."""
    saved = numba.config.OPT
    numba.config.OPT = numba.config._OptLevel(level)
    try:
        yield
    finally:
        numba.config.OPT = saved


# Compiled (or loaded from Numba's on-disk cache) when this module is imported.
with _llvm_optimisation(3):
    logp_callback = numba.cfunc(LOGP_SIGNATURE, cache=True, error_model="numpy")(
        _logp_callback)
    expand_callback = numba.cfunc(EXPAND_SIGNATURE, cache=True, error_model="numpy")(
        _expand_callback)


def unconstrained_start(data, weights, means, jitter, rng):
    """theta at the given weights (K,) and means (K, D) (ordered along the first feature),
    standard deviations at their prior scale, correlations zero; jittered by
    U(-jitter, jitter) in every coordinate."""
    K, D, code = int(data[0]), int(data[1]), int(data[2])
    log_scales = np.log(data[HEADER + 2 * D:HEADER + 3 * D])
    gaps = np.maximum(np.diff(means[:, 0]), 1e-8 * (1 + np.abs(means[1:, 0])))
    factor = np.concatenate([log_scales, np.zeros(D * (D - 1) // 2)])
    covariance = {FULL: np.tile(factor, K), TIED: factor, DIAG: np.tile(log_scales, K),
                  SPHERICAL: np.full(K, log_scales[0])}[code]
    theta = np.concatenate([np.log(weights[:-1] / weights[-1]), means[:1, 0], np.log(gaps),
                            np.ravel(means[:, 1:]), covariance])
    return theta + rng.uniform(-jitter, jitter, size=theta.size)


def compile_model(X, n_components, covariance_type, start, **priors):
    """nutpie's compiled model of the posterior (:class:`CompiledMixturePosterior`); ``start``
    maps a seed to the flat start (:func:`unconstrained_start`), ``priors`` are
    :func:`posterior_data`'s keywords."""
    data = posterior_data(X, n_components, covariance_type, **priors)
    K, D = n_components, X.shape[1]
    return CompiledMixturePosterior(
        dims={"weights": ("component",), "means": ("component", "feature"),
              "covariances": ("component", "feature", "feature_")},
        data=data, initial_point_func=start,
        _coords={"component": np.arange(K), "feature": np.arange(D),
                 "feature_": np.arange(D)},
        _shapes={"weights": (K,), "means": (K, D), "covariances": (K, D, D)},
        _n_dim=n_unconstrained(K, D, CODES[covariance_type]))


@dataclasses.dataclass(frozen=True)
class CompiledMixturePosterior(CompiledModel):
    """The posterior as nutpie's compiled model: the two C callbacks of this module, with the
    data array as their user_data (kept alive by this object), stored draws weights, means and
    covariances with their dims."""

    data: np.ndarray
    initial_point_func: object
    _coords: dict
    _shapes: dict
    _n_dim: int

    @property
    def n_dim(self):
        return self._n_dim

    @property
    def shapes(self):
        return self._shapes

    @property
    def coords(self):
        return self._coords

    def _make_sampler(self, settings, init_mean, cores, progress_type, extra_callback,
                      extra_callback_rate, store):
        return _lib.PySampler.from_pymc(settings, cores, self._make_model(init_mean),
                                        progress_type, extra_callback, extra_callback_rate,
                                        store)

    def _make_model(self, init_mean):
        address = self.data.ctypes.data
        names = list(self._shapes)
        variables = _lib.PyVariable.new_variables(
            names, ["float64"] * len(names), [list(self._shapes[n]) for n in names],
            {name: len(values) for name, values in self._coords.items()}, self.dims)
        return _lib.PyMcModel(
            _lib.LogpFunc(logp_callback.address, address, self),
            _lib.ExpandFunc(self._n_dim, n_expanded(*self._shapes["means"]),
                            expand_callback.address, address, self),
            variables, self._n_dim, {name: len(values) for name, values in self._coords.items()},
            self._coords, self.initial_point_func, _no_flow_adaptation)


def _no_flow_adaptation(*args, **kwargs):
    raise ValueError("the hand-written mixture posterior has no normalising-flow adaptation; "
                     "use nutpie's 'diag' or 'low_rank' adaptation")
