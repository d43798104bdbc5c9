"""Data sets: exact presets, shipped files, ancestor sampling, CSV validation, split, figures."""

import hashlib
from importlib import resources

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from support import load_script

from gmmlab import datasets
from gmmlab.datasets import (
    TUTORIAL_2D,
    ancestor_sample,
    available,
    check_mixture,
    load_csv,
    load_dataset,
    random_truth,
    shipped_checksums,
)
from gmmlab.report.plots import plot_dataset


def test_tutorial_1d_is_the_tutorials_draw_value_for_value():
    # The tutorial's own code, global legacy seed included.
    np.random.seed(42)  # noqa: NPY002
    pi, mu, var = np.array([0.2, 0.5, 0.3]), np.array([-1.0, 2.0, 5.0]), np.array([0.2, 0.5, 0.1])
    z = np.random.choice(3, size=100, p=pi)  # noqa: NPY002
    x = np.random.normal(mu[z], np.sqrt(var[z]))  # noqa: NPY002
    data = load_dataset("tutorial_1d")
    np.testing.assert_array_equal(data.X[:, 0], x)
    np.testing.assert_array_equal(data.labels, z)
    np.testing.assert_array_equal(data.truth.covariances[:, 0, 0], var)


def test_tutorial_2d_keeps_its_truth_and_sample_size():
    data = load_dataset("tutorial_2d")
    assert data.X.shape == (600, 2)
    np.testing.assert_array_equal(data.truth.means, TUTORIAL_2D.means)
    np.testing.assert_array_equal(data.truth.covariances[2], [[1.2, 0.6], [0.6, 3.0]])
    assert load_dataset("tutorial_2d", n_samples=50, seed=3).X.shape == (50, 2)
    np.testing.assert_array_equal(load_dataset("tutorial_2d").X, data.X)  # deterministic


def test_stretched_blobs_is_make_blobs_times_a_random_matrix():
    X, labels = make_blobs(n_samples=500, centers=3, cluster_std=1.5, random_state=20)
    data = load_dataset("stretched_blobs")
    np.testing.assert_array_equal(data.X, X @ np.random.RandomState(0).randn(2, 2))
    np.testing.assert_array_equal(data.labels, labels)


def test_shipped_files_match_their_recorded_checksums_and_sizes():
    checksums = shipped_checksums()
    assert len(checksums) == 6
    folder = resources.files("gmmlab") / "data"
    for name, expected in checksums.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == expected, name
    sizes = {"faithful": (272, 2), "faithful_eruptions": (272, 1), "faithful_140": (140, 1),
             "galaxies": (82, 1), "galaxies_mass": (82, 1), "acidity": (155, 1),
             "enzyme": (245, 1), "iris": (150, 4)}
    for name, shape in sizes.items():
        assert load_dataset(name).X.shape == shape, name


def test_galaxy_versions_differ_only_in_the_documented_typo():
    rg1997, mass = load_dataset("galaxies").X[:, 0], load_dataset("galaxies_mass").X[:, 0]
    differ = np.flatnonzero(np.abs(rg1997 * 1000 - mass) > 1e-6)
    assert differ.tolist() == [77]  # observation 78
    assert (rg1997[77], mass[77]) == (26.960, 26690.0)


def test_a_corrupt_shipped_file_is_refused(monkeypatch, tmp_path):
    for name in ("SOURCES.md", "acidity.csv"):
        (tmp_path / name).write_bytes((resources.files("gmmlab") / "data" / name).read_bytes())
    (tmp_path / "acidity.csv").write_text("log_acidity\n1.0\n2.0\n")
    monkeypatch.setattr(datasets, "_DATA", tmp_path)
    with pytest.raises(OSError, match="acidity.csv is corrupt"):
        load_dataset("acidity")


def test_every_registry_entry_loads(tmp_path):
    for name in available():
        options = {"path": _write(name, folder=tmp_path)} if name == "csv" else {}
        if name == "custom":  # any function: here one returning a list of rows
            options = {"target": "json:loads", "s": "[[1, 2], [3, 5], [4, 4]]"}
        data = load_dataset(name, **options)
        assert data.X.ndim == 2 and np.all(np.isfinite(data.X)), name
        assert len(data.feature_names) == data.n_features and data.provenance, name


def _write(name, text="a,b\n1,2\n3,5\n4,4\n", *, folder):
    path = folder / f"{name}.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize("n_samples", [200_000])
def test_ancestor_sampling_recovers_the_truth_within_monte_carlo_error(n_samples):
    truth = random_truth(3, 2, separation=3.0, imbalance=3.0, seed=5)
    X, z = ancestor_sample(truth.weights, truth.means, truth.covariances, n_samples, seed=1)
    for k in range(3):
        Xk = X[z == k]
        weight_se = np.sqrt(truth.weights[k] * (1 - truth.weights[k]) / n_samples)
        assert abs(len(Xk) / n_samples - truth.weights[k]) < 5 * weight_se
        mean_se = np.sqrt(np.diag(truth.covariances[k]) / len(Xk))
        assert np.all(np.abs(Xk.mean(axis=0) - truth.means[k]) < 5 * mean_se)
        # Var of a sample covariance entry: (S_ij^2 + S_ii S_jj) / n.
        S = truth.covariances[k]
        cov_se = np.sqrt((S**2 + np.outer(np.diag(S), np.diag(S))) / len(Xk))
        assert np.all(np.abs(np.cov(Xk.T) - S) < 5 * cov_se)


def test_random_truth_respects_separation_imbalance_and_shape():
    truth = random_truth(5, 3, separation=4.0, imbalance=8.0, covariance="diag",
                         condition_number=10.0, seed=2)
    assert truth.weights.max() / truth.weights.min() == pytest.approx(8.0)
    assert truth.weights.sum() == pytest.approx(1.0)
    for i in range(5):
        assert np.count_nonzero(truth.covariances[i] - np.diag(np.diag(truth.covariances[i]))) == 0
        eigenvalues = np.linalg.eigvalsh(truth.covariances[i])
        assert eigenvalues.max() / eigenvalues.min() <= 10.0 + 1e-9
        for j in range(i):
            d = truth.means[i] - truth.means[j]
            pooled = (truth.covariances[i] + truth.covariances[j]) / 2
            assert np.sqrt(d @ np.linalg.solve(pooled, d)) >= 4.0
    again = random_truth(5, 3, separation=4.0, imbalance=8.0, covariance="diag",
                         condition_number=10.0, seed=2)
    np.testing.assert_array_equal(again.means, truth.means)
    spherical = random_truth(2, 4, covariance="spherical", seed=0).covariances[0]
    np.testing.assert_allclose(spherical, spherical[0, 0] * np.eye(4))


@pytest.mark.parametrize("weights, means, covariances, message", [
    ([0.5, 0.6], [0, 1], [1, 1], "sum to 1"),
    ([0.5, 0.5], [0, 1, 2], [1, 1], "means must have 2 rows"),
    ([0.5, 0.5], [[0, 0], [1, 1]], [np.eye(2), [[1, 2], [0, 1]]], "covariance 1 is not symmetric"),
    ([0.5, 0.5], [[0, 0], [1, 1]], [np.eye(2), [[1, 2], [2, 1]]], "not positive definite"),
    ([0.5, 0.5], [[0, 0], [1, 1]], [np.eye(3), np.eye(3)], r"shape \(2, 2, 2\)"),
])
def test_check_mixture_rejects_bad_truths(weights, means, covariances, message):
    with pytest.raises(ValueError, match=message):
        check_mixture(weights, means, covariances)


def test_split_and_standardisation_are_seeded_and_recorded():
    data = load_dataset("tutorial_2d", test_size=0.25, split_seed=7, standardize=True)
    assert data.X.shape == (450, 2) and data.X_test.shape == (150, 2)
    np.testing.assert_allclose(data.X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.X.std(axis=0), 1)
    assert data.metadata["split_seed"] == 7 and "standardized" in data.metadata
    raw = load_dataset("tutorial_2d", test_size=0.25, split_seed=7)
    mean, std = np.array(data.metadata["standardized"]["mean"]), raw.X.std(axis=0)
    np.testing.assert_allclose(data.X_test, (raw.X_test - mean) / std)
    np.testing.assert_allclose(data.truth.means, (TUTORIAL_2D.means - mean) / std)
    assert len(data.labels) == 450 and len(data.labels_test) == 150
    other = load_dataset("tutorial_2d", test_size=0.25, split_seed=8)
    assert not np.array_equal(other.X_test, raw.X_test)


@pytest.mark.parametrize("text, options, message", [
    ("a,b\n1,x\n2,3\n", {}, r"column 'b' is not numeric: data row 1 \(line 2\) holds 'x'"),
    ("a,b\n1,2\n,3\n4,5\n", {}, r"column 'a' has a missing value in data row 2 \(line 3\)"),
    ("a,b\n1,2\n3,NA\n4,5\n", {}, r"column 'b' has a missing value in data row 2"),
    ("a,b\n1,2\n", {}, "1 data rows, at least 2 needed"),
    ("a,b\n1,2\n3,2\n4,2\n", {}, r"column 'b' is constant \(2\)"),
    ("a,b\n1,2\n3,4\n", {"columns": ["c"]}, r"no column \['c'\]"),
    ("a,b\n1,2\n3,inf\n", {}, "column 'b' is not numeric"),
    ("a,b\n1,2\n3,  \n4,5\n", {}, r"column 'b' has a missing value in data row 2"),
    ("a,b\n1,2\n3,n/a\n4,5\n", {}, r"column 'b' is not numeric: data row 2 \(line 3\) holds "
                                  "'n/a'"),
    ("a,b\n1,2\n3,4\n", {"columns": ["a", "a"]}, r"names \['a'\] more than once"),
    ("a,b,a\n1,2,3\n3,4,5\n", {}, r"the header names column\(s\) \['a'\] more than once"),
    ("", {}, "is empty or its first line is blank"),
])
def test_bad_csv_files_get_specific_errors(tmp_path, text, options, message):
    path = _write("bad", text, folder=tmp_path)
    with pytest.raises(ValueError, match=message) as caught:
        load_csv(path, **options)
    assert str(path) in str(caught.value)


def test_csv_column_selection(tmp_path):
    path = _write("data", "a,name,b\n1,x,2\n3,y,5\n4,z,4\n", folder=tmp_path)
    data = load_dataset("csv", path=path, columns=["b", "a"])
    np.testing.assert_array_equal(data.X, [[2, 1], [5, 3], [4, 4]])
    assert data.feature_names == ("b", "a")
    with pytest.raises(ValueError, match="column 'name' is not numeric"):
        load_csv(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_csv(tmp_path / "missing.csv")


def test_csv_values_with_spaces_windows_line_ends_and_a_late_bad_cell(tmp_path):
    """The one-pass float64 parse agrees with the text: spaces around numbers and CRLF line
    ends are numbers; a bad cell far down is found by its row, past the first parsing chunk."""
    path = _write("spaced", "a, b\r\n 1 , 2\r\n3,  4 \r\n5,7\r\n", folder=tmp_path)
    np.testing.assert_array_equal(load_csv(path).X, [[1, 2], [3, 4], [5, 7]])
    assert load_csv(path).feature_names == ("a", "b")
    rows = "".join(f"{i},{i % 7}\n" for i in range(300_000))
    late = _write("late", "a,b\n" + rows + "1,x\n", folder=tmp_path)
    with pytest.raises(ValueError, match=r"column 'b' is not numeric: data row 300001 "
                                         r"\(line 300002\) holds 'x'"):
        load_csv(late)
    assert load_csv(_write("big", "a,b\n" + rows, folder=tmp_path)).X.shape == (300_000, 2)


@pytest.mark.slow
def test_a_large_csv_loads_within_twice_pandas_time_and_under_three_times_its_size(tmp_path):
    """2,000,000 x 2 rows, each load in a fresh process (experiments/speed/bench_csv.py),
    median of 3."""
    bench_csv = load_script("experiments/speed/bench_csv.py")

    path = tmp_path / "big.csv"
    bench_csv.write_csv(path, 2_000_000, 2)
    runs = {loader: [bench_csv.measure(loader, path) for _ in range(3)]
            for loader in ("pandas", "gmmlab")}
    seconds = {loader: np.median([run["seconds"] for run in found])
               for loader, found in runs.items()}
    assert seconds["gmmlab"] < 2 * seconds["pandas"]
    assert max(run["peak_kib"] for run in runs["gmmlab"]) * 1024 < 3 * path.stat().st_size
    assert runs["gmmlab"][0]["shape"] == [2_000_000, 2]


def test_a_fingerprint_changes_with_the_data_and_only_with_it(tmp_path):
    path = _write("data", "a,b\n1,2\n3,5\n", folder=tmp_path)
    first = datasets.fingerprint("csv", path=path)
    assert datasets.fingerprint("csv", path=path, columns=["a"]) == first  # the file's sha256
    assert first == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text("a,b\n1,2\n3,6\n")
    assert datasets.fingerprint("csv", path=path) != first
    synthetic = datasets.fingerprint("synthetic", n_samples=50, seed=1)
    assert synthetic == datasets.fingerprint("synthetic", n_samples=50, seed=1)
    assert synthetic != datasets.fingerprint("synthetic", n_samples=50, seed=2)
    assert datasets.fingerprint("faithful") == datasets.shipped_checksums()["faithful.csv"]


def test_unknown_dataset_lists_the_available_ones():
    with pytest.raises(ValueError, match="unknown data set 'faithfull'; available: .*'faithful'"):
        load_dataset("faithfull")


def test_plot_dataset_draws_histograms_and_scatters(tmp_path):
    ax = plot_dataset(load_dataset("tutorial_1d"), bins=20)
    assert len(ax.containers) == 3  # one stacked bar group per true component
    ax.figure.savefig(tmp_path / "one.png")
    ax = plot_dataset(load_dataset("faithful"))
    assert len(ax.collections) == 1 and ax.collections[0].get_offsets().shape == (272, 2)
    with pytest.raises(ValueError, match="iris has 4 features"):
        plot_dataset(load_dataset("iris"))
    assert (tmp_path / "one.png").stat().st_size > 1000
