"""mclust's fourteen covariance models in the EM estimator: monotone EM, M-steps that are
maxima (checked by a general-purpose optimiser), reductions and aliases, singularities, and
restarts from distinct starts. (Parity with scikit-learn for the four shared names is in
test_em.py, with R's mclust for all fourteen in test_mclust.py.)"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg, optimize
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gmmlab import ConvergenceWarning, EMGaussianMixture, SingularCovarianceError
from gmmlab.datasets import ancestor_sample, load_dataset, random_truth
from gmmlab.model import gaussian

MODELS = gaussian.MCLUST_MODELS
ALL_TYPES = gaussian.COVARIANCE_TYPES + MODELS


def fit(X, n_components, covariance_type, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return EMGaussianMixture(n_components, covariance_type=covariance_type,
                                 **options).fit(X)


# ------------------------------------------------------------- monotone EM


@given(
    seed=st.integers(0, 2**31 - 1),
    n_samples=st.integers(8, 60),
    n_features=st.integers(1, 3),
    n_components=st.integers(1, 4),
    covariance_type=st.sampled_from(ALL_TYPES),
    init_params=st.sampled_from(["kmeans", "k-means++", "random", "random_from_data"]),
)
@settings(max_examples=300, deadline=None)
def test_log_likelihood_never_decreases(seed, n_samples, n_features, n_components,
                                        covariance_type, init_params):
    """Over random data and starts, for every model: the log-likelihood after each iteration is
    at least the one before (up to rounding), the responsibilities are probabilities."""
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n_samples, n_features)) * rng.uniform(0.1, 10, n_features)
    X[: n_samples // 2] += rng.uniform(-5, 5, n_features)
    try:
        model = fit(X, n_components, covariance_type, reg_covar=0.0, tol=0.0, max_iter=30,
                    init_params=init_params, random_state=seed, singular="stop",
                    singular_tol=1e-6)
    except SingularCovarianceError as error:
        assert error.iteration == 0  # 'stop' can only raise when the start is degenerate
        return
    history = model.log_likelihood_history_
    assert np.all(np.isfinite(history))
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[:-1]).clip(1))
    resp = model.predict_proba(X)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.all(resp >= 0)
    assert model.covariances_.shape == {
        "full": (n_components, n_features, n_features), "tied": (n_features, n_features),
        "diag": (n_components, n_features), "spherical": (n_components,),
    }[gaussian.storage(covariance_type)]


# ------------------------------------------------------------- the EM solution is a maximum


def small_data(n_features):
    truth = random_truth(2, n_features, separation=2.0, covariance="full", seed=n_features)
    return ancestor_sample(truth.weights, truth.means, truth.covariances, 40 * n_features,
                           seed=1)[0]


class Parameterisation:
    """Sigma_k = lambda_k D_k diag(a_k) D_k^T around a fitted model, unconstrained: log volumes,
    log shapes with sum 0, rotations expm(skew) of the fitted orientations, one per component
    for V, one shared for E, none for I; weights by softmax; means free. Written apart from
    gmmlab's M-steps, which it checks."""

    def __init__(self, model):
        self.name = model.covariance_type
        K, D = model.means_.shape
        self.K, self.D = K, D
        covariances = gaussian.full_covariances(model.covariances_, self.name, K, D)
        volume, shape, orientation = self.name
        if orientation == "I":
            bases = np.broadcast_to(np.eye(D), (K, D, D))
        elif orientation == "E":
            bases = np.broadcast_to(np.linalg.eigh(covariances[0])[1], (K, D, D))
        else:
            bases = np.linalg.eigh(covariances)[1][:, :, ::-1]  # decreasing eigenvalues
        self.bases = bases
        variances = np.einsum("kdj,kde,kej->kj", bases, covariances, bases)
        self.log_volumes = np.log(variances).mean(axis=1)
        self.log_shapes = np.log(variances) - self.log_volumes[:, np.newaxis]
        self.log_weights = np.log(model.weights_)
        self.means = model.means_
        self.copies = {"E": 1, "V": K, "I": 0}
        self.sizes = dict(weights=K - 1, means=K * D, volumes=self.copies[volume],
                          shapes=self.copies[shape] * (D - 1),
                          rotations=self.copies[orientation] * D * (D - 1) // 2)

    def n_free(self):
        return sum(self.sizes.values())

    def unpack(self, theta):
        K, D = self.K, self.D
        parts, start = {}, 0
        for name, size in self.sizes.items():
            parts[name] = theta[start : start + size]
            start += size
        logits = self.log_weights - self.log_weights[-1]
        logits[:-1] += parts["weights"]
        weights = np.exp(logits - logsumexp(logits))
        means = self.means + parts["means"].reshape(K, D)
        log_volumes = self.log_volumes + _per_component(parts["volumes"], K, 1)[:, 0]
        steps = _per_component(parts["shapes"], K, D - 1)
        log_shapes = self.log_shapes + np.column_stack([steps, -steps.sum(axis=1)])
        angles = _per_component(parts["rotations"], K, D * (D - 1) // 2)
        rows, cols = np.triu_indices(D, 1)
        covariances = np.empty((K, D, D))
        for k in range(K):
            skew = np.zeros((D, D))
            skew[rows, cols] = angles[k]
            orientation = self.bases[k] @ linalg.expm(skew - skew.T)
            variances = np.exp(log_volumes[k] + log_shapes[k])
            covariances[k] = (orientation * variances) @ orientation.T
        return weights, means, covariances

    def log_likelihood(self, X, theta):
        weights, means, covariances = self.unpack(theta)
        densities = np.column_stack([
            multivariate_normal(means[k], covariances[k]).logpdf(X) for k in range(self.K)])
        return float(logsumexp(densities + np.log(weights), axis=1).sum())


def _per_component(values, n_components, width):
    """(K, width) from K copies, one shared copy, or none (zeros)."""
    values = np.asarray(values).reshape(-1, width) if width else np.zeros((1, 0))
    if len(values) == 0:
        return np.zeros((n_components, width))
    return np.broadcast_to(values, (n_components, width))


@pytest.mark.parametrize("n_features", [2, 3])
@pytest.mark.parametrize("model_name", MODELS)
def test_em_solution_is_a_local_maximum_a_general_optimiser_cannot_improve(model_name,
                                                                           n_features):
    """EM to convergence on small data (80 x 2, 120 x 3, K = 2); BFGS over an unconstrained
    parameterisation of the model, started at the EM solution, gains at most 1e-6 in
    log-likelihood; the parameterisation has as many free parameters as mclust counts."""
    X = small_data(n_features)
    model = fit(X, 2, model_name, reg_covar=0.0, tol=1e-13, max_iter=20_000, n_init=3,
                random_state=0)
    assert model.converged_
    parameterisation = Parameterisation(model)
    assert parameterisation.n_free() == gaussian.n_parameters(2, n_features, model_name)
    at_em = parameterisation.log_likelihood(X, np.zeros(parameterisation.n_free()))
    assert at_em == pytest.approx(model.score(X) * len(X), rel=1e-10)
    result = optimize.minimize(lambda theta: -parameterisation.log_likelihood(X, theta),
                               np.zeros(parameterisation.n_free()), method="BFGS",
                               options={"gtol": 1e-9, "maxiter": 2000})
    gain = -result.fun - at_em
    print(f"{model_name} D={n_features}: log-likelihood {at_em:.6f}, optimiser gain {gain:.1e}")
    assert gain <= 1e-6


def test_the_optimiser_check_finds_a_point_that_is_not_a_maximum():
    """The check above can fail: after 2 EM iterations from random responsibilities (far from
    converged) ten BFGS iterations gain more than 1e-2."""
    X = small_data(2)
    model = fit(X, 2, "VVE", reg_covar=0.0, tol=0.0, max_iter=2, init_params="random",
                random_state=0)
    parameterisation = Parameterisation(model)
    at_start = parameterisation.log_likelihood(X, np.zeros(parameterisation.n_free()))
    result = optimize.minimize(lambda theta: -parameterisation.log_likelihood(X, theta),
                               np.zeros(parameterisation.n_free()), method="BFGS",
                               options={"maxiter": 10})
    assert -result.fun - at_start > 1e-2


# ------------------------------------------------------------- reductions and aliases


@pytest.mark.parametrize("model_name", MODELS)
def test_in_one_dimension_every_model_is_e_or_v(model_name):
    """In 1-D only the volume is left: from the same start, E** models fit as EII, V** as VII."""
    X = load_dataset("acidity").X
    settings_ = dict(reg_covar=0.0, tol=1e-10, max_iter=5000, random_state=0)
    reference = fit(X, 3, "EII" if model_name[0] == "E" else "VII", **settings_)
    model = fit(X, 3, model_name, **settings_)
    assert gaussian.mclust_name(model_name, 1) == model_name[0]
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-6)
    assert model.score(X) == pytest.approx(reference.score(X), rel=1e-9)


@pytest.mark.parametrize("alias, model_name", gaussian.MCLUST_NAMES.items())
def test_scikit_learn_names_are_aliases(alias, model_name):
    X = load_dataset("faithful").X
    ours, theirs = (fit(X, 3, name, random_state=1, n_init=2) for name in (alias, model_name))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name))
    assert ours.bic(X) == theirs.bic(X)


@pytest.mark.parametrize("model_name", MODELS)
def test_fitted_covariances_obey_the_model_constraints(model_name):
    """Volumes det(Sigma_k)^(1/D), shapes (sorted eigenvalues / volume) and orientations equal
    across components exactly where the model's letter is E; diagonal for I."""
    X = load_dataset("iris").X
    model = fit(X, 3, model_name, random_state=0)
    covariances = gaussian.full_covariances(model.covariances_, model_name, 3, 4)
    eigenvalues, eigenvectors = np.linalg.eigh(covariances)
    volumes = np.exp(np.log(eigenvalues).mean(axis=1))
    shapes = eigenvalues / volumes[:, np.newaxis]
    volume, shape, orientation = model_name

    def equal(values):
        return np.allclose(values, values[0], rtol=1e-6, atol=1e-9)

    assert equal(volumes) == (volume == "E")
    assert equal(shapes) == (shape in "EI")
    if orientation == "I":
        assert np.all(covariances[:, ~np.eye(4, dtype=bool)] == 0)
    else:  # one orientation: every covariance is diagonal in the first one's eigenvectors
        rotated = np.einsum("dj,kde,ei->kji", eigenvectors[0], covariances, eigenvectors[0])
        off_diagonal = np.abs(rotated[:, ~np.eye(4, dtype=bool)]).max()
        assert (off_diagonal < 1e-8 * np.abs(rotated).max()) == (orientation == "E")


# Models whose covariance is unconstrained at K = 1 (lambda D A D^T with D, A free) but whose
# M-step iterates or is written differently from the sample covariance.
UNCONSTRAINED_AT_ONE = ("VEE", "EVE", "VVE", "EEV", "VEV", "EVV")


def badly_scaled_data(n_samples=569, seed=0):
    """wdbc-like data: N = 569 draws of 6 correlated features whose standard deviations run
    from 0.05 to 2500 (wdbc's first six measurements span 0.014 to 352), from a known
    covariance (random correlation, log-spaced scales)."""
    rng = np.random.default_rng(seed)
    orientation = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    correlation = orientation @ np.diag([3.0, 1.5, 1.0, 0.5, 0.3, 0.1]) @ orientation.T
    scales = np.geomspace(0.05, 2500, 6) / np.sqrt(np.diag(correlation))
    return rng.multivariate_normal(np.zeros(6), correlation * np.outer(scales, scales),
                                   n_samples)


@pytest.mark.parametrize("model_name", UNCONSTRAINED_AT_ONE)
def test_at_one_component_every_orientation_model_is_the_sample_covariance(model_name):
    """At K = 1 the maximum of every model with a free orientation is EEE's closed form, the
    sample covariance S: on badly scaled data (variances 2.5e-3 .. 6.25e6) the fit equals
    EEE,1 to 1e-8 relative in log-likelihood and covariance, and so does the M-step alone
    started from a covariance far from S (another orientation, eigenvalues 1 .. 1e3), which
    exercises the iterations rather than the cold start. (Before the plane-rotation update
    EVE and VVE stopped 1.9 nats below after 200 EM iterations on such data.)"""
    X = badly_scaled_data()
    reference = fit(X, 1, "EEE", reg_covar=0.0, tol=1e-10)
    model = fit(X, 1, model_name, reg_covar=0.0, tol=1e-10, max_iter=50)
    expected = reference.score(X)
    assert abs(model.score(X) - expected) <= 1e-8 * abs(expected)
    covariance = reference.covariances_
    assert np.abs(model.covariances_[0] - covariance).max() <= 1e-8 * np.abs(covariance).max()
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 6)))[0]
    previous = (rotation @ np.diag(np.geomspace(1, 1e3, 6)) @ rotation.T)[np.newaxis]
    m_step = gaussian.MODEL_M_STEPS[model_name][1]
    warm = m_step(covariance[np.newaxis], np.array([float(len(X))]), previous)
    assert np.abs(warm[0] - covariance).max() <= 1e-8 * np.abs(covariance).max()


# ------------------------------------------------------------- singularities


@pytest.mark.parametrize("model_name", MODELS)
def test_data_on_a_line_are_singular_for_the_models_with_an_orientation(model_name):
    """All points on y = 2x: a covariance with a free orientation is singular (the shared one
    of EEE is named as such; re-seeding cannot help); axis-aligned models are not."""
    X = np.column_stack([np.arange(10.0), 2 * np.arange(10.0)])
    if model_name[2] == "I":
        assert np.isfinite(fit(X, 2, model_name, reg_covar=0.0).score(X))
        return
    with pytest.raises(SingularCovarianceError, match="at initialisation") as caught:
        fit(X, 2, model_name, reg_covar=0.0)
    assert (caught.value.component is None) == (model_name == "EEE")
    with pytest.raises(SingularCovarianceError, match="data covariance itself is singular"):
        fit(X, 2, model_name, reg_covar=0.0, singular="reset")


@pytest.mark.parametrize("model_name", ["VVE", "VVV"])
def test_a_component_pulled_onto_a_line_collapses_and_reg_covar_prevents_it(model_name):
    """A blob and six points on a line (test_em's case): with variable volume and shape EM pulls
    a component onto the line, 'stop' keeps the last proper parameters; reg_covar = 1e-3 keeps
    it off."""
    rng = np.random.RandomState(0)
    t = np.linspace(-1, 1, 6)
    X = np.vstack([rng.standard_normal((40, 2)), np.column_stack([t + 3, 2 * t + 3])])
    start = dict(weights_init=[0.8, 0.2], means_init=[[0.0, 0.0], [3.0, 3.0]],
                 precisions_init=[np.eye(2), np.linalg.inv([[1.0, 0.5], [0.5, 4.0]])])
    stopped = fit(X, 2, model_name, reg_covar=0.0, singular="stop", **start)
    assert stopped.collapse_["component"] == 1
    assert stopped.score(X) * len(X) == pytest.approx(stopped.collapse_["log_likelihood"])
    floored = fit(X, 2, model_name, reg_covar=1e-3, max_iter=500, **start)
    assert floored.converged_ and floored.collapse_ is None
    assert np.linalg.eigvalsh(floored.covariances_).min() >= 1e-3


# ------------------------------------------------------------- distinct restarts


def test_restarts_start_from_distinct_partitions():
    """Old Faithful, K = 3, 5 restarts: five different starting log-likelihoods (a repeated
    k-means partition would repeat one)."""
    X = load_dataset("faithful").X
    model = fit(X, 3, "VVV", n_init=5, random_state=0)
    assert model.n_distinct_starts_ == 5
    starts = [history[0] for history in model.restart_histories_]
    assert len(set(starts)) == 5


def test_restarts_stop_when_no_new_partition_turns_up():
    """Into two groups every k-means start of Old Faithful ends in the same partition: 10 draws
    per restart asked for find no second one, so one EM run, whatever n_init; a start given
    by weights_init, means_init and precisions_init is one start too."""
    X = load_dataset("faithful").X
    model = fit(X, 2, "VVV", n_init=4, random_state=0)
    assert model.n_distinct_starts_ == len(model.restart_histories_) == 1
    given = dict(weights_init=model.weights_, means_init=model.means_,
                 precisions_init=model.precisions_)
    assert fit(X, 2, "VVV", n_init=4, **given).n_distinct_starts_ == 1
    # Soft (random) starts never repeat.
    assert fit(X, 2, "VVV", n_init=4, init_params="random", random_state=0,
               max_iter=5).n_distinct_starts_ == 4


# ------------------------------------------------------------- backends


def test_em_backend_fits_every_model_and_the_others_name_what_they_lack():
    from gmmlab import backends
    from gmmlab.model import metrics

    X = load_dataset("faithful").X
    for model_name in MODELS:
        result = backends.fit("em", X, 3, model_name, seed=0)
        assert result.status == "ok" and result.covariances.shape == (3, 2, 2), model_name
        assert result.diagnostics["n_distinct_starts"] == 1
        model = fit(X, 3, model_name, random_state=0)
        criteria = metrics.information_criteria(X, result.weights, result.means,
                                                result.covariances, model_name)
        assert criteria["bic"] == pytest.approx(model.bic(X), rel=1e-12)
    for name in ("sklearn", "sklearn_vb", "pymc"):
        with pytest.raises(backends.BackendError, match=rf"backend '{name}' fits the covariance "
                           r"types \['full', 'tied', 'diag', 'spherical'\], not 'VEV'; "
                           r"backend=mclust fits all of mclust's models, and so does backend=em"):
            backends.check(name, "VEV")
