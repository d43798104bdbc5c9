"""Metrics against independent references: scikit-learn, closed forms, constructed traces."""

import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from gmmlab.datasets import Truth, load_dataset
from gmmlab.model import gaussian, metrics


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("n_components", [1, 3])
def test_criteria_equal_sklearn(faithful, covariance_type, n_components):
    model = GaussianMixture(n_components, covariance_type=covariance_type, random_state=0)
    model.fit(faithful)
    covariances = gaussian.full_covariances(model.covariances_, covariance_type, n_components, 2)
    criteria = metrics.information_criteria(faithful, model.weights_, model.means_, covariances,
                                            covariance_type)
    assert criteria["bic"] == pytest.approx(model.bic(faithful), rel=1e-10)
    assert criteria["aic"] == pytest.approx(model.aic(faithful), rel=1e-10)
    assert criteria["n_params"] == model._n_parameters()
    per_sample = metrics.log_likelihood_per_sample(faithful, model.weights_, model.means_,
                                                   covariances)
    np.testing.assert_allclose(per_sample, model.score_samples(faithful), rtol=1e-10)
    resp = model.predict_proba(faithful)
    entropy = -np.sum(resp[resp > 0] * np.log(resp[resp > 0]))
    assert criteria["icl_entropy"] == pytest.approx(model.bic(faithful) + 2 * entropy, rel=1e-9)
    # MAP form: BIC with the complete-data log-likelihood of the MAP classification
    assert criteria["icl"] == pytest.approx(
        model.bic(faithful) - 2 * np.log(resp.max(axis=1)).sum(), rel=1e-9)


def test_icl_exceeds_bic_by_twice_the_entropy_of_overlapping_components():
    """Two unit-variance components at -0.1 and 0.1 on 50 points of [-1, 1]: BIC from the
    closed-form log-likelihood and parameter count (5), the responsibilities from the two
    normal densities (scipy), near 1/2 each; ICL_entropy = BIC + 2 EN and the MAP form
    ICL = BIC - 2 sum_n log max_k r_nk, both near BIC + 2 N log 2."""
    from scipy.stats import norm

    X = np.linspace(-1, 1, 50)[:, None]
    weights, means, covariances = [0.5, 0.5], np.array([[-0.1], [0.1]]), np.ones((2, 1, 1))
    criteria = metrics.information_criteria(X, weights, means, covariances, "full")
    joint = 0.5 * np.column_stack([norm.pdf(X[:, 0], m, 1.0) for m in (-0.1, 0.1)])
    loglik = np.log(joint.sum(axis=1)).sum()
    resp = joint / joint.sum(axis=1, keepdims=True)
    entropy = -(resp * np.log(resp)).sum()
    bic = -2 * loglik + 5 * np.log(50)  # 1 weight, 2 means, 2 variances
    assert criteria["bic"] == pytest.approx(bic, rel=1e-12)
    assert criteria["entropy"] == pytest.approx(entropy, rel=1e-12)
    assert criteria["icl_entropy"] == pytest.approx(bic + 2 * entropy, rel=1e-12)
    assert criteria["icl"] == pytest.approx(bic - 2 * np.log(resp.max(axis=1)).sum(), rel=1e-12)
    # Nearly identical components: responsibilities near 1/2, entropy near N log 2.
    assert entropy == pytest.approx(50 * np.log(2), rel=0.01)
    assert criteria["icl_entropy"] - criteria["bic"] == pytest.approx(100 * np.log(2), rel=0.01)
    assert criteria["icl"] - criteria["bic"] == pytest.approx(100 * np.log(2), rel=0.1)


def truth_2d():
    return Truth(weights=np.array([0.2, 0.3, 0.5]),
                 means=np.array([[0.0, 0.0], [5.0, 1.0], [-3.0, 4.0]]),
                 covariances=np.stack([np.eye(2), [[2.0, 0.5], [0.5, 1.0]], 0.5 * np.eye(2)]))


@pytest.mark.parametrize("cost", ["means", "kl"])
def test_alignment_recovers_a_known_permutation_and_is_zero_on_the_truth(cost):
    truth = truth_2d()
    same = metrics.align(truth, truth, cost)
    assert same["permutation"] == [0, 1, 2]
    assert same["weights"] == same["means"] == same["covariances"] == 0.0
    order = np.array([2, 0, 1])  # fitted component j is true component order[j]
    shuffled = Truth(truth.weights[order], truth.means[order] + 0.1, truth.covariances[order])
    aligned = metrics.align(shuffled, truth, cost)
    # true component i is fitted component argwhere(order == i)
    assert aligned["permutation"] == [1, 2, 0]
    assert aligned["weights"] == pytest.approx(0.0, abs=1e-15)
    assert aligned["means"] == pytest.approx(0.1)
    assert aligned["unmatched_fitted"] == aligned["unmatched_true"] == []


def test_alignment_with_a_different_number_of_components():
    truth = truth_2d()
    two = Truth(np.array([0.6, 0.4]), truth.means[[2, 0]], truth.covariances[[2, 0]])
    aligned = metrics.align(two, truth)
    assert aligned["permutation"] == [1, -1, 0]
    assert aligned["unmatched_true"] == [1] and aligned["unmatched_fitted"] == []
    four = Truth(np.full(4, 0.25), np.vstack([truth.means, [[9.0, 9.0]]]),
                 np.vstack([truth.covariances, [np.eye(2)]]))
    aligned = metrics.align(four, truth)
    assert aligned["permutation"] == [0, 1, 2] and aligned["unmatched_fitted"] == [3]
    assert aligned["means"] == 0.0 and aligned["covariances"] == 0.0


def test_symmetric_kl_matches_the_1d_closed_form():
    m1, s1, m2, s2 = 0.3, 0.7, -1.1, 1.9

    def kl(ma, sa, mb, sb):
        return np.log(sb / sa) + (sa**2 + (ma - mb) ** 2) / (2 * sb**2) - 0.5

    expected = kl(m1, s1, m2, s2) + kl(m2, s2, m1, s1)
    actual = metrics.gaussian_symmetric_kl(np.array([m1]), np.array([[s1**2]]),
                                           np.array([m2]), np.array([[s2**2]]))
    assert actual == pytest.approx(expected, rel=1e-12)


def label_switched_trace(n_draws=500, seed=0):
    """Two chains around the same 1-D posterior; the second has components 0 and 1 swapped."""
    rng = np.random.RandomState(seed)
    weights = np.array([0.3, 0.7]) + 0.02 * rng.standard_normal((2, n_draws, 2))
    weights /= weights.sum(axis=2, keepdims=True)
    means = np.array([-2.0, 3.0])[None, None, :, None] + 0.1 * rng.standard_normal(
        (2, n_draws, 2, 1))
    covariances = np.ones((2, n_draws, 2, 1, 1))
    weights[1], means[1] = weights[1][:, ::-1], means[1][:, ::-1]
    return weights, means, covariances


def test_relabelling_a_label_switched_trace_brings_rhat_below_1_01():
    weights, means, covariances = label_switched_trace()
    assert metrics.max_rhat(means) > 1.5  # the visible signature of label switching
    flat_means = means.reshape(1000, 2, 1)
    permutations = metrics.relabel_to_pivot(flat_means, flat_means[0])
    assert (permutations != [0, 1]).any(axis=1).sum() == 500  # exactly the second chain
    relabelled = metrics.apply_permutations(flat_means, permutations).reshape(means.shape)
    assert metrics.max_rhat(relabelled) < 1.01
    relabelled_weights = metrics.apply_permutations(weights.reshape(1000, 2), permutations)
    assert metrics.max_rhat(relabelled_weights.reshape(2, 500, 2)) < 1.01


def test_max_rhat_skips_quantities_constant_over_all_draws():
    weights, means, _ = label_switched_trace()
    single_weight = np.ones((2, 500, 1))  # K = 1: the weight is 1 in every draw
    assert metrics.max_rhat(single_weight, means) == metrics.max_rhat(means) > 1.5
    assert np.isnan(metrics.max_rhat(single_weight))
    assert metrics.max_rhat(weights, means) == max(metrics.max_rhat(weights),
                                                   metrics.max_rhat(means))


def test_stephens_relabelling_agrees_with_the_pivot_on_a_switched_trace():
    weights, means, covariances = label_switched_trace(n_draws=60)
    X = np.concatenate([np.full(10, -2.0), np.full(20, 3.0)])[:, None]
    flat = (weights.reshape(120, 2), means.reshape(120, 2, 1), covariances.reshape(120, 2, 1, 1))
    resp = np.stack([metrics.responsibilities(X, w, m, c) for w, m, c in zip(*flat, strict=True)])
    permutations = metrics.stephens_relabel(resp)
    relabelled = metrics.apply_permutations(flat[1], permutations)
    # every draw ends with the component near -2 first, or every draw with it second
    first_is_low = relabelled[:, 0, 0] < relabelled[:, 1, 0]
    assert first_is_low.all() or (~first_is_low).all()
    assert metrics.max_rhat(relabelled.reshape(2, 60, 2, 1)) < 1.01


def test_clustering_agreement_ignores_label_names():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert metrics.clustering_agreement(labels, (labels + 1) % 3) == {"ari": 1.0, "nmi": 1.0}
    assert metrics.clustering_agreement(labels, [0, 1, 0, 1, 0, 1])["ari"] < 0


def test_singularity_indicators_flag_a_collapsed_component():
    X = np.column_stack([np.arange(10.0), np.arange(10.0) ** 2])
    covariances = np.stack([np.diag([1.0, 4.0]), np.zeros((2, 2))])
    indicators = metrics.singularity_indicators(X, [0.9, 0.1], np.zeros((2, 2)), covariances)
    assert indicators["min_eigenvalue"] == 0.0 and indicators["min_eigenvalue_relative"] == 0.0
    assert indicators["min_weight_n"] == pytest.approx(1.0)
    assert not indicators["loglik_nonfinite"]  # the singular component has no density at all
    assert metrics.singularity_indicators(X, [1.0], np.zeros((1, 2)), covariances[1:])[
        "loglik_nonfinite"]


def test_posterior_predictive_density_of_identical_draws_is_the_likelihood():
    X = load_dataset("tutorial_1d").X
    w, m, c = np.array([0.5, 0.5]), np.array([[0.0], [3.0]]), np.ones((2, 1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        density = metrics.posterior_predictive_log_density(X, [w] * 4, [m] * 4, [c] * 4)
    np.testing.assert_allclose(density, metrics.log_likelihood_per_sample(X, w, m, c))


def test_evaluate_gathers_every_metric_for_a_fit():
    from gmmlab import EMGaussianMixture, backends

    data = load_dataset("tutorial_2d", test_size=0.25, split_seed=1)
    result = backends.fit("em", data.X, 3, seed=0, n_init=3)
    report = metrics.evaluate(result, data)
    model = EMGaussianMixture(3, random_state=0, n_init=3).fit(data.X)
    assert report["loglik"] == pytest.approx(model.score(data.X) * len(data.X), rel=1e-10)
    assert report["test_loglik_per_sample"] == pytest.approx(model.score(data.X_test), rel=1e-10)
    assert report["bic"] == pytest.approx(model.bic(data.X), rel=1e-10)
    assert sorted(report["permutation"]) == [0, 1, 2]
    assert report["param_error"]["means"] < 0.2 and report["ari"] > 0.85  # overlapping truth
    assert report["singular"]["collapse"] is None and report["n_params"] == 17
    failed = backends.fit("em", np.repeat([[0.0], [1.0]], 3, axis=0), 3, reg_covar=0.0)
    empty = metrics.evaluate(failed, load_dataset("tutorial_1d"))
    assert empty["loglik"] is None and "backend_error" in empty["singular"]


def test_tutorial_140_eruptions_bic_prefers_three_by_a_hair_and_icl_two():
    """The tutorial says BIC picks K = 2 among K = 1..5 on its 140 eruption times. With the
    standard BIC (p = 3K - 1 in 1-D) and the best of ten k-means starts, K = 3 edges out K = 2
    by under one unit (302.76 vs 303.60); ICL, which penalises the overlap, picks K = 2."""
    X = load_dataset("faithful_140").X
    scores = {}
    for k in range(1, 6):
        model = GaussianMixture(k, n_init=10, random_state=0).fit(X)
        covariances = model.covariances_
        scores[k] = metrics.information_criteria(X, model.weights_, model.means_, covariances,
                                                 "full")
        assert scores[k]["bic"] == pytest.approx(model.bic(X), rel=1e-10)
    bic = {k: s["bic"] for k, s in scores.items()}
    assert bic[2] == pytest.approx(303.60, abs=0.01) and bic[3] == pytest.approx(302.76, abs=0.01)
    assert min(bic, key=bic.get) == 3
    icl = {k: s["icl"] for k, s in scores.items()}
    assert min(icl, key=icl.get) == 2


# nMclustParams(model, d, G = 4) for mclust's 14 models, as mclust 6.0.0 (R 4.2.2) prints them;
# in 1-D its models E and V have 8 and 11. (tests/test_mclust.py asks R for every K and D.)
MCLUST_COUNTS_K4 = {2: [12, 15, 13, 16, 16, 19, 14, 17, 17, 20, 17, 20, 20, 23],
                    3: [16, 19, 18, 21, 24, 27, 21, 24, 27, 30, 30, 33, 36, 39],
                    4: [20, 23, 23, 26, 32, 35, 29, 32, 38, 41, 47, 50, 56, 59]}


def test_free_parameter_counts_equal_mclust_for_every_model():
    for D, counts in MCLUST_COUNTS_K4.items():
        assert [gaussian.n_parameters(4, D, m) for m in gaussian.MCLUST_MODELS] == counts
    assert [gaussian.n_parameters(4, 1, m) for m in ("E", "V", "EEE", "full")] == [8, 11, 8, 11]
    for covariance_type, model in gaussian.MCLUST_NAMES.items():
        assert gaussian.n_parameters(3, 2, covariance_type) == gaussian.n_parameters(3, 2, model)
