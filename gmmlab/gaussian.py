"""Per-covariance-type formulas of a Gaussian mixture, shared by the EM estimator and the metrics.

Notation: ``N`` samples, ``D`` features, ``K`` components. Covariances and precisions are stored
as scikit-learn stores them:

=============  =====================  ==========================================
type           covariances            precisions_cholesky
=============  =====================  ==========================================
``full``       (K, D, D)              (K, D, D), upper ``U_k`` with P_k = U_k U_k^T
``tied``       (D, D)                 (D, D), one ``U`` shared by all components
``diag``       (K, D)                 (K, D), ``1 / sigma_kd``
``spherical``  (K,)                   (K,), ``1 / sigma_k``
=============  =====================  ==========================================

Everything runs over blocks of samples, so no temporary grows as ``N x K x D``, and the heavy
work is a few matrix products per block over all components at once: for the full type with the
quadratic features phi(x) = (x_i x_j)_{i <= j}, which turn both the E-step's quadratic forms and
the M-step's scatter matrices into one (N, D (D + 1) / 2) x (., K) product each.
"""

import numpy as np
from scipy import linalg

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

# Number of float64 entries a block temporary of shape (rows, K * D) may hold (16 MiB).
_BLOCK_ENTRIES = 1 << 21


def sample_blocks(n_samples, width):
    """Slices of consecutive samples such that a (rows, width) float64 temporary stays small."""
    rows = max(256, _BLOCK_ENTRIES // max(width, 1))
    return [slice(start, min(start + rows, n_samples)) for start in range(0, n_samples, rows)]


# mclust's covariance models (Celeux & Govaert 1995): Sigma_k = lambda_k D_k A_k D_k^T, named by
# three letters for volume lambda, shape A and orientation D: E equal for all components,
# V variable, I identity. In 1-D only the volume is left: E or V.
MCLUST_MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV",
                 "VEV", "EVV", "VVV")
MCLUST_NAMES = {"spherical": "VII", "diag": "VVI", "tied": "EEE", "full": "VVV"}


def mclust_name(covariance_type, n_features):
    """mclust's name of a covariance type: ``tied`` -> EEE; in 1-D only the volume, E or V."""
    model = MCLUST_NAMES.get(covariance_type, covariance_type)
    if model not in MCLUST_MODELS + ("E", "V"):
        raise ValueError(f"unknown covariance type {covariance_type!r}; expected one of "
                         f"{COVARIANCE_TYPES + MCLUST_MODELS}.")
    return model[0] if n_features == 1 else model


def n_parameters(n_components, n_features, covariance_type):
    """Free parameters: (K - 1) weights + K * D means + the covariance parameters.

    Covariance parameters, per letter of the mclust name (E: once, V: K times, I: none):
    volume 1, shape D - 1 (det A = 1), orientation D (D - 1) / 2 (D orthogonal). So full
    (VVV) has K D (D + 1) / 2, tied (EEE) D (D + 1) / 2, diag (VVI) K D, spherical (VII) K.
    """
    K, D = n_components, n_features
    model = mclust_name(covariance_type, D).ljust(3, "I")
    copies = {"E": 1, "V": K, "I": 0}
    covariance = (copies[model[0]] + copies[model[1]] * (D - 1)
                  + copies[model[2]] * D * (D - 1) // 2)
    return int(covariance + K * D + K - 1)


def estimate_gaussian_parameters(X, resp, reg_covar, covariance_type):
    """M-step: weights, means and covariances from responsibilities.

    N_k = sum_n r_nk,  mu_k = sum_n r_nk x_n / N_k,
    Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + reg_covar * I,
    reduced to the shared (tied), diagonal or mean-diagonal (spherical) form.

    X : (N, D), resp : (N, K). Returns nk (K,) (unnormalised weights), means (K, D) and the
    covariances in the shape of the type.
    """
    nk = resp.sum(axis=0) + 10 * np.finfo(resp.dtype).eps
    means = resp.T @ X / nk[:, np.newaxis]
    covariances = {
        "full": _covariances_full,
        "tied": _covariance_tied,
        "diag": _covariances_diag,
        "spherical": _covariances_spherical,
    }[covariance_type](X, resp, nk, reg_covar)
    return nk, means, covariances


def quadratic_features(X):
    """phi(x) = (x_i x_j)_{i <= j} of a block of samples, as columns: (D (D + 1) / 2, N).

    x^T A x = phi(x) . vech2(A) for symmetric A, vech2 packing the upper triangle with the
    off-diagonal entries doubled. Built row by row from X^T, which is far faster than gathering.
    """
    Xt = np.ascontiguousarray(X.T)
    D = len(Xt)
    phi = np.empty((D * (D + 1) // 2, Xt.shape[1]))
    start = 0
    for i in range(D):
        np.multiply(Xt[i], Xt[i:], out=phi[start : start + D - i])
        start += D - i
    return phi


def _covariances_full(X, resp, nk, reg_covar):
    """Sigma_k = sum_n r_nk phi(x_n) / N_k - m_k m_k^T (+ reg_covar I), unpacked: (K, D, D).

    With x centred on the data mean c and m_k = sum_n r_nk (x_n - c) / N_k (mu_k - c, and 0 for
    an empty component, whose covariance is then reg_covar I as in the two-pass formula). The
    scatter of every component is one product phi(X) R over blocks of samples; the centring
    keeps the cancellation in the subtraction small.
    """
    N, D = X.shape
    centre = X.mean(axis=0)
    rows, cols = np.triu_indices(D)
    scatter = np.zeros((len(rows), resp.shape[1]))
    first = np.zeros((D, resp.shape[1]))
    for block in sample_blocks(N, len(rows)):
        Xc = X[block] - centre
        scatter += quadratic_features(Xc) @ resp[block]
        first += Xc.T @ resp[block]
    covariances = np.empty((resp.shape[1], D, D))
    covariances[:, rows, cols] = covariances[:, cols, rows] = (scatter / nk).T
    offsets = (first / nk).T
    covariances -= offsets[:, :, np.newaxis] * offsets[:, np.newaxis, :]
    covariances[:, np.arange(D), np.arange(D)] += reg_covar
    return covariances


def _covariance_tied(X, resp, nk, reg_covar):
    """Sigma = (X^T X - sum_k N_k mu_k mu_k^T) / N + reg_covar * I, centred on the data mean."""
    Xc = X - X.mean(axis=0)
    offsets = resp.T @ Xc / nk[:, np.newaxis]
    covariance = (Xc.T @ Xc - (nk * offsets.T) @ offsets) / nk.sum()
    covariance = (covariance + covariance.T) / 2
    covariance.flat[:: X.shape[1] + 1] += reg_covar
    return covariance


def _covariances_diag(X, resp, nk, reg_covar):
    """sigma_kd^2 = sum_n r_nk x_nd^2 / N_k - mu_kd^2 + reg_covar, centred on the data mean."""
    Xc = X - X.mean(axis=0)
    offsets = resp.T @ Xc / nk[:, np.newaxis]
    return resp.T @ (Xc * Xc) / nk[:, np.newaxis] - offsets**2 + reg_covar


def _covariances_spherical(X, resp, nk, reg_covar):
    return _covariances_diag(X, resp, nk, reg_covar).mean(axis=1)


def smallest_eigenvalues(covariances, covariance_type):
    """Smallest eigenvalue of every component's covariance: (K,), or (1,) for tied."""
    if covariance_type == "full":
        return np.linalg.eigvalsh(covariances)[:, 0]
    if covariance_type == "tied":
        return np.linalg.eigvalsh(covariances)[:1]
    if covariance_type == "diag":
        return covariances.min(axis=1)
    return np.asarray(covariances, dtype=float)


def precisions_cholesky(covariances, covariance_type):
    """Cholesky factors of the precisions, from covariances assumed positive definite.

    full / tied: Sigma = L L^T (lower) and U = L^{-T}, so that P = Sigma^{-1} = U U^T;
    diag / spherical: 1 / sqrt(sigma^2). Never forms an inverse or a determinant.
    """
    if covariance_type in ("full", "tied"):
        stacked = np.atleast_3d(covariances) if covariance_type == "full" else covariances[None]
        factors = np.empty_like(stacked)
        for k, covariance in enumerate(stacked):
            lower = linalg.cholesky(covariance, lower=True)
            inverse, info = linalg.lapack.dtrtri(lower, lower=1)  # L^{-1}, triangular
            if info != 0:
                raise np.linalg.LinAlgError(f"singular Cholesky factor (dtrtri info {info})")
            factors[k] = inverse.T
        return factors if covariance_type == "full" else factors[0]
    return 1.0 / np.sqrt(covariances)


def precisions_cholesky_from_precisions(precisions, covariance_type):
    """Upper factors U with P = U U^T from precision matrices (the ``precisions_init`` form)."""
    if covariance_type == "full":
        return np.stack([_upper_factor(precision) for precision in precisions])
    if covariance_type == "tied":
        return _upper_factor(precisions)
    return np.sqrt(precisions)


def _upper_factor(precision):
    """U upper triangular with U U^T = P, from the Cholesky factor of the flipped matrix."""
    flipped = precision[::-1, ::-1]
    return linalg.cholesky(flipped, lower=True)[::-1, ::-1]


def precisions_from_cholesky(precisions_chol, covariance_type):
    """P = U U^T (full, tied) or U^2 (diag, spherical)."""
    if covariance_type == "full":
        return precisions_chol @ precisions_chol.transpose(0, 2, 1)
    if covariance_type == "tied":
        return precisions_chol @ precisions_chol.T
    return precisions_chol**2


def covariances_from_cholesky(precisions_chol, covariance_type):
    """Sigma = (U U^T)^{-1} = U^{-T} U^{-1}, by triangular solves (for ``precisions_init``)."""
    if covariance_type in ("full", "tied"):
        stacked = precisions_chol if covariance_type == "full" else precisions_chol[None]
        D = stacked.shape[-1]
        inverse = np.stack(
            [linalg.solve_triangular(U, np.eye(D), lower=False) for U in stacked]
        )
        covariances = inverse.transpose(0, 2, 1) @ inverse
        return covariances if covariance_type == "full" else covariances[0]
    return 1.0 / precisions_chol**2


def log_det_cholesky(precisions_chol, covariance_type, n_features):
    """log det(U) = -1/2 log det(Sigma) per component: (K,), or a scalar for tied."""
    if covariance_type == "full":
        return np.log(np.diagonal(precisions_chol, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.log(np.diag(precisions_chol)).sum()
    if covariance_type == "diag":
        return np.log(precisions_chol).sum(axis=1)
    return n_features * np.log(precisions_chol)


def estimate_log_gaussian_prob(X, means, precisions_chol, covariance_type):
    """E-step densities: log N(x_n | mu_k, Sigma_k) for every sample and component, (N, K).

    log N = -1/2 (D log 2 pi + (x_n - mu_k)^T P_k (x_n - mu_k)) + log det U_k, the squared
    Mahalanobis distances computed per block of samples as matrix products over all components
    at once. X is first centred on the mean of the means (distances are shift-invariant), which
    keeps the cancellation in the expanded quadratic forms small.
    """
    N, D = X.shape
    centre = means.mean(axis=0)
    means = means - centre
    mahalanobis = _MAHALANOBIS[covariance_type]
    log_prob = np.empty((N, means.shape[0]))
    for block in sample_blocks(N, D * (D + 1) // 2 + means.shape[0]):
        log_prob[block] = mahalanobis(X[block] - centre, means, precisions_chol)
    np.maximum(log_prob, 0.0, out=log_prob)  # rounding can leave tiny negative distances
    log_prob *= -0.5
    log_prob += log_det_cholesky(precisions_chol, covariance_type, D) - 0.5 * D * np.log(2 * np.pi)
    return log_prob


def _mahalanobis_full(X, means, precisions_chol):
    """(x - mu_k)^T P_k (x - mu_k) = vech2(P_k) . phi(x) - 2 (P_k mu_k) . x + mu_k^T P_k mu_k."""
    D = X.shape[1]
    precisions = precisions_from_cholesky(precisions_chol, "full")
    rows, cols = np.triu_indices(D)
    quadratic = precisions[:, rows, cols] * np.where(rows == cols, 1.0, 2.0)
    linear = np.einsum("kde,ke->kd", precisions, means)
    distances = quadratic @ quadratic_features(X) - 2 * linear @ X.T
    return distances.T + np.einsum("kd,kd->k", linear, means)


def _mahalanobis_tied(X, means, precisions_chol):
    """||y - c_k||^2 = ||y||^2 - 2 y . c_k + ||c_k||^2 with y = U^T x and c_k = U^T mu_k."""
    y, centres = X @ precisions_chol, means @ precisions_chol
    return (y * y).sum(axis=1)[:, np.newaxis] - 2 * y @ centres.T + (centres**2).sum(axis=1)


def _mahalanobis_diag(X, means, precisions_chol):
    """sum_d p_kd (x_d^2 - 2 x_d mu_kd + mu_kd^2) with p_kd = 1 / sigma_kd^2."""
    precisions = precisions_chol**2
    return ((X * X) @ precisions.T - 2 * X @ (means * precisions).T
            + (means**2 * precisions).sum(axis=1))


def _mahalanobis_spherical(X, means, precisions_chol):
    """p_k ||x - mu_k||^2 = p_k (||x||^2 - 2 x . mu_k + ||mu_k||^2) with p_k = 1 / sigma_k^2."""
    squared = (X * X).sum(axis=1)[:, np.newaxis] - 2 * X @ means.T + (means**2).sum(axis=1)
    return squared * precisions_chol**2


_MAHALANOBIS = {
    "full": _mahalanobis_full,
    "tied": _mahalanobis_tied,
    "diag": _mahalanobis_diag,
    "spherical": _mahalanobis_spherical,
}


def full_covariances(covariances, covariance_type, n_components, n_features):
    """Expand any covariance type to (K, D, D) full matrices."""
    if covariance_type == "full":
        return np.asarray(covariances)
    if covariance_type == "tied":
        return np.broadcast_to(covariances, (n_components, n_features, n_features)).copy()
    variances = np.asarray(covariances)
    if covariance_type == "spherical":
        variances = np.repeat(variances[:, np.newaxis], n_features, axis=1)
    return variances[:, :, np.newaxis] * np.eye(n_features)
