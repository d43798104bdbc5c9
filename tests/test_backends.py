"""All four backends on the same data: one interface, agreeing estimates, honest failures."""

import sys

import numpy as np
import pytest

from gmmlab import backends
from gmmlab.datasets import load_dataset
from gmmlab.model import metrics

# Maximum-likelihood backends run to tight convergence so that they meet at the same optimum.
TIGHT = {"tol": 1e-8, "max_iter": 2000, "n_init": 5}
CASES = [("tutorial_1d", 3), ("faithful", 2)]


@pytest.fixture(scope="module", params=CASES, ids=[name for name, _ in CASES])
def case(request):
    name, K = request.param
    data = load_dataset(name)
    fits = {b: backends.fit(b, data.X, K, "full", seed=0, **TIGHT)
            for b in ("em", "sklearn", "sklearn_vb")}
    return data, K, fits


def test_maximum_likelihood_backends_agree(case):
    data, K, fits = case
    em, sk = fits["em"], fits["sklearn"]
    assert em.status == sk.status == "ok"
    aligned = metrics.align(sk, em)
    assert aligned["weights"] < 1e-6 and aligned["means"] < 1e-6
    assert aligned["covariances"] < 1e-6
    assert em.converged and em.n_iter == len(em.loglik_history) - 1
    assert em.covariances.shape == (K, data.n_features, data.n_features)


def test_variational_backend_is_close_to_the_mle_under_weak_priors(case):
    data, K, fits = case
    aligned = metrics.align(fits["sklearn_vb"], fits["em"])
    # Stated tolerance: weights 0.01 (L1), means 0.01 (RMSE), covariances 5 % (rel. Frobenius).
    assert aligned["weights"] < 0.01 and aligned["means"] < 0.01
    assert aligned["covariances"] < 0.05


@pytest.mark.pymc
def test_pymc_posterior_mean_is_within_few_posterior_sds_of_the_mle(case):
    data, K, fits = case
    result = backends.fit("pymc", data.X, K, "full", seed=1)  # 4 chains x (1000 + 1000)
    assert result.status == "ok", result.message
    mle = fits["em"]
    aligned = metrics.align(result, mle)
    order = np.array(aligned["permutation"])  # pymc component for each MLE component
    z_means = np.abs(result.means[order] - mle.means) / result.draws["means_sd"][order]
    z_weights = np.abs(result.weights[order] - mle.weights) / result.draws["weights_sd"][order]
    assert z_means.max() < 3 and z_weights.max() < 3
    diagnostics = result.diagnostics
    assert diagnostics["max_rhat"] <= 1.01 and diagnostics["divergences"] == 0
    assert diagnostics["ordered"] and diagnostics["min_ess_bulk"] > 400
    assert result.idata["log_likelihood"]["x"].shape == (4, 1000, data.n_samples)
    assert result.fit_seconds >= diagnostics["sampling_seconds"] > 0


def test_em_collapse_is_reported_as_singular_and_keeps_parameters():
    rng = np.random.RandomState(0)
    t = np.linspace(2, 4, 5)
    X = np.vstack([rng.standard_normal((30, 2)), np.column_stack([t, 2 * t - 3])])  # + a line
    result = backends.fit("em", X, 3, seed=0, reg_covar=0.0, singular="stop")
    assert result.status == "singular"
    assert result.message == "component 2 collapsed at iteration 7"
    assert result.singular["collapse"]["iteration"] == 7
    assert result.n_iter == 6 and len(result.loglik_history) == 7
    assert np.linalg.eigvalsh(result.covariances).min() > 0
    failed = backends.fit("em", X, 3, seed=0, reg_covar=0.0)  # singular='error'
    assert failed.status == "failed" and "at iteration 7" in failed.message
    assert failed.singular["backend_error"].startswith("SingularCovarianceError")
    assert failed.weights is None


def test_sklearn_collapse_message_is_recorded():
    X = np.repeat([[0.0, 0.0], [1.0, 1.0]], 5, axis=0)
    result = backends.fit("sklearn", X, 3, seed=0, reg_covar=0.0)
    assert result.status == "failed"
    assert "ill-defined empirical covariance" in result.singular["backend_error"]


def test_bad_requests_raise_before_fitting():
    X = load_dataset("tutorial_1d").X
    with pytest.raises(ValueError, match=r"unknown backend 'stan'; available: \['em'"):
        backends.fit("stan", X, 2)
    with pytest.raises(ValueError, match="backend 'em'.*unexpected keyword argument 'n_draws'"):
        backends.fit("em", X, 2, n_draws=10)
    with pytest.raises(ValueError, match=r"backend 'sklearn' fits the covariance types \['full', "
                                         r"'tied', 'diag', 'spherical'\], not 'EEE' \(mclust's "
                                         r"name for 'tied'\); backend=mclust fits all"):
        backends.fit("sklearn", X, 2, "EEE")


def test_a_simple_backend_function_gets_only_what_it_names_and_is_wrapped():
    """A function naming only X and n_components (no covariance_type: full) that returns a
    mapping: one k-means step, whose parameters the test recomputes."""
    def one_cluster_per_half(X, n_components):
        halves = np.array_split(np.sort(X, axis=0), n_components)
        return {"weights": [len(h) / len(X) for h in halves],
                "means": [h.mean(axis=0) for h in halves],
                "covariances": [np.cov(h.T, bias=True).reshape(1, 1) for h in halves]}
    module = type(sys)("gmmlab_test_plugin")
    module.fit = one_cluster_per_half
    sys.modules["gmmlab_test_plugin"] = module
    X = load_dataset("faithful_eruptions").X
    result = backends.fit("custom", X, 2, target="gmmlab_test_plugin:fit", seed=3)
    low, high = np.sort(X[:, 0])[:136], np.sort(X[:, 0])[136:]
    assert result.status == "ok" and result.covariances.shape == (2, 1, 1)
    assert result.means[:, 0] == pytest.approx([low.mean(), high.mean()])
    assert result.covariances[:, 0, 0] == pytest.approx([low.var(), high.var()])
    with pytest.raises(ValueError, match="has no covariance_type parameter"):
        backends.fit("custom", X, 2, "diag", target="gmmlab_test_plugin:fit")
    with pytest.raises(ValueError, match="backend 'em' takes no target"):
        backends.fit("em", X, 2, target="gmmlab_test_plugin:fit")


def test_mclust_without_r_says_what_to_install(monkeypatch):
    from gmmlab.backends import mclust

    mclust.r_session.cache_clear()
    monkeypatch.setitem(sys.modules, "rpy2.robjects", None)
    result = backends.fit("mclust", load_dataset("faithful").X, 2)
    mclust.r_session.cache_clear()
    assert result.status == "failed"
    assert "apt-get install r-base-core r-cran-mclust" in result.message
    assert "pip install 'gmmlab[r]'" in result.message


def test_pymc_asks_for_an_installed_sampler():
    result = backends.fit("pymc", load_dataset("tutorial_1d").X, 2, sampler="blackjax")
    assert result.status == "failed" and "sampler must be one of" in result.message


@pytest.mark.pymc
@pytest.mark.parametrize("sampler", ["nutpie", "pymc"])
def test_pymc_records_the_tree_depth_cap_and_the_smallest_eigenvalue_of_any_draw(sampler):
    result = backends.fit("pymc", load_dataset("tutorial_1d").X, 2, seed=0, chains=2, tune=60,
                          draws=60, max_treedepth=2, sampler=sampler)
    assert result.status == "ok", result.message
    stats = result.idata["sample_stats"]
    depth, capped = {"nutpie": ("depth", "maxdepth_reached"),
                     "pymc": ("tree_depth", "reached_max_treedepth")}[sampler]
    assert int(stats[depth].max()) == 2  # uncapped, this model's trees go deeper
    share = result.diagnostics["max_treedepth_share"]
    assert share == pytest.approx(float(stats[capped].mean())) and share > 0
    assert result.diagnostics["leapfrog_steps_draws"] == int(stats["n_steps"].sum())
    # the smallest eigenvalue is concave in the covariance: the posterior mean's is no smaller
    X = load_dataset("tutorial_1d").X
    any_draw = result.diagnostics["min_eigenvalue_relative_any_draw"]
    assert 0 < any_draw < result.covariances.min() / X.var()


@pytest.mark.pymc
@pytest.mark.parametrize("n_features, covariance_type, prior", [
    (1, "full", "lkj"), (2, "full", "lkj"), (2, "tied", "lkj"), (2, "diag", "lkj"),
    (2, "spherical", "lkj"), (2, "full", "inverse_wishart"), (3, "full", "lkj"),
    (1, "full", "normal_inverse_wishart"), (2, "full", "normal_inverse_wishart"),
])
def test_marginal_likelihood_equals_the_textbook_mixture(n_features, covariance_type, prior):
    """The hand-written batched log density and PyMC's pm.Mixture / pm.NormalMixture give the
    same model log density at random points of the parameter space, to 1e-10 (relative)."""
    from gmmlab.backends.bayes import build_model

    X = load_dataset("synthetic", n_components=3, n_features=n_features, n_samples=200).X
    models = {likelihood: build_model(X, 3, covariance_type, likelihood=likelihood,
                                      covariance_prior=prior)
              for likelihood in ("marginal", "mixture")}
    logps = {likelihood: model.compile_logp(mode="FAST_COMPILE")  # no Numba compile needed
             for likelihood, model in models.items()}
    rng = np.random.default_rng(0)
    shapes = {name: np.shape(value) for name, value in models["mixture"].initial_point().items()}
    for _ in range(5):  # random points of the unconstrained space
        point = {name: rng.normal(0, 0.5, shape) for name, shape in shapes.items()}
        marginal, textbook = logps["marginal"](point), logps["mixture"](point)
        assert np.isfinite(textbook)
        assert marginal == pytest.approx(textbook, rel=1e-10)


@pytest.mark.pymc
@pytest.mark.slow  # two PyTensor compiles: 113 s of CI's 20-minute budget (make test-slow)
def test_a_compiled_model_is_reused_across_seeds_and_not_across_data():
    from gmmlab.backends import bayes

    bayes._NUTPIE_MODELS.clear()  # earlier tests in this process compiled Old Faithful's model
    tiny = dict(chains=2, tune=50, draws=50, density="pytensor")
    faithful, blobs = load_dataset("faithful").X, load_dataset("stretched_blobs").X
    first = backends.fit("pymc", faithful, 2, seed=0, **tiny)
    again = backends.fit("pymc", faithful, 2, seed=1, **tiny)
    other = backends.fit("pymc", blobs, 2, seed=1, **tiny)
    assert first.status == again.status == other.status == "ok"
    assert first.diagnostics["compile_seconds"] > 0 and other.diagnostics["compile_seconds"] > 0
    assert again.diagnostics["compile_seconds"] == 0.0  # same structure and data
    # each fit saw its own data: means inside the data's range
    for result, X in ((again, faithful), (other, blobs)):
        assert (result.means.min(axis=0) >= X.min(axis=0)).all()
        assert (result.means.max(axis=0) <= X.max(axis=0)).all()


@pytest.mark.pymc
@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_inverse_wishart_prior_draws_match_scipy(covariance_type):
    """Bartlett's construction of the prior against scipy's inverse Wishart, IW(D + 2, S / K)
    for D = 2, K = 3 (Fraley & Raftery's choice); two-sample KS tests on entries and the
    determinant (against IW(D + 3, .) the same draws give p < 1e-45 on every statistic)."""
    import pymc as pm
    import scipy.stats as st

    from gmmlab.backends.bayes import build_model

    X = load_dataset("faithful").X
    model = build_model(X, 3, covariance_type, covariance_prior="inverse_wishart")
    draws = pm.draw(model["covariances"], draws=4000, random_seed=1)[:, 0]
    reference = st.invwishart(df=4, scale=np.cov(X, rowvar=False, bias=True) / 3).rvs(
        4000, random_state=2)
    for statistic in (lambda s: s[:, 0, 0], lambda s: s[:, 0, 1], lambda s: s[:, 1, 1],
                      np.linalg.det):
        assert st.ks_2samp(statistic(draws), statistic(reference)).pvalue > 1e-3


@pytest.mark.pymc
def test_inverse_gamma_variances_and_unknown_prior():
    import pymc as pm
    import scipy.stats as st

    from gmmlab.backends.bayes import build_model

    X = load_dataset("faithful").X
    model = build_model(X, 3, "diag", covariance_prior="inverse_wishart")
    variances = pm.draw(model["covariances"], draws=4000, random_seed=1)[:, 0, 1, 1]
    # diag: sigma_kd^2 ~ InverseGamma(nu / 2, Psi_dd / 2), nu = D + 2 = 4, Psi = S / K
    assert st.kstest(variances, st.invgamma(a=2, scale=X[:, 1].var() / 3 / 2).cdf).pvalue > 1e-3
    model = build_model(X, 3, "spherical", covariance_prior="inverse_wishart")
    variances = pm.draw(model["covariances"], draws=4000, random_seed=1)[:, 1, 0, 0]
    reference = st.invgamma(a=2, scale=X.var(axis=0).mean() / 3 / 2)  # mean of diag Psi
    assert st.kstest(variances, reference.cdf).pvalue > 1e-3
    x = load_dataset("galaxies").X
    model = build_model(x, 4, "full", covariance_prior="inverse_wishart")
    variances = pm.draw(model["covariances"], draws=4000, random_seed=1)[:, 2, 0, 0]
    # IW(3, s^2 / K^2) in one dimension: InverseGamma(3/2, s^2 / (2 K^2))
    assert st.kstest(variances, st.invgamma(a=1.5, scale=x.var() / 16 / 2).cdf).pvalue > 1e-3
    result = backends.fit("pymc", x, 2, covariance_prior="wishart")
    assert result.status == "failed"
    assert ("covariance_prior must be one of ['lkj', 'inverse_wishart', 'normal_inverse_wishart'"
            "], got 'wishart'" in result.message)


def test_normal_inverse_wishart_prior_draws_match_scipy():
    """Sigma_k ~ IW(nu0, S0) against scipy's, and sqrt(k0) L_k^-1 (mu_k - m0) ~ N(0, I)
    (L_k L_k^T = Sigma_k): KS tests on 4000 prior draws of the PyMC model."""
    import pymc as pm
    import scipy.stats as st

    from gmmlab.backends.bayes import build_model

    X = load_dataset("faithful").X
    prior = {"family": "normal-inverse-wishart", "mean": [3.0, 70.0], "kappa": 0.2,
             "dof": 5.0, "scale": [[1.0, 5.0], [5.0, 120.0]], "alpha": 2.0}
    model = build_model(X, 2, "full", covariance_prior="normal_inverse_wishart", prior=prior,
                        ordered=False)
    covariances, means, weights = pm.draw(
        [model["covariances"], model["means"], model["weights"]], draws=4000, random_seed=1)
    reference = st.invwishart(df=5, scale=np.array(prior["scale"])).rvs(4000, random_state=2)
    for statistic in (lambda s: s[:, 0, 0], lambda s: s[:, 0, 1], lambda s: s[:, 1, 1]):
        assert st.ks_2samp(statistic(covariances[:, 1]), statistic(reference)).pvalue > 1e-3
    standard = np.sqrt(0.2) * np.linalg.solve(np.linalg.cholesky(covariances),
                                              (means - [3.0, 70.0])[..., None])[..., 0]
    for d in range(2):
        assert st.kstest(standard[:, 0, d], st.norm.cdf).pvalue > 1e-3
    assert st.kstest(weights[:, 0], st.beta(2, 2).cdf).pvalue > 1e-3


@pytest.mark.pymc
@pytest.mark.parametrize("seed", [0, 1])
def test_inverse_wishart_prior_keeps_the_posterior_away_from_repeated_points(seed):
    """Ten identical values among 30 normal ones, K = 2: a component on the ten has likelihood
    ~ sigma^-9 near sigma = 0 (integrated over its mean), not integrable against the
    half-normal prior on sigma (improper posterior: the chains drift to sigma -> 0) but
    integrable against the inverse-gamma one, whose density falls like exp(-b / sigma^2)."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([np.full(10, 1.0), rng.normal(0.0, 1.0, 30)])[:, None]
    smallest = {}
    for prior in ("lkj", "inverse_wishart"):
        result = backends.fit("pymc", X, 2, seed=seed, chains=2, tune=100, draws=100,
                              covariance_prior=prior)
        assert result.status == "ok", result.message
        smallest[prior] = result.diagnostics["min_eigenvalue_relative_any_draw"]
    assert smallest["lkj"] < 1e-4 and smallest["inverse_wishart"] > 1e-3, smallest


@pytest.mark.pymc
def test_pymc_advi_and_stephens_relabelling():
    data = load_dataset("tutorial_1d")
    mle = backends.fit("em", data.X, 3, seed=0, **TIGHT)
    advi = backends.fit("pymc", data.X, 3, seed=2, inference="advi", advi_iterations=5000,
                        draws=200, chains=1, relabel="stephens")
    assert advi.status == "ok", advi.message
    assert advi.diagnostics["inference"] == "advi" and advi.diagnostics["relabel"] == "stephens"
    aligned = metrics.align(advi, mle)
    # Mean-field ADVI (Adam, 5000 steps) lands near the MLE: stated tolerances weights 0.05
    # (L1), means 0.1 (RMSE), covariances 30 % (relative Frobenius).
    assert aligned["weights"] < 0.05 and aligned["means"] < 0.1
    assert aligned["covariances"] < 0.3


@pytest.mark.pymc
@pytest.mark.slow
def test_pymc_larger_check_on_faithful_with_four_chains():
    data = load_dataset("faithful")
    mle = backends.fit("em", data.X, 2, seed=0, **TIGHT)
    result = backends.fit("pymc", data.X, 2, seed=5, chains=4, tune=1000, draws=1000)
    assert result.diagnostics["max_rhat"] <= 1.01 and result.diagnostics["divergences"] == 0
    assert result.diagnostics["min_ess_bulk"] > 1000
    aligned = metrics.align(result, mle)
    order = np.array(aligned["permutation"])
    assert (np.abs(result.means[order] - mle.means) / result.draws["means_sd"][order]).max() < 3


def _posterior_mean_and_mcse(result, name):
    """Posterior mean of the relabelled draws of ``name`` and its Monte Carlo standard error
    (ArviZ's, per scalar quantity)."""
    import arviz as az

    chains = result.idata["posterior"].sizes["chain"]
    draws = result.draws[name].reshape((chains, -1) + result.draws[name].shape[1:])
    flat = draws.reshape(chains, draws.shape[1], -1)
    mcse = np.array([az.mcse(flat[:, :, i], method="mean") for i in range(flat.shape[2])])
    return flat.mean(axis=(0, 1)), mcse


@pytest.mark.pymc
@pytest.mark.slow
@pytest.mark.parametrize("name, options, K", [
    ("faithful", {}, 2), ("tutorial_1d", {}, 3),
    ("synthetic", {"n_components": 3, "n_features": 2, "n_samples": 5000}, 3),
])
def test_default_path_agrees_with_the_textbook_model_within_monte_carlo_error(name, options, K):
    """The default (marginal likelihood, nutpie, hand-written density) and the textbook model
    with PyMC's NUTS, both at 4 x (1000 + 1000), agree within Monte Carlo error
    (:func:`_assert_agree`)."""
    X = load_dataset(name, **options).X
    _assert_agree(backends.fit("pymc", X, K, "full", seed=3),
                  backends.fit("pymc", X, K, "full", seed=3, likelihood="mixture",
                               sampler="pymc"))


AGREEMENT_CASES = [("faithful", {}, 2), ("tutorial_1d", {}, 3),
                   ("synthetic", {"n_components": 3, "n_features": 2, "n_samples": 300}, 3)]


@pytest.mark.pymc
@pytest.mark.parametrize("name, options, K", [
    pytest.param(*case, marks=[] if case[0] == "tutorial_1d" else pytest.mark.slow,
                 id=case[0]) for case in AGREEMENT_CASES])
def test_hand_written_density_agrees_with_the_pymc_graph(name, options, K):
    """The same model sampled by nutpie from the hand-written Numba density and from PyMC's
    graph compiled by PyTensor agree within Monte Carlo error (:func:`_assert_agree`) at the
    defaults (tutorial_1d in CI, about a second a fit; the others slow)."""
    X = load_dataset(name, **options).X
    fits = [backends.fit("pymc", X, K, "full", seed=4, density=density)
            for density in ("numba", "pytensor")]
    assert [fit.diagnostics["density"] for fit in fits] == ["numba", "pytensor"]
    _assert_agree(*fits)


def _assert_agree(a, b):
    """Every posterior mean of weights and means agrees within 4 combined Monte Carlo
    standard errors (z = |a - b| / sqrt(mcse_a^2 + mcse_b^2) < 4; one quantity in ~16,000
    exceeds 4 by chance); both R-hat <= 1.01 with no divergence."""
    for fit in (a, b):
        assert fit.status == "ok", fit.message
        assert fit.diagnostics["max_rhat"] <= 1.01 and fit.diagnostics["divergences"] == 0
    for quantity in ("weights", "means"):
        mean_a, mcse_a = _posterior_mean_and_mcse(a, quantity)
        mean_b, mcse_b = _posterior_mean_and_mcse(b, quantity)
        z = np.abs(mean_a - mean_b) / np.sqrt(mcse_a**2 + mcse_b**2)
        assert z.max() < 4, (quantity, z)


def test_pointwise_log_likelihood_matches_the_per_draw_metric():
    """The batched log p(x_n | theta_s) of the stored draws equals gmmlab.model.metrics' per-draw
    log_likelihood_per_sample (1e-10), a draw with a singular covariance included."""
    X = load_dataset("faithful").X
    rng = np.random.default_rng(0)
    S, K = 7, 3
    weights = rng.dirichlet(np.ones(K), size=S)
    means = X[rng.integers(len(X), size=(S, K))]
    factors = rng.normal(size=(S, K, 2, 2)) * X.std(axis=0)
    covariances = factors @ factors.transpose(0, 1, 3, 2) + 0.01 * np.eye(2)
    reference = np.stack([metrics.log_likelihood_per_sample(X, *draw)
                          for draw in zip(weights, means, covariances, strict=True)])
    np.testing.assert_allclose(metrics.pointwise_log_likelihood(X, weights, means, covariances),
                               reference, rtol=1e-10)
    covariances[3, 1] = [[1.0, 1.0], [1.0, 1.0]]  # singular: that component has no density
    reference[3] = metrics.log_likelihood_per_sample(X, weights[3], means[3], covariances[3])
    np.testing.assert_allclose(metrics.pointwise_log_likelihood(X, weights, means, covariances),
                               reference, rtol=1e-10)


@pytest.mark.pymc
def test_low_rank_and_diagonal_mass_matrices_sample_the_same_posterior():
    """nutpie's two adaptations (the default low-rank one and the diagonal one) agree within
    Monte Carlo error at the defaults and are recorded; an unknown one is refused."""
    X = load_dataset("tutorial_1d").X
    fits = [backends.fit("pymc", X, 3, "full", seed=5, **options)
            for options in ({}, {"mass_matrix": "diag"})]
    assert [fit.diagnostics["mass_matrix"] for fit in fits] == ["low_rank", "diag"]
    _assert_agree(*fits)
    refused = backends.fit("pymc", X, 3, mass_matrix="dense")
    assert refused.status == "failed"
    assert "mass_matrix must be one of ['low_rank', 'diag'], got 'dense'" in refused.message
