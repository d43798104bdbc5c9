"""The from-scratch EM estimator against scikit-learn, closed forms and its own invariants."""

import inspect
import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

from gmmlab import ConvergenceWarning, EMGaussianMixture, SingularCovarianceError
from gmmlab.datasets import ancestor_sample, load_dataset, random_truth

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


@parametrize_with_checks([EMGaussianMixture()])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def synthetic_5d():
    truth = random_truth(4, 5, separation=2.5, covariance="full", seed=3)
    return ancestor_sample(truth.weights, truth.means, truth.covariances, 800, seed=4)[0]


def shared_start(X, n_components, covariance_type, seed=0):
    """Deliberately imperfect initial parameters, as sklearn itself would store them."""
    reference = GaussianMixture(n_components, covariance_type=covariance_type, max_iter=2,
                                random_state=seed, init_params="random_from_data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(X)
    return dict(weights_init=reference.weights_, means_init=reference.means_,
                precisions_init=reference.precisions_)


def relative_error(actual, expected):
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("data, n_components", [("faithful", 2), ("faithful", 3),
                                                 ("synthetic_5d", 4)])
def test_parity_with_sklearn_from_identical_start(request, data, n_components, covariance_type):
    X = request.getfixturevalue("faithful") if data == "faithful" else synthetic_5d()
    start = shared_start(X, n_components, covariance_type)
    settings_ = dict(covariance_type=covariance_type, tol=0, max_iter=40, reg_covar=1e-6, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = EMGaussianMixture(n_components, **settings_).fit(X)
        theirs = GaussianMixture(n_components, **settings_).fit(X)
    assert ours.n_iter_ == theirs.n_iter_ == 40
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert relative_error(getattr(ours, name), getattr(theirs, name)) < 1e-8, name
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-8)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-8)
    assert np.allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-8)
    assert ours.bic(X) == pytest.approx(theirs.bic(X), rel=1e-8)
    assert ours.aic(X) == pytest.approx(theirs.aic(X), rel=1e-8)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-8)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-8)


def test_history_records_the_log_likelihood_after_every_iteration(faithful):
    X = faithful
    model = EMGaussianMixture(2, n_init=3, random_state=1, tol=1e-8).fit(X)
    history = model.log_likelihood_history_
    assert len(history) == model.n_iter_ + 1
    assert history[-1] == pytest.approx(model.score(X) * len(X), rel=1e-12)
    assert history[-2] == pytest.approx(model.lower_bound_ * len(X), rel=1e-12)
    # Every k-means start on Old Faithful ends in one partition into 2: one distinct start.
    assert len(model.restart_histories_) == model.n_distinct_starts_ == 1
    assert any(h is history for h in model.restart_histories_)
    # The classic maximum-likelihood fit of Old Faithful with two full components.
    assert history[-1] == pytest.approx(-1130.264, abs=1e-3)


# The log-likelihood never decreases: tests/test_covariance_models.py, for every type.


# ------------------------------------------------------------- singularity


def duplicated_points():
    """Three distinct values, each repeated: more components than distinct points collapse."""
    return np.repeat([[0.0], [1.0], [5.0]], 4, axis=0)


def points_on_a_line():
    """A 2-D blob and, overlapping its edge, six points exactly on the line y = 2x - 3."""
    rng = np.random.RandomState(0)
    blob = rng.standard_normal((40, 2))
    t = np.linspace(-1, 1, 6)
    return np.vstack([blob, np.column_stack([t + 3, 2 * t + 3])])


def line_start(X):
    """A non-degenerate start: one component on the blob, one broad one on the line's centre.

    EM then pulls the second component onto the line over several iterations (the collapse
    happens at iteration 8, not at once).
    """
    return dict(weights_init=[0.8, 0.2], means_init=[[0.0, 0.0], [3.0, 3.0]],
                precisions_init=[np.eye(2), np.linalg.inv([[1.0, 0.5], [0.5, 4.0]])])


def test_singular_error_names_component_iteration_and_eigenvalue():
    X = points_on_a_line()
    model = EMGaussianMixture(2, reg_covar=0.0, **line_start(X))
    with pytest.raises(SingularCovarianceError, match=r"component 1 became singular at "
                       r"iteration \d+: smallest eigenvalue") as caught:
        model.fit(X)
    assert caught.value.component == 1
    assert caught.value.iteration == 8
    assert caught.value.min_eigenvalue <= 1e-10 * X.var(axis=0).mean()


def test_singular_stop_keeps_last_non_degenerate_parameters():
    X = points_on_a_line()
    model = EMGaussianMixture(2, reg_covar=0.0, singular="stop", **line_start(X)).fit(X)
    collapse = model.collapse_
    assert collapse["component"] == 1 and collapse["iteration"] == 8
    assert not model.converged_
    assert model.n_iter_ == collapse["iteration"] - 1
    # The kept parameters are proper: positive definite and a finite likelihood, equal to the
    # log-likelihood recorded at the collapse.
    assert np.linalg.eigvalsh(model.covariances_).min() > 1e-10 * X.var(axis=0).mean()
    assert model.score(X) * len(X) == pytest.approx(collapse["log_likelihood"], rel=1e-12)
    assert model.log_likelihood_history_[-1] == pytest.approx(collapse["log_likelihood"])
    assert np.all(np.diff(model.log_likelihood_history_) > 0)
    # The kept parameters are exactly those of a plain run stopped one iteration earlier.
    shorter = EMGaussianMixture(2, reg_covar=0.0, tol=0, max_iter=collapse["iteration"] - 1,
                                **line_start(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        shorter.fit(X)
        # On the way the component's smallest eigenvalue heads to zero.
        eigenvalues = [np.linalg.eigvalsh(EMGaussianMixture(
            2, reg_covar=0.0, tol=0, max_iter=t, **line_start(X)).fit(X).covariances_[1])[0]
            for t in range(1, collapse["iteration"])]
    np.testing.assert_array_equal(shorter.covariances_, model.covariances_)
    assert np.all(np.diff(eigenvalues) < 0)


def test_singular_reset_reseeds_and_goes_on():
    """From the line start the component collapses at iteration 8 (test above); with
    singular='reset' it is re-seeded there and EM goes on: the same path up to the collapse,
    the log-likelihood dropping at the re-seed, then iterations past it to convergence, with
    proper covariances."""
    X = points_on_a_line()
    stopped = EMGaussianMixture(2, reg_covar=0.0, singular="stop", **line_start(X)).fit(X)
    collapse = stopped.collapse_["iteration"]
    model = EMGaussianMixture(2, reg_covar=0.0, singular="reset", max_iter=200, random_state=0,
                              **line_start(X)).fit(X)
    history = model.log_likelihood_history_
    assert model.n_resets_ >= 1 and model.collapse_ is None and model.converged_
    np.testing.assert_array_equal(history[:collapse], stopped.log_likelihood_history_)
    assert model.n_iter_ > collapse + 5 and len(history) == model.n_iter_ + 1
    assert history[collapse] < history[collapse - 1]  # the re-seeded component starts broad
    assert history[-1] > history[collapse]  # and the iterations after it climbed
    assert np.linalg.eigvalsh(model.covariances_).min() > 1e-3 * X.var(axis=0).mean()
    assert model.score(X) * len(X) == pytest.approx(history[-1], rel=1e-12)
    X = duplicated_points()  # collapsed at initialisation: re-seeded before the first step
    model = EMGaussianMixture(4, reg_covar=0.0, singular="reset", max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    assert model.n_resets_ >= 1 and model.n_iter_ >= 1
    assert np.all(np.linalg.eigvalsh(model.covariances_) > 0)
    assert np.isfinite(model.score(X))


def test_duplicated_points_collapse_at_initialisation_with_error_and_stop():
    X = duplicated_points()
    for mode in ("error", "stop"):
        with pytest.raises(SingularCovarianceError, match="at initialisation"):
            EMGaussianMixture(4, reg_covar=0.0, singular=mode, random_state=0).fit(X)


def test_reg_covar_prevents_the_collapse():
    X = points_on_a_line()
    model = EMGaussianMixture(2, reg_covar=1e-3, max_iter=500, **line_start(X)).fit(X)
    assert model.converged_ and model.collapse_ is None
    # The line's component rests on the floor reg_covar puts under its thin direction.
    assert 1e-3 <= np.linalg.eigvalsh(model.covariances_[1]).min() < 2e-3


def test_reset_refuses_when_the_data_themselves_are_singular():
    X = np.column_stack([np.arange(10.0), 2 * np.arange(10.0)])  # all points on one line
    with pytest.raises(SingularCovarianceError, match="data covariance itself is singular"):
        EMGaussianMixture(2, reg_covar=0.0, singular="reset").fit(X)


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad, message", [
    (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]), "NaN"),
    (np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 4.0]]), "infinity"),
    (np.arange(6.0), "Expected 2D array"),
    (np.zeros((2, 3, 1)), "dim 3"),
])
def test_bad_data_is_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        EMGaussianMixture(1).fit(bad)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match="n_samples >= n_components.*n_components = 5, "
                                         "n_samples = 3"):
        EMGaussianMixture(5).fit(np.arange(6.0).reshape(3, 2))


PARAMETER = "The '{}' parameter of EMGaussianMixture must be "


@pytest.mark.parametrize("params, message", [
    (dict(n_components=0), PARAMETER.format("n_components") + r"an int in the range \[1, inf\)\. "
                                                             "Got 0 instead"),
    (dict(n_components=2.0), PARAMETER.format("n_components") + "an int"),
    (dict(covariance_type="ful"), PARAMETER.format("covariance_type") + "a str among"),
    (dict(tol=-1), PARAMETER.format("tol") + r"a float in the range \[0.0, inf\)\. Got -1"),
    (dict(tol=np.nan), PARAMETER.format("tol") + r"a float in the range \[0.0, inf\)\. Got nan"),
    (dict(reg_covar=-1e-6), PARAMETER.format("reg_covar") + r"a float in the range \[0.0, inf\)"),
    (dict(reg_covar=np.nan), PARAMETER.format("reg_covar") + r"a float .* Got nan instead"),
    (dict(reg_covar=np.inf), PARAMETER.format("reg_covar") + r"a float .* Got inf instead"),
    (dict(singular_tol=np.nan), PARAMETER.format("singular_tol") + r"a float .* Got nan"),
    (dict(max_iter=2.5), PARAMETER.format("max_iter") + "an int"),
    (dict(n_init=0), PARAMETER.format("n_init") + "an int in the range"),
    (dict(init_params="kmean"), PARAMETER.format("init_params") + "a str among"),
    (dict(singular="ignore"), PARAMETER.format("singular") + "a str among"),
    (dict(verbose_interval=0), PARAMETER.format("verbose_interval") + "an int in the range"),
    (dict(random_state="0"), PARAMETER.format("random_state") + "an int"),
    (dict(warm_start="yes"), PARAMETER.format("warm_start") + "an instance of 'bool'"),
    (dict(weights_init=[0.5, 0.5]), r"weights_init must have shape \(3,\), got \(2,\)"),
    (dict(weights_init=[0.5, 0.5, 0.5]), "weights_init must be non-negative and sum to 1"),
    (dict(means_init=np.zeros((3, 3))), r"means_init must have shape \(3, 2\), got \(3, 3\)"),
    (dict(precisions_init=np.zeros((3, 2))), r"precisions_init must have shape \(3, 2, 2\)"),
    (dict(precisions_init=-np.stack([np.eye(2)] * 3)), "must be positive definite"),
    (dict(covariance_type="diag", precisions_init=np.zeros((3, 2))), "must be positive"),
])
def test_bad_parameters_are_named(params, message):
    X = load_dataset("tutorial_2d").X
    with pytest.raises(ValueError, match=message):
        EMGaussianMixture(**{"n_components": 3, **params}).fit(X)


def test_the_constructor_takes_every_parameter_of_scikit_learns():
    from sklearn.mixture import GaussianMixture

    theirs = inspect.signature(GaussianMixture).parameters
    ours = inspect.signature(EMGaussianMixture).parameters
    assert list(theirs) == list(ours)[:len(theirs)]
    assert {name: p.default for name, p in theirs.items()} == {
        name: ours[name].default for name in theirs}
    assert set(EMGaussianMixture._parameter_constraints) == set(ours)


def test_verbose_prints_every_verbose_interval_iterations(capsys):
    X = load_dataset("faithful").X
    with pytest.warns(ConvergenceWarning):  # tol=0: it runs all 12 iterations
        EMGaussianMixture(2, tol=0, max_iter=12, verbose=1, verbose_interval=5,
                          random_state=0).fit(X)
    lines = [line for line in capsys.readouterr().out.splitlines() if "iteration" in line]
    assert [line.split(":")[0].strip() for line in lines] == ["iteration 5", "iteration 10"]


# ------------------------------------------------------------- the rest of the API


def test_sample_draws_from_the_fitted_mixture():
    X = load_dataset("tutorial_2d", n_samples=3000).X
    model = EMGaussianMixture(3, random_state=0, n_init=3).fit(X)
    draws, labels = model.sample(200_000)
    assert draws.shape == (200_000, 2)
    np.testing.assert_allclose(np.bincount(labels) / len(labels), model.weights_, atol=5e-3)
    for k in range(3):
        np.testing.assert_allclose(draws[labels == k].mean(axis=0), model.means_[k], atol=0.03)
        np.testing.assert_allclose(np.cov(draws[labels == k].T), model.covariances_[k], atol=0.05)


def test_warm_start_continues_from_the_previous_fit(faithful):
    X = faithful
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = EMGaussianMixture(2, max_iter=3, tol=0, warm_start=True, random_state=0).fit(X)
        first = model.log_likelihood_history_.copy()
        model.fit(X)
    assert model.log_likelihood_history_[0] == pytest.approx(first[-1], rel=1e-12)


def test_fit_predict_equals_fit_then_predict():
    X = load_dataset("stretched_blobs").X
    labels = EMGaussianMixture(3, random_state=2).fit_predict(X)
    assert np.array_equal(labels, EMGaussianMixture(3, random_state=2).fit(X).predict(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_m_step_matches_the_two_pass_formula_even_for_an_empty_component(covariance_type):
    from gmmlab.model import gaussian

    rng = np.random.RandomState(0)
    X = rng.standard_normal((50, 3)) + 40.0  # far from the origin: cancellation would show
    resp = rng.uniform(size=(50, 3))
    resp[:, 2] = 0.0  # an empty component
    resp /= resp.sum(axis=1, keepdims=True)
    nk, means, covariances = gaussian.estimate_gaussian_parameters(X, resp, 1e-3, covariance_type)
    two_pass = np.stack([(resp[:, k] * (X - means[k]).T) @ (X - means[k]) / nk[k]
                         for k in range(3)])
    expected = {
        "full": two_pass + 1e-3 * np.eye(3),
        "tied": (nk[:, None, None] * two_pass).sum(axis=0) / nk.sum() + 1e-3 * np.eye(3),
        "diag": np.diagonal(two_pass, axis1=1, axis2=2) + 1e-3,
        "spherical": np.diagonal(two_pass, axis1=1, axis2=2).mean(axis=1) + 1e-3,
    }[covariance_type]
    np.testing.assert_allclose(covariances, expected, rtol=1e-9, atol=1e-12)
