"""The evidence of a Gaussian mixture: the closed form under the conjugate prior against
numerical integration and the Student-t chain rule, the enumeration against plain Monte Carlo
over the prior, and the estimators against the enumeration."""

import itertools
import math
import re

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import gammaln, logsumexp

from gmmlab import marginal_likelihood
from gmmlab.model import conjugate
from gmmlab.selection.evidence import kass_raftery, posterior_over_k


def niw(D, kappa=0.1, alpha=1.0):
    return {"family": "normal-inverse-wishart", "mean": np.zeros(D), "kappa": kappa,
            "dof": D + 2.0, "scale": np.eye(D), "alpha": alpha}


def log_integral(log_joint):
    """log of the integral of exp(log_joint(mu, sigma^2)) over mu in (-10, 12), sigma^2 in (0, 40):
    Simpson's rule on a 801 x 801 grid in (mu, log sigma^2)."""
    mu = np.linspace(-10, 12, 801)[None, :]
    log_variance = np.linspace(math.log(1e-3), math.log(40), 801)[:, None]
    values = log_joint(mu, np.exp(log_variance)) + log_variance  # d sigma^2 = sigma^2 d log
    top = values.max()
    inner = integrate.simpson(np.exp(values - top), x=mu[0], axis=1)
    return top + math.log(integrate.simpson(inner, x=log_variance[:, 0]))


def two_groups(N, D, seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(-2, 1, (N // 2, D)), rng.normal(2, 1, (N - N // 2, D))])


def test_one_group_evidence_equals_numerical_integration_in_1d():
    X = np.array([[0.3], [-1.2], [0.8], [2.1], [-0.4], [1.0]])
    prior = {"family": "normal-inverse-wishart", "mean": [0.5], "kappa": 0.5, "dof": 3.0,
             "scale": [[2.0]]}

    def log_joint(mu, variance):  # sigma^2 ~ InvGamma(dof/2, scale/2), mu ~ N(m0, sigma^2/kappa)
        return (stats.norm.logpdf(X[:, 0, None, None], mu, np.sqrt(variance)).sum(axis=0)
                + stats.norm.logpdf(mu, 0.5, np.sqrt(variance / 0.5))
                + stats.invgamma.logpdf(variance, 1.5, scale=1.0))

    assert conjugate.exact_log_evidence(X, 1, prior) == pytest.approx(
        log_integral(log_joint), abs=1e-6)


def test_one_group_evidence_equals_student_t_chain_rule_in_2d():
    """p(X) = prod_n p(x_n | x_<n), each a multivariate Student-t (Murphy 2007, eq. 258)."""
    X = two_groups(7, 2, seed=3)
    prior = conjugate.make_prior(niw(2, kappa=0.3), X)
    total = 0.0
    for n in range(len(X)):
        counts, sums, squares = conjugate.sufficient_statistics(X[:n], np.ones((n, 1)))
        mean, kappa, dof, scale = (np.squeeze(v, 0) for v in conjugate.posterior_parameters(
            prior, counts, sums, squares))
        degrees = dof - 2 + 1
        total += stats.multivariate_t.logpdf(X[n], mean, scale * (kappa + 1) / (kappa * degrees),
                                             df=degrees)
    assert conjugate.exact_log_evidence(X, 1, prior) == pytest.approx(total, abs=1e-9)


def test_enumerated_mixture_evidence_equals_monte_carlo_over_the_prior():
    """p(X) = E_prior[p(X | theta)], 400 000 prior draws, K = 2 on 5 points in 1-D."""
    X = np.array([[-1.5], [-1.0], [1.2], [1.6], [0.1]])
    prior = conjugate.make_prior(niw(1, kappa=0.5, alpha=0.7), X)
    rng = np.random.default_rng(0)
    M = 400_000
    weights = rng.dirichlet([0.7, 0.7], size=M)
    variances = stats.invgamma.rvs(1.5, scale=0.5, size=(M, 2), random_state=rng)
    means = rng.normal(0.0, np.sqrt(variances / 0.5))
    log_likelihood = logsumexp(np.log(weights)[:, None] + stats.norm.logpdf(
        X[None, :, 0, None], means[:, None], np.sqrt(variances)[:, None]), axis=2).sum(axis=1)
    estimate = logsumexp(log_likelihood) - math.log(M)
    w = np.exp(log_likelihood - log_likelihood.max())
    se = w.std() / (math.sqrt(M) * w.mean())
    assert se < 0.02
    assert conjugate.exact_log_evidence(X, 2, prior) == pytest.approx(estimate, abs=4 * se)


@pytest.mark.parametrize("D, K, N", [(1, 1, 12), (1, 2, 12), (1, 3, 11),
                                     (2, 1, 12), (2, 2, 12), (2, 3, 10)])
@pytest.mark.parametrize("method", ["bridge", "importance"])
def test_evidence_within_four_standard_errors_of_the_enumeration(D, K, N, method):
    X = two_groups(N, D, seed=N + D)
    exact = conjugate.exact_log_evidence(X, K, niw(D))
    result = marginal_likelihood(X, K, prior=niw(D), method=method, random_state=1)
    assert result.se <= 0.1
    assert abs(result.log_evidence - exact) <= max(4 * result.se, 0.05)


def test_semi_conjugate_evidence_equals_numerical_integration_in_1d():
    """Chib's prior, K = 1: mu ~ N(m0, B0) independent of sigma^2 ~ InvGamma(dof/2, scale/2)."""
    X = np.array([[0.3], [-1.2], [0.8], [2.1], [-0.4], [1.0], [0.2]])
    prior = {"family": "independent-normal-inverse-wishart", "mean": [1.0],
             "mean_covariance": [[4.0]], "dof": 4.0, "scale": [[3.0]]}

    def log_joint(mu, variance):
        return (stats.norm.logpdf(X[:, 0, None, None], mu, np.sqrt(variance)).sum(axis=0)
                + stats.norm.logpdf(mu, 1.0, 2.0) + stats.invgamma.logpdf(variance, 2.0,
                                                                          scale=1.5))

    result = marginal_likelihood(X, 1, prior=prior)
    assert result.se <= 0.02
    assert result.log_evidence == pytest.approx(log_integral(log_joint),
                                                abs=max(4 * result.se, 0.01))


def test_semi_conjugate_two_components_equal_quadrature_over_every_allocation():
    """K = 2 under Chib's prior: sum over the 2^5 allocations of the Dirichlet-multinomial
    probability times each group's evidence by quadrature."""
    X = np.array([[-1.2], [0.8], [4.1], [3.6], [0.2]])
    prior = {"family": "independent-normal-inverse-wishart", "mean": [1.0],
             "mean_covariance": [[4.0]], "dof": 4.0, "scale": [[3.0]]}
    groups = {}

    def log_group(members):
        def log_joint(mu, variance):
            return (stats.norm.logpdf(X[members, 0, None, None], mu, np.sqrt(variance)).sum(
                axis=0) + stats.norm.logpdf(mu, 1.0, 2.0)
                + stats.invgamma.logpdf(variance, 2.0, scale=1.5))
        return groups.setdefault(members, log_integral(log_joint))

    terms = []
    for allocation in itertools.product((0, 1), repeat=len(X)):
        members = [tuple(np.flatnonzero(np.array(allocation) == k)) for k in (0, 1)]
        terms.append(gammaln(2) - gammaln(2 + len(X)) + sum(
            gammaln(1 + len(m)) + log_group(m) for m in members))
    result = marginal_likelihood(X, 2, prior=prior)
    assert result.se <= 0.05
    assert result.log_evidence == pytest.approx(logsumexp(terms), abs=max(4 * result.se, 0.02))


@pytest.mark.parametrize("prior, message", [
    ({"family": "wishart"}, r"prior\['family'\] must be one of"),
    ({"family": "normal-inverse-wishart", "mean": [0.0], "dof": 3.0, "scale": [[1.0]]},
     r"missing \['kappa'\]"),
    ({"family": "normal-inverse-wishart", "mean": [0.0, 1.0], "kappa": 1.0, "dof": 3.0,
      "scale": [[1.0]]}, r"prior\['mean'\] must be finite of shape \(1,\)"),
    ({"family": "normal-inverse-wishart", "mean": [0.0], "kappa": 1.0, "dof": 3.0,
      "scale": [[-1.0]]}, r"prior\['scale'\] must be symmetric positive definite"),
    ({"family": "normal-inverse-wishart", "mean": [0.0], "kappa": 1.0, "dof": -1.0,
      "scale": [[1.0]]}, r"prior\['dof'\] must exceed D - 1"),
])
def test_a_bad_prior_is_named(prior, message):
    with pytest.raises(ValueError, match=message):
        marginal_likelihood(np.zeros((5, 1)) + np.arange(5)[:, None], 2, prior=prior)


def test_only_full_covariances():
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        marginal_likelihood(np.arange(6.0)[:, None], 2, covariance_type="diag")


def test_posterior_over_k_equals_the_enumerated_one():
    X = two_groups(10, 1, seed=5)
    exact = np.array([conjugate.exact_log_evidence(X, k, niw(1)) for k in (1, 2, 3)])
    result = posterior_over_k(X, (1, 2, 3), prior_probabilities=[0.5, 0.25, 0.25], prior=niw(1))
    log_posterior = exact + np.log([0.5, 0.25, 0.25])
    expected = np.exp(log_posterior - logsumexp(log_posterior))
    assert result.probabilities == pytest.approx(expected, abs=0.02)
    assert np.all(result.probabilities_se < 0.02)
    assert result.best == int(np.argmax(expected)) + 1
    log_factor, se, reading = result.bayes_factor(2, 1)
    assert log_factor == pytest.approx(exact[1] - exact[0], abs=max(4 * se, 0.05))
    assert reading == f"evidence for K = 2: {kass_raftery(exact[1] - exact[0])}"
    assert "best" in result.summary() and "+-" in result.summary()


def test_a_zero_prior_probability_gives_zero_posterior():
    X = two_groups(8, 1, seed=2)
    result = posterior_over_k(X, (1, 2), prior_probabilities=[0, 1], prior=niw(1), draws=200)
    assert result.probabilities.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="prior_probabilities must be 2 non-negative"):
        posterior_over_k(X, (1, 2), prior_probabilities=[1, 1, 1])


@pytest.mark.parametrize("log_factor, reading", [
    (0.99, "not worth more than a bare mention"), (1.0, "positive"), (-2.9, "positive"),
    (3.0, "strong"), (4.99, "strong"), (-5.0, "very strong")])
def test_kass_raftery_reading(log_factor, reading):
    assert kass_raftery(log_factor) == reading


# Chib (1995), Table 4, galaxy data (82 velocities in 1000 km/s, his Table 3 with observation
# 78 = 26.960, gmmlab/data/galaxies_rg1997.csv), three components with unrestricted variances
# under mu_j ~ N(20, 100), sigma_j^2 ~ IG(6/2, 40/2), weights ~ Dirichlet(1, 1, 1): Chib
# reported -224.138; Neal (1999) showed his sampler never switched labels, which misses ln 3!.
# The label-switching-corrected value, -226.80, is a brute-force average of the likelihood over
# 10^8 prior draws (MargLikeGibbsOutput's Chib (1995) example), which matches Chib's reported
# equal-variance values plus ln d! (-240.464 + ln 2 = -239.77, -228.620 + ln 6 = -226.83).
CHIB_PRIOR = {"family": "independent-normal-inverse-wishart", "mean": [20.0],
              "mean_covariance": [[100.0]], "dof": 6.0, "scale": [[40.0]], "alpha": 1.0}


def test_galaxy_evidence_of_three_components_as_corrected_for_label_switching():
    X = _galaxies_rg1997()
    result = marginal_likelihood(X, 3, prior=CHIB_PRIOR, draws=4000)
    assert result.se <= 0.02
    assert result.log_evidence == pytest.approx(-226.80, abs=max(4 * result.se, 0.05))
    assert result.log_evidence - (-224.138) < -2  # Chib's uncorrected value is ln 3! too high


def _galaxies_rg1997():
    from importlib import resources

    import pandas as pd

    with resources.as_file(resources.files("gmmlab") / "data" / "galaxies_rg1997.csv") as path:
        return pd.read_csv(path).to_numpy(float)


@pytest.mark.slow
def test_pymc_backend_under_the_conjugate_prior_has_its_closed_form_posterior():
    """K = 1: E[mu | X] = m_n and E[Sigma | X] = S_n / (nu_n - D - 1) (the PyTensor model
    compiles in minutes on a busy machine: slow)."""
    from gmmlab.backends.bayes import fit_pymc

    rng = np.random.default_rng(0)
    X = rng.multivariate_normal([1, 2], [[1, 0.5], [0.5, 2]], size=40)
    prior = {"family": "normal-inverse-wishart", "mean": [0.0, 0.0], "kappa": 0.5, "dof": 5.0,
             "scale": np.eye(2).tolist()}
    fit = fit_pymc(X, 1, "full", 0, 1e-6, covariance_prior="normal_inverse_wishart",
                   prior=prior, chains=2, tune=500, draws=1000)
    counts, sums, squares = conjugate.sufficient_statistics(X, np.ones((40, 1)))
    mean, _, dof, scale = conjugate.posterior_parameters(
        conjugate.make_prior(prior, X), counts[0], sums[0], squares[0])
    assert fit.means[0] == pytest.approx(mean, abs=0.05)  # posterior sd 0.16-0.21
    assert fit.covariances[0] == pytest.approx(scale / (dof - 3), abs=0.08)


def test_pymc_backend_names_a_prior_it_cannot_use():
    from gmmlab.backends.bayes import build_model

    X = np.arange(12.0).reshape(6, 2)
    with pytest.raises(ValueError, match="covariance_type must be 'full'"):
        build_model(X, 2, "diag", covariance_prior="normal_inverse_wishart")
    with pytest.raises(ValueError, match="with covariance_prior='normal_inverse_wishart' only"):
        build_model(X, 2, "full", covariance_prior="lkj", prior=niw(2))
    with pytest.raises(ValueError, match="must be 'normal-inverse-wishart' in the pymc"):
        build_model(X, 2, "full", covariance_prior="normal_inverse_wishart",
                    prior=CHIB_PRIOR | {"mean": [0.0, 0.0], "mean_covariance": np.eye(2),
                                        "scale": np.eye(2)})


def test_nonempty_components_counts_the_occupied_ones():
    """Two occupied components far apart and a third of weight 1e-12: K+ = 2 in every draw;
    equal weights on three separated groups: K+ = 3; a third of weight exactly 0 (a sparse
    Dirichlet's emptied component underflows): K+ = 2."""
    from gmmlab.backends.bayes import nonempty_components

    X = np.concatenate([np.full((20, 1), -5.0), np.full((20, 1), 5.0), np.full((20, 1), 0.0)])
    S = 300
    draws = {"weights": np.tile([0.5, 0.5 - 1e-12, 1e-12], (S, 1)),
             "means": np.tile([[-5.0], [5.0], [40.0]], (S, 1, 1)),
             "covariances": np.ones((S, 3, 1, 1))}
    result = nonempty_components(X[:40], draws, seed=0)
    assert result == {"nonempty_components_probabilities": [0.0, 1.0, 0.0],
                      "nonempty_components_mode": 2}
    draws["weights"] = np.full((S, 3), 1 / 3)
    draws["means"] = np.tile([[-5.0], [5.0], [0.0]], (S, 1, 1))
    assert nonempty_components(X, draws, seed=0)["nonempty_components_mode"] == 3
    draws["weights"] = np.tile([0.5, 0.5, 0.0], (S, 1))  # underflowed: no log(0) warning
    assert nonempty_components(X, draws, seed=0)["nonempty_components_probabilities"] == [
        0.0, 1.0, 0.0]


@pytest.mark.slow
def test_sparse_finite_mixture_finds_the_number_of_clusters():
    """Dirichlet(0.01) weights over K_max = 6 components on well-separated synthetic data
    (K = 3, D = 2, N = 200, separation 5, ancestor-sampled): the mode of K+ is 3 in at least 9
    of 10 replicates."""
    from gmmlab.backends.bayes import fit_pymc
    from gmmlab.datasets import load_dataset

    modes = []
    for seed in range(10):
        X = load_dataset("synthetic", n_components=3, n_features=2, n_samples=200,
                         separation=5.0, seed=seed).X
        fit = fit_pymc(X, 6, "full", seed, 1e-6, alpha=0.01, chains=2, tune=500, draws=500)
        shares = fit.diagnostics["nonempty_components_probabilities"]
        assert len(shares) == 6 and sum(shares) == pytest.approx(1.0)
        modes.append(fit.diagnostics["nonempty_components_mode"])
    assert sum(mode == 3 for mode in modes) >= 9, modes


# --- the gibbs backend: the evidence of a study's runs -------------------------------------


def test_gibbs_backend_evidence_is_the_marginal_likelihood_of_its_own_draws():
    """The backend's evidence reuses its draws: the same number as marginal_likelihood with
    the same seed (1e-12), within max(4 se, 0.05) of the enumeration; the posterior mean and
    K+ come from the same draws, and the diagnostics time both parts."""
    from gmmlab.backends.gibbs import fit_gibbs

    X = two_groups(12, 2, seed=14)
    exact = conjugate.exact_log_evidence(X, 2, niw(2))
    fit = fit_gibbs(X, 2, "full", seed=3, prior=niw(2))
    reference = marginal_likelihood(X, 2, prior=niw(2), random_state=3)
    assert fit.diagnostics["log_evidence"] == pytest.approx(reference.log_evidence, abs=1e-12)
    assert fit.diagnostics["log_evidence_se"] == pytest.approx(reference.se, abs=1e-12)
    assert abs(fit.diagnostics["log_evidence"] - exact) <= max(
        4 * fit.diagnostics["log_evidence_se"], 0.05)
    assert fit.diagnostics["sampling_seconds"] > 0 and fit.diagnostics["evidence_seconds"] > 0
    assert fit.diagnostics["nonempty_components_mode"] == 2


def test_gibbs_backend_passes_the_contract_and_reads_its_posterior_like_pymc(faithful):
    """The backend contract (check_backend) at K = 1..3; on Old Faithful (N = 272) the
    relabelled posterior mean at K = 2 is near the maximum-likelihood fit (scikit-learn's);
    PSIS-LOO computed from its draws as for PyMC's (metrics.evaluate); sparse weights recorded
    as alpha."""
    from sklearn.mixture import GaussianMixture

    from gmmlab import backends
    from gmmlab.datasets import load_dataset
    from gmmlab.model import metrics

    results = backends.check_backend(backends.resolve("gibbs"), faithful, n_components=(1, 2, 3),
                                     covariance_types=("full",), draws=300, burn=200)
    assert [r.weights.shape for r in results] == [(1,), (2,), (3,)]
    mle = GaussianMixture(2, tol=1e-8, random_state=0).fit(faithful)
    order = np.argsort(results[1].means[:, 0]), np.argsort(mle.means_[:, 0])
    assert results[1].weights[order[0]] == pytest.approx(mle.weights_[order[1]], abs=0.02)
    np.testing.assert_allclose(results[1].means[order[0]], mle.means_[order[1]],
                               atol=0.05 * faithful.std(axis=0).max())
    record = metrics.evaluate(results[1], load_dataset("faithful"))
    assert record["loo"]["p"] == pytest.approx(11, abs=2)  # 2 x (1 + 2 + 3) - 1 parameters
    sparse = backends.fit("gibbs", faithful, 4, seed=0, alpha=0.01, evidence=False, draws=300,
                          burn=200)
    assert sparse.status == "ok" and sparse.diagnostics["alpha"] == 0.01
    assert "log_evidence" not in sparse.diagnostics


@pytest.mark.parametrize("options, message", [
    ({"n_components": 7}, "n_components must be 1..6 for the evidence"),
    ({"covariance_type": "diag"}, "covariance_type must be one of ['full']"),
    ({"prior": {"family": "independent-normal-inverse-wishart", "mean": [0, 0],
                "mean_covariance": np.eye(2), "dof": 4, "scale": np.eye(2)}},
     "prior['family'] must be 'normal-inverse-wishart' in the gibbs backend")])
def test_gibbs_backend_names_what_it_cannot_do(faithful, options, message):
    from gmmlab.backends.gibbs import fit_gibbs

    arguments = {"n_components": 2, "covariance_type": "full"} | options
    with pytest.raises(ValueError, match=re.escape(message)):
        fit_gibbs(faithful, seed=0, **arguments)
