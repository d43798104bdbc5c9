"""The bootstrap LRT of K vs K + 1 components against R's mclustBootstrapLRT."""

import numpy as np
import pytest
from support import r_call

from gmmlab.selection import bootstrap

# Old Faithful, EEE, 3 vs 4 components: mclust's fits (hc start, tolerance 1e-10) are the
# optima gmmlab.select finds, and the p-value is neither 0 nor 1 (mclust: 0.04 at B = 99).
MODEL, K = "EEE", 3


def mclust_lrt(X, n_boot):
    """mclustBootstrapLRT's observed statistic and p-value for K vs K + 1, and its draws."""
    out = r_call(f"""function(x, B) {{
          set.seed(1)
          t <- mclustBootstrapLRT(x, modelName = "{MODEL}", maxG = {K}, nboot = B,
                                  control = emControl(tol = c(1e-10, 1e-10)))
          list(obs = t$obs[{K}], p = t$p.value[{K}], boot = t$boot[, {K}])
        }}""", X, n_boot)
    return out["obs"][0], out["p"][0], np.asarray(out["boot"])


@pytest.mark.mclust
def test_observed_statistic_equals_mclusts_and_replicates_do_not_depend_on_n_jobs(faithful):
    observed, _, _ = mclust_lrt(faithful, 1)
    serial = bootstrap.bootstrap_lrt(faithful, MODEL, K, n_boot=19, random_state=3)
    assert serial.observed == pytest.approx(observed, abs=1e-3)
    parallel = bootstrap.bootstrap_lrt(faithful, MODEL, K, n_boot=19, random_state=3, n_jobs=2)
    np.testing.assert_array_equal(serial.replicates, parallel.replicates)
    assert serial.p_value == (1 + np.sum(serial.replicates >= serial.observed)) / 20
    # refits start at the two fits (as mclust's): the K + 1 one may end at a local optimum
    # slightly below the K one, so a statistic can be a little negative, never much
    assert np.all(np.isfinite(serial.replicates)) and serial.replicates.min() > -0.1
    figure = bootstrap.plot_bootstrap_lrt([serial], title="faithful")
    assert "p = " in figure.axes[0].get_title()


@pytest.mark.mclust
@pytest.mark.slow
def test_p_value_equals_mclusts_within_monte_carlo_error(faithful):
    """B = 999 on both sides: the p-values differ by less than 3 standard errors of their
    difference, sqrt(2 p (1 - p) / B); the two bootstrap distributions alike (medians within
    10 %)."""
    observed, p_mclust, draws = mclust_lrt(faithful, 999)
    ours = bootstrap.bootstrap_lrt(faithful, MODEL, K, n_boot=999, random_state=0, n_jobs=2)
    assert ours.observed == pytest.approx(observed, abs=1e-3)
    print(f"{MODEL} {K} vs {K + 1}, B = 999: LRTS {ours.observed:.5f} (mclust "
          f"{observed:.5f}), p-value {ours.p_value:.4f} (mclust {p_mclust:.4f})")
    p = (ours.p_value + p_mclust) / 2
    assert abs(ours.p_value - p_mclust) < 3 * np.sqrt(2 * p * (1 - p) / 999)
    assert np.median(ours.replicates) == pytest.approx(np.median(draws), rel=0.1)


def test_command_prints_the_test_and_fails_cleanly(tmp_path, capsys):
    assert bootstrap.main(["galaxies", "--model", "V", "-k", "2", "-B", "9",
                           "-o", str(tmp_path / "lrt.png")]) == 0
    assert "V 2 vs 3: LRTS" in capsys.readouterr().out
    assert (tmp_path / "lrt.png").stat().st_size > 0
    assert bootstrap.main(["galaxies", "--model", "XYZ", "-k", "1", "-B", "9"]) == 1
    assert "not fitted by the EM estimator" in capsys.readouterr().err
