"""Compiled EM kernels (Numba, cached on disk): one pass over the samples for an E-step and the
sufficient statistics of the M-step that follows.

For every sample x_n and component k, with d = x_n - mu_k:

* log-density plus log weight: a_nk = c_k - 1/2 ||d^T U_k||^2, where U_k is the upper Cholesky
  factor of the precision P_k = U_k U_k^T (full and tied forms) or the diagonal 1 / sigma_kd
  (diag and spherical forms, spherical passed as K x D), and c_k = log pi_k + log det U_k
  - D/2 log 2 pi (computed by the caller);
* log p(x_n) = m_n + log sum_k exp(a_nk - m_n), m_n = max_k a_nk, and the responsibilities
  r_nk = exp(a_nk - log p(x_n));
* the sufficient statistics about a centre c (the data mean, to keep cancellation small):
  N_k = sum_n r_nk, F_k = sum_n r_nk (x_n - c), and the second moments
  Q_k = sum_n r_nk (x_n - c)(x_n - c)^T (full form), Q = sum_n (x_n - c)(x_n - c)^T (tied
  form: the responsibilities drop out of the pooled scatter), or their diagonals (diag and
  spherical forms).

:func:`gmmlab.model.gaussian.sample_covariances` turns the statistics into the sample
covariances, the same function the numpy reference path
(:func:`gmmlab.model.gaussian.sufficient_statistics`) feeds, and the model's M-step
(:data:`gmmlab.model.gaussian.MODEL_M_STEPS`) constrains them. The kernels compile without
``fastmath``, so that they round as the numpy path does up to the order of the
sums; their speed assumes Numba's default optimisation level (``NUMBA_OPT`` unset).
"""

import numpy as np
from numba import njit

# exp(-UNDERFLOW) ~ 1e-300: the smallest responsibility kept (see e_step).
UNDERFLOW = 690.0
# From this many features on, the full and tied forms' quadratic forms and the full form's
# scatters are matrix products (BLAS) over blocks of BLOCK_ROWS samples instead of loops.
GEMM_FEATURES = 8
BLOCK_ROWS = 512
# Kinds of second moment, by storage form (gmmlab.model.gaussian.storage).
SECOND_MOMENTS = {"full": 2, "tied": 3, "diag": 1, "spherical": 1}


@njit(cache=True)
def e_step(X, means, factors, scales, constants, second_kind, log_norm, resp, counts, first,
           second_full, second_diag, centre):
    """E-step and statistics in one pass, into the outputs.

    X (N, D), means (K, D), centre (D,), constants c_k (K,). Exactly one of ``factors``
    (F, D, D) upper triangular, F = K or 1 (tied), and ``scales`` (K, D) has rows.
    second_kind: 0 no statistics, 1 diagonals into ``second_diag`` (K, D), 2 per component
    into ``second_full`` (K, D, D), 3 unweighted into ``second_full`` (1, D, D). Overwritten:
    log_norm log p(x_n) (N,), resp (N, K), counts N_k (K,), first (K, D), the second moments.
    """
    N, D = X.shape
    K = means.shape[0]
    full = factors.shape[0] > 0
    shared = factors.shape[0] == 1
    resp[:, :] = 0.0
    counts[:] = 0.0
    first[:, :] = 0.0
    second_full[:, :, :] = 0.0
    second_diag[:, :] = 0.0
    difference = np.empty(D)
    centred = np.empty(D)
    projected = np.empty(D)
    gemm = full and D >= GEMM_FEATURES
    if gemm:
        _log_densities_by_blocks(X, means, factors, constants, resp)
    for n in range(N):
        peak = -np.inf
        for k in range(K):
            if gemm:
                if resp[n, k] > peak:
                    peak = resp[n, k]
                continue
            for i in range(D):
                difference[i] = X[n, i] - means[k, i]
            distance = 0.0
            if full:
                U = factors[0] if shared else factors[k]
                projected[:] = 0.0
                for i in range(D):  # projected = d^T U, row by row (contiguous in U)
                    entry = difference[i]
                    for j in range(i, D):
                        projected[j] += entry * U[i, j]
                for j in range(D):
                    distance += projected[j] * projected[j]
            else:
                for i in range(D):
                    scaled = difference[i] * scales[k, i]
                    distance += scaled * scaled
            value = constants[k] - 0.5 * distance
            resp[n, k] = value
            if value > peak:
                peak = value
        norm = 0.0
        for k in range(K):
            gap = resp[n, k] - peak
            # below exp(-UNDERFLOW) the responsibility is taken as 0: subnormal numbers are
            # two orders of magnitude slower, and such a term moves no sum by 1e-290 relative
            resp[n, k] = np.exp(gap) if gap > -UNDERFLOW else 0.0
            norm += resp[n, k]
        for k in range(K):
            resp[n, k] /= norm
        log_norm[n] = peak + np.log(norm)
        if second_kind == 0:
            continue
        for i in range(D):
            centred[i] = X[n, i] - centre[i]
        for k in range(K):
            weight = resp[n, k]
            if weight == 0.0:
                continue
            counts[k] += weight
            for i in range(D):
                first[k, i] += weight * centred[i]
            if second_kind == 1:
                for i in range(D):
                    second_diag[k, i] += weight * centred[i] * centred[i]
            elif second_kind == 2 and not gemm:
                for i in range(D):
                    weighted = weight * centred[i]
                    for j in range(i, D):
                        second_full[k, i, j] += weighted * centred[j]
        if second_kind == 3:
            for i in range(D):
                for j in range(i, D):
                    second_full[0, i, j] += centred[i] * centred[j]
    if gemm and second_kind == 2:
        _scatters_by_blocks(X, centre, resp, second_full)
    for k in range(second_full.shape[0]):
        for i in range(D):
            for j in range(i):
                second_full[k, i, j] = second_full[k, j, i]


@njit(cache=True)
def _log_densities_by_blocks(X, means, factors, constants, out):
    """out[n, k] = c_k - 1/2 ||(x_n - mu_k)^T U_k||^2 by matrix products over blocks of
    samples (tied, one U: y = x^T U once per block and ||y - mu_k^T U||^2)."""
    N, D = X.shape
    K = means.shape[0]
    shared = factors.shape[0] == 1
    centres = np.dot(means, np.ascontiguousarray(factors[0])) if shared else means
    for start in range(0, N, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, N)
        block = np.ascontiguousarray(X[start:stop])
        projected = np.dot(block, np.ascontiguousarray(factors[0])) if shared else block
        for k in range(K):
            if not shared:
                projected = np.dot(block - means[k], np.ascontiguousarray(factors[k]))
            for row in range(stop - start):
                distance = 0.0
                for j in range(D):
                    entry = projected[row, j] - centres[k, j] if shared else projected[row, j]
                    distance += entry * entry
                out[start + row, k] = constants[k] - 0.5 * distance


@njit(cache=True)
def _scatters_by_blocks(X, centre, resp, second):
    """second[k] += sum_n r_nk (x_n - c)(x_n - c)^T by matrix products over blocks of samples."""
    N, D = X.shape
    K = resp.shape[1]
    for start in range(0, N, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, N)
        centred = np.ascontiguousarray(X[start:stop]) - centre
        weighted = np.empty_like(centred)
        for k in range(K):
            for row in range(stop - start):
                weight = resp[start + row, k]
                for i in range(D):
                    weighted[row, i] = weight * centred[row, i]
            second[k] += np.dot(np.ascontiguousarray(weighted.T), centred)


@njit(cache=True)
def rotation_sweep(orientation, W, weights):
    """One Jacobi sweep over the planes (i, j), i < j, of the columns of ``orientation`` D
    (D, D) for f(D) = sum_k sum_j w_kj d_j^T W_k d_j, weights w (K, D), scatters W (K, D, D)
    (the orientation step of ``gmmlab.model.gaussian._common_orientation``).

    Rotating d_i, d_j by theta changes f by B cos 2 theta + C sin 2 theta + const, with
    B = sum_k (w_ki - w_kj)(a_kii - a_kjj) / 2 and C = sum_k (w_ki - w_kj) a_kij, a_k = D^T W_k D:
    the angle 2 theta = atan2(-C, -B) is the exact minimiser. Returns the rotated D (a copy).
    """
    K, D = weights.shape
    orientation = orientation.copy()
    projected = np.empty((K, D, D))  # a_k = D^T W_k D
    for k in range(K):
        projected[k] = orientation.T @ np.ascontiguousarray(W[k]) @ orientation
    for i in range(D - 1):
        for j in range(i + 1, D):
            B = 0.0
            C = 0.0
            for k in range(K):
                difference = weights[k, i] - weights[k, j]
                B += difference * (projected[k, i, i] - projected[k, j, j]) / 2
                C += difference * projected[k, i, j]
            norm = np.hypot(B, C)
            if norm == 0.0:
                continue
            cos2 = -B / norm
            c = np.sqrt((1 + cos2) / 2)
            s = np.sqrt((1 - cos2) / 2)
            if -C < 0:
                s = -s
            # new (d_i, d_j) = (c d_i + s d_j, -s d_i + c d_j); a_k likewise on both sides
            for row in range(D):
                first, second = orientation[row, i], orientation[row, j]
                orientation[row, i] = c * first + s * second
                orientation[row, j] = -s * first + c * second
            for k in range(K):
                for row in range(D):
                    first, second = projected[k, row, i], projected[k, row, j]
                    projected[k, row, i] = c * first + s * second
                    projected[k, row, j] = -s * first + c * second
                for column in range(D):
                    first, second = projected[k, i, column], projected[k, j, column]
                    projected[k, i, column] = c * first + s * second
                    projected[k, j, column] = -s * first + c * second
    return orientation
