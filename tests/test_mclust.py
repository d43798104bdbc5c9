"""The mclust backend, and gmmlab's EM cross-checked against R's mclust from the same start.

Needs R with the mclust package and rpy2 (`.ci/run` installs them when it runs as root);
skipped, saying how to get them, otherwise.
"""

import warnings

import numpy as np
import pytest

from gmmlab import backends, gaussian, metrics
from gmmlab.datasets import load_dataset
from gmmlab.em import EMGaussianMixture, SingularCovarianceError

try:
    from gmmlab.backends.mclust import _r, mclust_em

    ro, CONVERTER, _ = _r()
except ImportError as error:
    pytest.skip(f"{error}; then run `make test` again (the Makefile adds rpy2 when R and mclust "
                "are there)", allow_module_level=True)

pytestmark = pytest.mark.mclust

# Every real data set the package ships (iris: scikit-learn's copy).
REAL_DATA = ("faithful", "faithful_eruptions", "faithful_140", "galaxies", "galaxies_mass",
             "acidity", "enzyme", "iris")


def r_call(code, *args):
    """Evaluate R function ``code`` on numpy arguments."""
    with ro.conversion.localconverter(CONVERTER):
        return ro.r(code)(*args)


def em_from_responsibilities(X, responsibilities, covariance_type, tol, max_iter):
    """gmmlab's EM started at the M-step on ``responsibilities``, without a covariance floor
    (mclust has none)."""
    nk, means, covariances = gaussian.estimate_gaussian_parameters(
        X, responsibilities, 0.0, covariance_type)
    precisions = (np.linalg.inv(covariances) if covariance_type in ("full", "tied")
                  else 1 / covariances)
    model = EMGaussianMixture(responsibilities.shape[1], covariance_type=covariance_type,
                              tol=tol, max_iter=max_iter, reg_covar=0.0,
                              weights_init=nk / nk.sum(), means_init=means,
                              precisions_init=precisions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 runs exactly max_iter
        model.fit(X)
    return model


def differences(model, reference, X):
    """Relative log-likelihood difference and the largest parameter differences (means and
    covariances relative to their largest entry, weights absolute)."""
    K, D = model.means_.shape
    covariances = gaussian.full_covariances(model.covariances_, model.covariance_type, K, D)
    loglik = model.score(X) * len(X)
    return {
        "loglik": abs(loglik - reference["loglik"]) / abs(reference["loglik"]),
        "weights": np.abs(model.weights_ - reference["weights"]).max(),
        "means": np.abs(model.means_ - reference["means"]).max()
        / np.abs(reference["means"]).max(),
        "covariances": np.abs(covariances - reference["covariances"]).max()
        / np.abs(reference["covariances"]).max(),
    }


@pytest.mark.parametrize("covariance_type", gaussian.COVARIANCE_TYPES)
@pytest.mark.parametrize("name", REAL_DATA)
def test_em_equals_mclust_me_from_the_same_responsibilities(name, covariance_type):
    """For K = 1..5 from random responsibilities: the same 20 iterations agree to rounding
    (mclust counts its M-step on the start as the first); run to convergence (mclust's
    relative and gmmlab's absolute tolerance, both 1e-13), the fits agree to 1e-6 in
    log-likelihood and 1e-5 in parameters, their stopping rules being different; a fit that
    becomes singular does so in both."""
    X = load_dataset(name).X
    model_name = gaussian.mclust_name(covariance_type, X.shape[1])
    worst = {20: {}, 100_000: {}}  # printed with `pytest -rP`: the figures of the check
    singular = []
    for K in range(1, 6):
        start = np.random.default_rng(K).dirichlet(np.ones(K), len(X))
        for iterations, tol, bounds in ((20, 0.0, (1e-10, 1e-9)), (100_000, 1e-13, (1e-6, 1e-5))):
            reference = mclust_em(X, model_name, start, tol=tol, max_iter=iterations)
            try:
                model = em_from_responsibilities(X, start, covariance_type, tol,
                                                 iterations - 1 if tol == 0 else iterations)
            except SingularCovarianceError:
                assert not reference["ok"] and "singular" in reference["message"], (K, tol)
                singular.append((K, iterations))
                continue
            assert reference["ok"], (K, tol, reference["message"])
            found = differences(model, reference, X)
            worst[iterations] = {k: max(v, worst[iterations].get(k, 0.0))
                                 for k, v in found.items()}
            assert found["loglik"] < bounds[0], (K, tol, found)
            assert max(found["weights"], found["means"], found["covariances"]) < bounds[1], (
                K, tol, found)
    for iterations, label in ((20, "20 iterations"), (100_000, "converged")):
        print(f"{name} {covariance_type} ({model_name}) K=1..5 {label}: worst "
              + ", ".join(f"{k} {v:.1e}" for k, v in worst[iterations].items())
              + f"; singular in both: {[k for k, i in singular if i == iterations]}")


def test_mclust_backend_reproduces_mclust_on_old_faithful_eee_3():
    """Mclust(faithful, G = 3, modelNames = "EEE"): log-likelihood -1126.326, BIC -2314.316
    (mclust's sign) with 11 parameters. mclust reports the log-likelihood of its last E-step;
    gmmlab's metrics use the returned parameters, whose log-likelihood is mclust's own
    dens() at them."""
    X = load_dataset("faithful").X
    result = backends.fit("mclust", X, 3, "tied")
    assert result.status == "ok" and result.diagnostics["mclust_model"] == "EEE"
    assert result.diagnostics["mclust_loglik"] == pytest.approx(-1126.326, abs=1e-3)
    assert result.diagnostics["mclust_bic"] == pytest.approx(2314.316, abs=1e-3)
    criteria = metrics.information_criteria(X, result.weights, result.means,
                                            result.covariances, "EEE")
    r_density = r_call("function(X, pro, mean, sigma) sum(log(dens(data = X, "
                       "modelName = 'VVV', parameters = list(pro = pro, mean = mean, "
                       "variance = list(modelName = 'VVV', d = nrow(mean), G = ncol(mean), "
                       "sigma = sigma, cholsigma = array(apply(sigma, 3, chol), "
                       "dim(sigma)))))))",
                       X, result.weights, result.means.T,
                       np.ascontiguousarray(result.covariances.transpose(1, 2, 0)))
    assert criteria["loglik"] == pytest.approx(float(r_density[0]), rel=1e-12)
    assert criteria["n_params"] == 11
    assert criteria["bic"] == pytest.approx(-2 * criteria["loglik"] + 11 * np.log(272))


def test_mclust_backend_matches_mclust_bic_table():
    """The backend's BIC (hc start) equals mclustBIC's cell for every model the EM has and
    K = 1..5 on Old Faithful: names and K are mapped right."""
    X = load_dataset("faithful").X
    models = [gaussian.MCLUST_NAMES[t] for t in gaussian.COVARIANCE_TYPES]
    table = np.asarray(r_call("function(X, models) mclustBIC(X, G = 1:5, modelNames = models, "
                              "verbose = FALSE)", X, np.array(models)))
    for j, covariance_type in enumerate(gaussian.COVARIANCE_TYPES):
        for K in range(1, 6):
            result = backends.fit("mclust", X, K, covariance_type)
            assert -result.diagnostics["mclust_bic"] == pytest.approx(table[K - 1, j],
                                                                     rel=1e-10)


def test_an_mclust_na_cell_is_a_failed_fit_with_mclust_reason():
    """acidity, K = 5, from Dirichlet responsibilities of seed 0: a variance collapses and
    mclust gives NA (the cross-check shows gmmlab's EM without a floor collapsing alike)."""
    X = load_dataset("acidity").X
    result = backends.fit("mclust", X, 5, "full", seed=0, start="random")
    assert result.status == "failed" and result.weights is None
    assert "a covariance became singular (mclust's NA)" in result.message
    assert result.singular["backend_error"] == result.message


def test_parameter_counts_equal_mclust_for_every_model():
    for D in range(1, 5):
        for model in gaussian.MCLUST_MODELS if D > 1 else ("E", "V"):
            counts = r_call("function(m, d) sapply(1:5, function(G) nMclustParams(m, d, G))",
                            model, D)
            assert [gaussian.n_parameters(K, D, model) for K in range(1, 6)] == list(
                np.asarray(counts, dtype=int)), (model, D)
