"""Per-covariance-type formulas of a Gaussian mixture, shared by the EM estimator and the metrics.

Notation: ``N`` samples, ``D`` features, ``K`` components. Covariance types are scikit-learn's
four names and mclust's fourteen models (:data:`MCLUST_MODELS`, the M-steps in
:data:`MODEL_M_STEPS`). Covariances and precisions are stored in one of four forms, as
scikit-learn stores them; every model has one (:func:`storage`), so the E-step has one code path
per form:

=============  ==========  ================================================  ================
form           Sigma       precisions_cholesky                               models
=============  ==========  ================================================  ================
``full``       (K, D, D)   (K, D, D), upper ``U_k`` with P_k = U_k U_k^T     VVV (full), VEE,
                                                                             EVE, VVE, EEV,
                                                                             VEV, EVV
``tied``       (D, D)      (D, D), one ``U`` shared by all components        EEE (tied)
``diag``       (K, D)      (K, D), ``1 / sigma_kd``                          VVI (diag), EEI,
                                                                             VEI, EVI
``spherical``  (K,)        (K,), ``1 / sigma_k``                             VII (spherical),
                                                                             EII
=============  ==========  ================================================  ================

Everything runs over blocks of samples, so no temporary grows as ``N x K x D``, and the heavy
work is a few matrix products per block over all components at once: for the full type with the
quadratic features phi(x) = (x_i x_j)_{i <= j}, which turn both the E-step's quadratic forms and
the M-step's scatter matrices into one (N, D (D + 1) / 2) x (., K) product each.
"""

from functools import cache

import numpy as np
from scipy import linalg

from gmmlab.model import kernels

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
# scikit-learn's name of the four mclust models that have one (the inverse of MCLUST_NAMES).
SKLEARN_NAMES = {model: name for name, model in MCLUST_NAMES.items()}
# Every covariance type name gmmlab knows: scikit-learn's four, then mclust's fourteen.
ALL_COVARIANCE_TYPES = COVARIANCE_TYPES + MCLUST_MODELS


def mclust_name(covariance_type, n_features):
    """mclust's name of a covariance type: ``tied`` -> EEE; in 1-D only the volume, E or V."""
    model = MCLUST_NAMES.get(covariance_type, covariance_type)
    if model not in MCLUST_MODELS + ("E", "V"):
        raise ValueError(f"unknown covariance type {covariance_type!r}; expected one of "
                         f"{ALL_COVARIANCE_TYPES}.")
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


def storage(covariance_type):
    """The form a type's covariances are stored in: 'full', 'tied', 'diag' or 'spherical'."""
    return MODEL_M_STEPS[_model(covariance_type)][0]


def shares_one_covariance(covariance_type):
    """True for the models whose components all have the same covariance (EII, EEI, EEE)."""
    return set(_model(covariance_type)) <= {"E", "I"}


def model_formula(model):
    """Sigma_k of an mclust model name, e.g. 'VVE' -> 'lambda_k D A_k D^T'; 'E' and 'V' (1-D)
    -> 'sigma^2', 'sigma_k^2'."""
    if model in ("E", "V"):
        return "sigma^2" if model == "E" else "sigma_k^2"
    volume, shape, orientation = ("lambda" + "_k" * (model[0] == "V"),
                                  {"E": "A", "V": "A_k", "I": ""}[model[1]],
                                  {"E": "D", "V": "D_k", "I": ""}[model[2]])
    if not shape:
        return f"{volume} I"
    return f"{volume} {orientation} {shape} {orientation}^T" if orientation else \
        f"{volume} {shape}"


def _model(covariance_type):
    """mclust's three-letter model of a covariance type, in any dimension (see mclust_name)."""
    model = MCLUST_NAMES.get(covariance_type, covariance_type)
    if model not in MODEL_M_STEPS:
        raise ValueError(f"unknown covariance type {covariance_type!r}; expected one of "
                         f"{ALL_COVARIANCE_TYPES}.")
    return model


def estimate_gaussian_parameters(X, resp, reg_covar, covariance_type, previous=None):
    """M-step: weights, means and covariances from responsibilities.

    N_k = sum_n r_nk,  mu_k = sum_n r_nk x_n / N_k, the sample covariances
    S_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + reg_covar * I (only their diagonals for
    the diag and spherical forms, sum_k N_k S_k / N for tied), and the model's M-step
    (:data:`MODEL_M_STEPS`) constrains them to lambda_k D_k A_k D_k^T. An iterative M-step starts
    at ``previous`` (the covariances of the current parameters; None: a cold start).

    X : (N, D), resp : (N, K). Returns nk (K,) (unnormalised weights), means (K, D) and the
    covariances in the storage form of the type. (The numpy path; the EM estimator gets the
    same statistics from :func:`gmmlab.model.kernels.e_step` and calls
    :func:`parameters_from_statistics`.)
    """
    centre = X.mean(axis=0)
    statistics = sufficient_statistics(X - centre, resp, storage(covariance_type))
    return parameters_from_statistics(*statistics, centre, reg_covar, covariance_type, previous)


def parameters_from_statistics(nk, first, second, centre, reg_covar, covariance_type,
                               previous=None):
    """The M-step from sufficient statistics about a centre c (:func:`sufficient_statistics`):
    means mu_k = c + F_k / N_k, the sample covariances (:func:`sample_covariances`) constrained
    by the model's M-step. Returns nk (K,), means (K, D) and the covariances."""
    nk = nk + 10 * np.finfo(float).eps
    offsets = first / nk[:, np.newaxis]
    form, m_step = MODEL_M_STEPS[_model(covariance_type)]
    sample = sample_covariances(form, nk, offsets, second, reg_covar)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        covariances = m_step(sample, nk, previous)
    return nk, centre + offsets, covariances


def sufficient_statistics(Xc, resp, form):
    """N_k = sum_n r_nk (K,), F_k = sum_n r_nk x_n (K, D) and the second moments of centred
    samples Xc (N, D): Q_k = sum_n r_nk x_n x_n^T (K, D, D) for the full form,
    Q = sum_n x_n x_n^T (D, D) for tied, diag(Q_k) (K, D) for diag and spherical.

    The full form's scatters are one product phi(Xc) R per block of samples (phi: the
    quadratic features, :func:`quadratic_features`)."""
    first = resp.T @ Xc
    if form == "tied":
        return resp.sum(axis=0), first, Xc.T @ Xc
    if form in ("diag", "spherical"):
        return resp.sum(axis=0), first, resp.T @ (Xc * Xc)
    N, D = Xc.shape
    rows, cols = upper_triangle(D)
    packed = np.zeros((len(rows), resp.shape[1]))
    for block in sample_blocks(N, len(rows)):
        packed += quadratic_features(Xc[block]) @ resp[block]
    second = np.empty((resp.shape[1], D, D))
    second[:, rows, cols] = second[:, cols, rows] = packed.T
    return resp.sum(axis=0), first, second


def sample_covariances(form, nk, offsets, second, reg_covar):
    """The sample covariances from N_k (K,), the offsets m_k = F_k / N_k of the means from the
    centre (K, D) and the second moments Q (:func:`sufficient_statistics`):

    full  S_k = Q_k / N_k - m_k m_k^T + reg_covar I                     (K, D, D)
    tied  S = (Q - sum_k N_k m_k m_k^T) / N + reg_covar I                (D, D)
    diag  s_kd = Q_kdd / N_k - m_kd^2 + reg_covar                        (K, D)

    An empty component (N_k ~ 0, m_k = 0) gets reg_covar I, as in the two-pass formula."""
    D = offsets.shape[1]
    if form == "tied":
        covariance = (second - (nk * offsets.T) @ offsets) / nk.sum()
        covariance = (covariance + covariance.T) / 2
        covariance.flat[:: D + 1] += reg_covar
        return covariance
    if form in ("diag", "spherical"):
        return second / nk[:, np.newaxis] - offsets**2 + reg_covar
    covariances = second / nk[:, np.newaxis, np.newaxis]
    covariances -= offsets[:, :, np.newaxis] * offsets[:, np.newaxis, :]
    covariances[:, np.arange(D), np.arange(D)] += reg_covar
    return covariances


@cache
def upper_triangle(n_features):
    """Row and column indices of the upper triangle (i <= j), the order of phi(x) and vech2."""
    return np.triu_indices(n_features)


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


# ------------------------------------------------------------------ mclust's models
#
# Sigma_k = lambda_k D_k A_k D_k^T (Celeux & Govaert 1995). With the scatter matrices
# W_k = N_k S_k, W = sum_k W_k and N = sum_k N_k, the M-step minimises
# sum_k N_k log det Sigma_k + tr(Sigma_k^{-1} W_k) under the model's constraints. Each function
# below takes S in the shape of its form ((K, D, D), tied (D, D), diag and spherical the diagonals
# (K, D)), nk (K,) and the previous covariances (or None), and returns the covariances. Where no
# closed form exists (VEI, VEE, VEV, EVE, VVE) the minimisation alternates over the parts, each
# step lowering the objective, from the previous parameters (so EM never loses likelihood) or
# from mclust's cold start (unit volumes and shapes, D = I), until the objective changes by at
# most INNER_TOL relative (mclust's rule; its tolerance is sqrt(eps)).

INNER_TOL = 1e-10
INNER_MAX_ITER = 500


def _unconstrained(S, nk, previous):
    """VVV, VVI, EEE: S_k itself (tied: already sum_k W_k / N)."""
    return S


def _eii(S, nk, previous):
    """lambda = tr(W) / (N D)."""
    return np.full(len(nk), nk @ S.sum(axis=1) / (nk.sum() * S.shape[1]))


def _vii(S, nk, previous):
    """lambda_k = tr(W_k) / (N_k D)."""
    return S.mean(axis=1)


def _eei(S, nk, previous):
    """lambda A = diag(W) / N."""
    return np.broadcast_to(nk @ S / nk.sum(), S.shape).copy()


def _evi(S, nk, previous):
    """A_k = diag(W_k) / |diag(W_k)|^(1/D), lambda = sum_k |diag(W_k)|^(1/D) / N."""
    W = nk[:, np.newaxis] * S
    volumes = _geometric_mean(W)
    return volumes.sum() / nk.sum() * W / volumes[:, np.newaxis]


def _vei(S, nk, previous):
    """lambda_k and A alternately: see :func:`_variable_volumes_equal_shape`."""
    shape = None if previous is None else previous[0]
    scales, shape = _variable_volumes_equal_shape(nk[:, np.newaxis] * S, nk, shape)
    return scales[:, np.newaxis] * shape


def _vee(S, nk, previous):
    """lambda_k = tr(W_k C^{-1}) / (D N_k) and C = sum_k W_k / lambda_k normalised to det 1,
    alternately (C = D A D^T)."""
    W = nk[:, np.newaxis, np.newaxis] * S
    D = S.shape[-1]

    def update(state):
        scales, _ = state
        shared = _unit_determinant(np.tensordot(1 / scales, W, axes=1))
        scales = np.einsum("kde,ed->k", W, np.linalg.inv(shared)) / (D * nk)
        return (scales, shared), D * nk @ np.log(scales)

    scales = (np.ones(len(nk)) if previous is None
              else np.exp(np.linalg.slogdet(previous)[1] / D))
    scales, shared = _iterate(update, (scales, None))
    return scales[:, np.newaxis, np.newaxis] * shared


def _eve(S, nk, previous):
    """D by plane rotations (:func:`_common_orientation`), then A_k = diag(D^T W_k D)
    normalised to det 1 and lambda = sum_k |diag(D^T W_k D)|^(1/D) / N, alternately."""

    def equal_volume(variances):
        volumes = _geometric_mean(variances)
        return volumes.sum() / nk.sum() * variances / volumes[:, np.newaxis]

    return _common_orientation(S, nk, previous, equal_volume)


def _vve(S, nk, previous):
    """D by plane rotations (:func:`_common_orientation`), then
    lambda_k A_k = diag(D^T W_k D) / N_k, alternately."""
    return _common_orientation(S, nk, previous, lambda variances: variances / nk[:, np.newaxis])


def _eev(S, nk, previous):
    """D_k the eigenvectors of W_k (eigenvalues omega_k, decreasing), lambda A = sum_k omega_k / N.
    """
    eigenvalues, orientations = _eigh_decreasing(nk[:, np.newaxis, np.newaxis] * S)
    shared = np.broadcast_to(eigenvalues.sum(axis=0) / nk.sum(), eigenvalues.shape)
    return _compose(orientations, shared)


def _vev(S, nk, previous):
    """D_k the eigenvectors of W_k; lambda_k and A alternately from their eigenvalues, as VEI."""
    eigenvalues, orientations = _eigh_decreasing(nk[:, np.newaxis, np.newaxis] * S)
    shape = None if previous is None else np.linalg.eigvalsh(previous[0])[::-1]
    scales, shape = _variable_volumes_equal_shape(eigenvalues, nk, shape)
    return _compose(orientations, scales[:, np.newaxis] * shape)


def _evv(S, nk, previous):
    """C_k = W_k / |W_k|^(1/D), lambda = sum_k |W_k|^(1/D) / N."""
    W = nk[:, np.newaxis, np.newaxis] * S
    volumes = np.exp(np.linalg.slogdet(W)[1] / S.shape[-1])
    return volumes.sum() / nk.sum() * W / volumes[:, np.newaxis, np.newaxis]


# mclust's model name -> (storage form, M-step). The scikit-learn names are aliases
# (MCLUST_NAMES): spherical = VII, diag = VVI, tied = EEE, full = VVV.
MODEL_M_STEPS = {
    "EII": ("spherical", _eii),       # lambda I
    "VII": ("spherical", _vii),       # lambda_k I
    "EEI": ("diag", _eei),            # lambda A
    "VEI": ("diag", _vei),            # lambda_k A              (iterative)
    "EVI": ("diag", _evi),            # lambda A_k
    "VVI": ("diag", _unconstrained),  # lambda_k A_k
    "EEE": ("tied", _unconstrained),  # lambda D A D^T
    "VEE": ("full", _vee),            # lambda_k D A D^T        (iterative)
    "EVE": ("full", _eve),            # lambda D A_k D^T        (iterative)
    "VVE": ("full", _vve),            # lambda_k D A_k D^T      (iterative)
    "EEV": ("full", _eev),            # lambda D_k A D_k^T
    "VEV": ("full", _vev),            # lambda_k D_k A D_k^T    (iterative)
    "EVV": ("full", _evv),            # lambda D_k A_k D_k^T
    "VVV": ("full", _unconstrained),  # lambda_k D_k A_k D_k^T
}


def _variable_volumes_equal_shape(values, nk, shape=None):
    """lambda_k = sum_d w_kd / a_d / (D N_k) and a = sum_k w_k / lambda_k normalised to
    prod_d a_d = 1, alternately, for diagonal scatters (or eigenvalues) w (K, D) in decreasing
    order; from ``shape`` (D,) or a = 1. Returns lambda (K,) and a (D,)."""
    D = values.shape[1]

    def scales_given(shape):
        return (values / shape).sum(axis=1) / (D * nk)

    def update(shape):
        scales = scales_given(shape)
        shape = _unit_determinant((values / scales[:, np.newaxis]).sum(axis=0))
        return shape, D * nk @ np.log(scales) + (values / (scales[:, np.newaxis] * shape)).sum()

    shape = _iterate(update, np.ones(D) if shape is None else _unit_determinant(shape))
    return scales_given(shape), shape


def _common_orientation(S, nk, previous, variances_given):
    """Sigma_k = D diag(v_k) D^T with one orientation D: a sweep of plane rotations of D (each
    the exact minimiser of sum_k tr(W_k D diag(1 / v_k) D^T) over the rotation angle in its
    plane, :func:`gmmlab.model.kernels.rotation_sweep`), then
    v = ``variances_given(diag(D^T W_k D))`` (K, D), alternately. Each rotation and each v step
    lowers the objective; the rotations' angles do not depend on the scale of W, so badly
    scaled data (variances 1e-3 .. 1e6) converge as fast as standardized ones (Browne &
    McNicholas' MM steps, which move D by gradient steps sized by the largest eigenvalue of
    W_k, took thousands of iterations there). Cold start: D the
    eigenvectors of W = sum_k W_k (the answer at K = 1)."""
    W = nk[:, np.newaxis, np.newaxis] * S

    def update(state):
        orientation, variances = state
        orientation = kernels.rotation_sweep(orientation, W, 1 / variances)
        projected = np.einsum("dj,kde,ej->kj", orientation, W, orientation)
        variances = variances_given(projected)
        objective = nk @ np.log(variances).sum(axis=1) + (projected / variances).sum()
        return (orientation, variances), objective

    orientation = np.linalg.eigh(W.sum(axis=0) if previous is None else previous[0])[1]
    projected = np.einsum("dj,kde,ej->kj", orientation, W, orientation)
    orientation, variances = _iterate(update, (orientation, variances_given(projected)))
    return _compose(orientation, variances)


def _iterate(update, state):
    """``state, objective = update(state)`` until the objective changes by at most INNER_TOL
    relative, is not finite, or INNER_MAX_ITER times. Returns the last state."""
    previous = np.inf
    for _ in range(INNER_MAX_ITER):
        state, objective = update(state)
        if not np.isfinite(objective) or abs(previous - objective) <= INNER_TOL * (
                1 + abs(objective)):
            break
        previous = objective
    return state


def _geometric_mean(values):
    """(prod_d v_d)^(1/D) over the last axis."""
    return np.exp(np.log(values).mean(axis=-1))


def _unit_determinant(matrix):
    """A positive vector (its product) or symmetric matrix (its determinant) scaled to 1."""
    if matrix.ndim == 1:
        return matrix / _geometric_mean(matrix)
    return matrix / np.exp(np.linalg.slogdet(matrix)[1] / len(matrix))


def _eigh_decreasing(matrices):
    """Eigenvalues (K, D) in decreasing order and the eigenvectors as columns (K, D, D)."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrices)
    return eigenvalues[:, ::-1], eigenvectors[:, :, ::-1]


def _compose(orientations, variances):
    """D_k diag(v_k) D_k^T: (K, D, D), from orientations (K, D, D) or one (D, D) and v (K, D)."""
    return (orientations * variances[:, np.newaxis, :]) @ np.swapaxes(orientations, -1, -2)


def smallest_eigenvalues(covariances, covariance_type):
    """Smallest eigenvalue of every component's covariance: (K,), or (1,) for tied."""
    form = storage(covariance_type)
    if form == "full":
        return np.linalg.eigvalsh(covariances)[:, 0]
    if form == "tied":
        return np.linalg.eigvalsh(covariances)[:1]
    if form == "diag":
        return covariances.min(axis=1)
    return np.asarray(covariances, dtype=float)


def precisions_cholesky(covariances, covariance_type):
    """Cholesky factors of the precisions, from covariances assumed positive definite.

    full / tied: Sigma = L L^T (lower) and U = L^{-T}, so that P = Sigma^{-1} = U U^T;
    diag / spherical: 1 / sqrt(sigma^2). Inverts only the triangular factors (batched).
    """
    form = storage(covariance_type)
    if form in ("full", "tied"):
        stacked = np.atleast_3d(covariances) if form == "full" else covariances[None]
        lower = np.linalg.cholesky(stacked)  # raises LinAlgError unless positive definite
        # L^{-1} is lower triangular; zero the rounding the general inverse leaves above
        factors = np.swapaxes(np.tril(np.linalg.inv(lower)), -1, -2)
        return factors if form == "full" else factors[0]
    return 1.0 / np.sqrt(covariances)


def precisions_cholesky_from_precisions(precisions, covariance_type):
    """Upper factors U with P = U U^T from precision matrices (the ``precisions_init`` form)."""
    form = storage(covariance_type)
    if form == "full":
        return np.stack([_upper_factor(precision) for precision in precisions])
    if form == "tied":
        return _upper_factor(precisions)
    return np.sqrt(precisions)


def _upper_factor(precision):
    """U upper triangular with U U^T = P, from the Cholesky factor of the flipped matrix."""
    flipped = precision[::-1, ::-1]
    return linalg.cholesky(flipped, lower=True)[::-1, ::-1]


def precisions_from_cholesky(precisions_chol, covariance_type):
    """P = U U^T (full, tied) or U^2 (diag, spherical)."""
    form = storage(covariance_type)
    if form == "full":
        return precisions_chol @ precisions_chol.transpose(0, 2, 1)
    if form == "tied":
        return precisions_chol @ precisions_chol.T
    return precisions_chol**2


def covariances_from_cholesky(precisions_chol, covariance_type):
    """Sigma = (U U^T)^{-1} = U^{-T} U^{-1}, by triangular solves (for ``precisions_init``)."""
    form = storage(covariance_type)
    if form in ("full", "tied"):
        stacked = precisions_chol if form == "full" else precisions_chol[None]
        D = stacked.shape[-1]
        inverse = np.stack(
            [linalg.solve_triangular(U, np.eye(D), lower=False) for U in stacked]
        )
        covariances = inverse.transpose(0, 2, 1) @ inverse
        return covariances if form == "full" else covariances[0]
    return 1.0 / precisions_chol**2


def log_det_cholesky(precisions_chol, covariance_type, n_features):
    """log det(U) = -1/2 log det(Sigma) per component: (K,), or a scalar for tied."""
    form = storage(covariance_type)
    if form == "full":
        return np.log(np.diagonal(precisions_chol, axis1=1, axis2=2)).sum(axis=1)
    if form == "tied":
        return np.log(np.diag(precisions_chol)).sum()
    if form == "diag":
        return np.log(precisions_chol).sum(axis=1)
    return n_features * np.log(precisions_chol)


def estimate_log_gaussian_prob(X, means, precisions_chol, covariance_type):
    """E-step densities: log N(x_n | mu_k, Sigma_k) for every sample and component, (N, K).

    log N = -1/2 (D log 2 pi + (x_n - mu_k)^T P_k (x_n - mu_k)) + log det U_k, the squared
    Mahalanobis distances computed per block of samples as matrix products over all components
    at once. X is first centred on the mean of the means (distances are shift-invariant), which
    keeps the cancellation in the expanded quadratic forms small.
    """
    form = storage(covariance_type)
    N, D = X.shape
    centre = means.mean(axis=0)
    means = means - centre
    mahalanobis = _MAHALANOBIS[form]
    log_prob = np.empty((N, means.shape[0]))
    for block in sample_blocks(N, D * (D + 1) // 2 + means.shape[0]):
        log_prob[block] = mahalanobis(X[block] - centre, means, precisions_chol)
    np.maximum(log_prob, 0.0, out=log_prob)  # rounding can leave tiny negative distances
    log_prob *= -0.5
    log_prob += log_det_cholesky(precisions_chol, covariance_type, D) - 0.5 * D * np.log(2 * np.pi)
    return log_prob


def e_step_statistics(X, weights, means, precisions_chol, covariance_type, centre=None):
    """The compiled E-step (:func:`gmmlab.model.kernels.e_step`): log p(x_n) (N,), the
    responsibilities (N, K) and, when ``centre`` (D,) is given, the sufficient statistics about
    it as :func:`sufficient_statistics` returns them (else None), in one pass over X.

    log p(x_n) = log sum_k pi_k N(x_n | mu_k, Sigma_k), the densities from the precisions'
    Cholesky factors U_k: log N = log det U_k - D/2 log 2 pi - 1/2 ||(x_n - mu_k)^T U_k||^2."""
    N, D = X.shape
    K = len(means)
    form = storage(covariance_type)
    factors, scales = np.empty((0, D, D)), np.empty((0, D))
    if form == "full":
        factors = precisions_chol
    elif form == "tied":
        factors = precisions_chol[np.newaxis]
    else:
        scales = (precisions_chol if form == "diag"
                  else np.repeat(precisions_chol, D).reshape(K, D))
    with np.errstate(divide="ignore"):  # a zero weight (weights_init) has log -inf
        constants = (np.log(weights) + log_det_cholesky(precisions_chol, covariance_type, D)
                     - 0.5 * D * np.log(2 * np.pi))
    kind = 0 if centre is None else kernels.SECOND_MOMENTS[form]
    log_norm, resp, counts, first = np.empty(N), np.empty((N, K)), np.empty(K), np.empty((K, D))
    second_full = np.empty(((K if kind == 2 else 1 if kind == 3 else 0), D, D))
    second_diag = np.empty((K if kind == 1 else 0, D))
    kernels.e_step(np.ascontiguousarray(X), np.ascontiguousarray(means),
                   np.ascontiguousarray(factors), np.ascontiguousarray(scales), constants, kind,
                   log_norm, resp, counts, first, second_full, second_diag,
                   np.zeros(D) if centre is None else centre)
    if centre is None:
        return log_norm, resp, None
    second = second_diag if kind == 1 else second_full if kind == 2 else second_full[0]
    return log_norm, resp, (counts, first, second)


def _mahalanobis_full(X, means, precisions_chol):
    """(x - mu_k)^T P_k (x - mu_k) = vech2(P_k) . phi(x) - 2 (P_k mu_k) . x + mu_k^T P_k mu_k."""
    D = X.shape[1]
    precisions = precisions_from_cholesky(precisions_chol, "full")
    rows, cols = upper_triangle(D)
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
    form = storage(covariance_type)
    if form == "full":
        return np.asarray(covariances)
    if form == "tied":
        return np.broadcast_to(covariances, (n_components, n_features, n_features)).copy()
    variances = np.asarray(covariances)
    if form == "spherical":
        variances = np.repeat(variances[:, np.newaxis], n_features, axis=1)
    return variances[:, :, np.newaxis] * np.eye(n_features)
