"""Data sets: ancestor-sampled synthetic data with their true parameters, the classic real sets
shipped with the package, user CSV files, and user functions (``custom`` with a target, or an
entry point of the group ``gmmlab.datasets``, see :mod:`gmmlab.plugins`).

Every data set is deterministic given its name, options and seed, so every backend fits the same
numbers. ``load_dataset(name, **options)`` is the one entry point; ``available()`` lists names.
"""

import csv
import hashlib
import re
from dataclasses import dataclass, field, replace
from functools import partial
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from gmmlab import plugins

COVARIANCE_SHAPES = ("spherical", "diag", "full")


@dataclass(frozen=True)
class Truth:
    """The generating mixture: weights (K,), means (K, D), full covariances (K, D, D)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray


@dataclass(frozen=True)
class Dataset:
    """Training data ``X`` (N, D), optional held-out ``X_test``, true labels and parameters."""

    name: str
    X: np.ndarray
    feature_names: tuple
    provenance: str
    labels: np.ndarray | None = None
    truth: Truth | None = None
    X_test: np.ndarray | None = None
    labels_test: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]


# ------------------------------------------------------------------ sampling


def ancestor_sample(weights, means, covariances, n_samples, seed):
    """Draw z_n ~ Categorical(weights), then x_n ~ N(means[z_n], covariances[z_n]).

    weights (K,), means (K, D), covariances (K, D, D) (or (K,) variances when D = 1).
    Uses ``numpy.random.RandomState(seed)``: z by ``choice``, then x_n = mu_z + L_z e_n with
    e = ``standard_normal((N, D))`` and L_z the Cholesky factor, which for D = 1 is the legacy
    ``np.random.normal(mu[z], sqrt(var[z]))`` draw value for value. Returns X (N, D), z (N,).
    """
    weights, means, covariances = check_mixture(weights, means, covariances)
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    rng = np.random.RandomState(seed)
    z = rng.choice(len(weights), size=int(n_samples), p=weights)
    noise = rng.standard_normal((int(n_samples), means.shape[1]))
    factors = np.linalg.cholesky(covariances)
    return means[z] + np.einsum("nde,ne->nd", factors[z], noise), z


def check_mixture(weights, means, covariances, atol=1e-10):
    """Validate and return (weights (K,), means (K, D), covariances (K, D, D)) as float arrays.

    The rule for a mixture's parameters, for a data set's truth and a backend's result alike
    (:func:`gmmlab.backends.check_result`): every entry finite; weights pi_k >= 0 with
    ``abs(sum_k pi_k - 1) <= atol`` (then divided by their sum); covariances of shape
    (K, D, D), symmetric (``max abs(Sigma - Sigma^T) <= 1e-8 max abs(Sigma)``) and positive
    definite (smallest
    eigenvalue > 0). Raises ValueError naming the first entry that breaks it.
    """
    weights = np.asarray(weights, dtype=float)
    means = np.asarray(means, dtype=float)
    covariances = np.asarray(covariances, dtype=float)
    if weights.ndim != 1:
        raise ValueError(f"weights must be one-dimensional (K,), got shape {weights.shape}.")
    K = len(weights)
    if means.ndim == 1:
        means = means[:, np.newaxis]
    if covariances.ndim == 1:
        covariances = covariances[:, np.newaxis, np.newaxis]
    if means.shape[0] != K:
        raise ValueError(f"means must have {K} rows (one per weight), got shape {means.shape}.")
    D = means.shape[1]
    if covariances.shape != (K, D, D):
        raise ValueError(f"covariances must have shape {(K, D, D)}, got {covariances.shape}.")
    for what, values in (("weights", weights), ("means", means), ("covariances", covariances)):
        if not np.all(np.isfinite(values)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
            raise ValueError(f"{what} must be finite, got {values[bad]} at index "
                             f"{bad[0] if len(bad) == 1 else bad}.")
    if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0, rtol=0, atol=atol):
        raise ValueError(f"weights must be non-negative and sum to 1 (within {atol:g}), got "
                         f"{weights.tolist()} (sum {weights.sum():.10g}).")
    for k, covariance in enumerate(covariances):
        if np.abs(covariance - covariance.T).max() > 1e-8 * np.abs(covariance).max():
            raise ValueError(f"covariance {k} is not symmetric: {covariance.tolist()}.")
        smallest = np.linalg.eigvalsh(covariance)[0]
        if smallest <= 0:
            raise ValueError(
                f"covariance {k} is not positive definite (smallest eigenvalue {smallest:.3g})."
            )
    return weights / weights.sum(), means, covariances


def random_truth(n_components, n_features, *, separation=3.0, imbalance=1.0,
                 covariance="full", condition_number=4.0, seed=0, max_tries=10_000):
    """A random mixture for sweeps, all from one seed.

    * covariance: 'spherical' (s_k^2 I), 'diag' (axis-aligned) or 'full' (randomly rotated); the
      eigenvalues of each covariance are log-uniform in [1, condition_number] (spherical: one
      value), scaled to unit geometric mean so components have comparable volumes.
    * imbalance: ratio of the largest to the smallest weight; weights ~ imbalance^u, u evenly
      spaced in [0, 1], shuffled.
    * separation: every pair of means satisfies
      sqrt((mu_i - mu_j)^T Sbar^{-1} (mu_i - mu_j)) >= separation with Sbar = (Sigma_i + Sigma_j)/2
      (the Mahalanobis distance under the pair's average covariance).
    """
    if covariance not in COVARIANCE_SHAPES:
        raise ValueError(
            f"covariance must be one of {list(COVARIANCE_SHAPES)}, got {covariance!r}."
        )
    if imbalance < 1 or condition_number < 1 or separation < 0:
        raise ValueError("imbalance and condition_number must be >= 1 and separation >= 0.")
    rng = np.random.RandomState(seed)
    K, D = int(n_components), int(n_features)
    weights = imbalance ** np.linspace(0, 1, K)
    weights = rng.permutation(weights / weights.sum())
    covariances = np.stack([_random_covariance(rng, D, covariance, condition_number)
                            for _ in range(K)])
    box = max(separation, 1.0) * np.sqrt(condition_number) * K ** (1 / D)
    means = [rng.uniform(-box, box, D)]
    tries = 0
    while len(means) < K:
        candidate = rng.uniform(-box, box, D)
        k = len(means)
        if all(_mahalanobis(candidate, means[j], covariances[k], covariances[j]) >= separation
               for j in range(k)):
            means.append(candidate)
        tries += 1
        if tries % 1000 == 0:
            box *= 1.5  # the box was too crowded for the separation asked
        if tries > max_tries:
            raise RuntimeError(f"could not place {K} means {separation} apart in {max_tries} tries")
    return Truth(weights=weights, means=np.array(means), covariances=covariances)


def _random_covariance(rng, D, shape, condition_number):
    eigenvalues = np.exp(rng.uniform(0, np.log(condition_number), D if shape != "spherical" else 1))
    eigenvalues = np.resize(eigenvalues / np.exp(np.log(eigenvalues).mean()), D)
    if shape != "full":
        return np.diag(eigenvalues)
    rotation, r = np.linalg.qr(rng.standard_normal((D, D)))
    rotation *= np.sign(np.diag(r))
    covariance = (rotation * eigenvalues) @ rotation.T
    return (covariance + covariance.T) / 2


def _mahalanobis(a, b, covariance_a, covariance_b):
    difference = a - b
    return float(np.sqrt(difference @ np.linalg.solve((covariance_a + covariance_b) / 2,
                                                      difference)))


def mixture_dataset(name, truth, n_samples, seed, provenance):
    """A Dataset drawn from a known mixture by ancestor sampling, truth and labels kept."""
    X, z = ancestor_sample(truth.weights, truth.means, truth.covariances, n_samples, seed)
    names = tuple(f"x{d}" for d in range(X.shape[1]))
    truth = Truth(*check_mixture(truth.weights, truth.means, truth.covariances))
    return Dataset(name, X, names, provenance, labels=z, truth=truth,
                   metadata={"seed": seed, "n_samples": int(n_samples)})


# ------------------------------------------------------------------ presets

TUTORIAL_1D = Truth(
    weights=np.array([0.2, 0.5, 0.3]),
    means=np.array([[-1.0], [2.0], [5.0]]),
    covariances=np.array([0.2, 0.5, 0.1])[:, None, None],
)
TUTORIAL_2D = Truth(
    weights=np.array([0.3, 0.2, 0.5]),
    means=np.array([[1.2, 0.4], [-4.4, 1.0], [4.1, -0.3]]),
    covariances=np.array([[[0.8, -0.4], [-0.4, 1.0]],
                          [[1.2, -0.8], [-0.8, 1.0]],
                          [[1.2, 0.6], [0.6, 3.0]]]),
)


def _tutorial_1d(n_samples=100, seed=42):
    return mixture_dataset(
        "tutorial_1d", TUTORIAL_1D, n_samples, seed,
        "1-D three-component teaching example: means -1, 2, 5; weights 0.2, 0.5, 0.3; variances "
        "0.2, 0.5, 0.1; np.random.seed(42), z = choice(3, N, p=pi), x = normal(mu[z], sd[z]).",
    )


def _tutorial_2d(n_samples=600, seed=0):
    return mixture_dataset(
        "tutorial_2d", TUTORIAL_2D, n_samples, seed,
        "2-D three-component teaching example (weights 0.3, 0.2, 0.5), ancestor-sampled.",
    )


def _stretched_blobs(n_samples=500, seed=20):
    """make_blobs(500, centers=3, cluster_std=1.5, random_state=20) @ RandomState(0).randn(2, 2)."""
    from sklearn.datasets import make_blobs

    X, labels, centres = make_blobs(n_samples=n_samples, centers=3, cluster_std=1.5,
                                    random_state=seed, return_centers=True)
    stretch = np.random.RandomState(0).randn(2, 2)
    covariance = 1.5**2 * stretch.T @ stretch
    truth = Truth(weights=np.bincount(labels, minlength=3) / len(labels),
                  means=centres @ stretch, covariances=np.stack([covariance] * 3))
    return Dataset("stretched_blobs", X @ stretch, ("x0", "x1"),
                   "make_blobs(n_samples=500, centers=3, cluster_std=1.5, random_state=20) "
                   "multiplied by RandomState(0).randn(2, 2): three ellipsoidal clusters.",
                   labels=labels, truth=truth, metadata={"seed": seed, "n_samples": n_samples})


def _synthetic(n_components=3, n_features=2, n_samples=500, separation=3.0, imbalance=1.0,
               covariance="full", condition_number=4.0, seed=0):
    truth = random_truth(n_components, n_features, separation=separation, imbalance=imbalance,
                         covariance=covariance, condition_number=condition_number, seed=seed)
    dataset = mixture_dataset(
        "synthetic", truth, n_samples, seed,
        f"random_truth(K={n_components}, D={n_features}, separation={separation}, "
        f"imbalance={imbalance}, covariance={covariance}, condition_number={condition_number}, "
        f"seed={seed}), ancestor-sampled.",
    )
    return replace(dataset, metadata=dataset.metadata | {
        "separation": separation, "imbalance": imbalance, "covariance": covariance,
        "condition_number": condition_number})


def _few_distinct(n_distinct=3, repeats=10):
    """Distinct 2-D points, each repeated: K > n_distinct components must collapse."""
    points = np.random.RandomState(0).uniform(-3, 3, (n_distinct, 2))
    return Dataset("few_distinct", np.repeat(points, repeats, axis=0), ("x0", "x1"),
                   f"{n_distinct} distinct points of RandomState(0).uniform(-3, 3), each repeated "
                   f"{repeats} times", labels=np.repeat(np.arange(n_distinct), repeats),
                   metadata={"n_distinct": n_distinct, "repeats": repeats})


def _line(n_blob=60, n_line=8, seed=0):
    """A 2-D standard normal blob plus points exactly on the line y = 2x - 3 beside it."""
    blob = np.random.RandomState(seed).standard_normal((n_blob, 2))
    t = np.linspace(-1, 1, n_line)
    X = np.vstack([blob, np.column_stack([t + 3, 2 * t + 3])])
    return Dataset("line", X, ("x0", "x1"),
                   f"{n_blob} standard normal points and {n_line} points exactly on y = 2x - 3 "
                   "(a component there has a rank-one covariance)",
                   labels=np.repeat([0, 1], [n_blob, n_line]), metadata={"seed": seed})


# ------------------------------------------------------------------ shipped real data

_DATA = resources.files("gmmlab") / "data"


def shipped_checksums():
    """{file name: sha256} from the table of the shipped SOURCES.md (the provenance record)."""
    table = re.findall(r"^\| (\S+\.csv) \| \d+ \| .*? \| ([0-9a-f]{64}) \|$",
                       (_DATA / "SOURCES.md").read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(table)


def _shipped(name):
    """Load a shipped data set after checking its file's sha256 against SOURCES.md."""
    file_name, columns, provenance = SHIPPED[name]
    raw = (_DATA / file_name).read_bytes()
    expected = shipped_checksums()[file_name]
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise OSError(f"shipped data file {file_name} is corrupt: sha256 {actual}, "
                      f"SOURCES.md records {expected}.")
    frame = pd.read_csv(_DATA / file_name)
    if columns is not None:
        frame = frame[list(columns)]
    return Dataset(name, frame.to_numpy(dtype=float), tuple(frame.columns),
                   f"{provenance} (gmmlab/data/{file_name}, sha256 {actual[:12]}..., "
                   f"see gmmlab/data/SOURCES.md)")


# name -> (shipped file, columns or None for all, provenance)
SHIPPED = {
    "faithful": ("faithful.csv", None,
                 "Old Faithful geyser, R datasets::faithful (Härdle 1991; Azzalini & Bowman "
                 "1990): eruption time and waiting time, minutes"),
    "faithful_eruptions": ("faithful.csv", ["eruptions"],
                           "Old Faithful eruption times alone (R datasets::faithful)"),
    "faithful_140": ("faithful_eruptions_140.csv", None,
                     "The 140 eruption times of the tutorial 'Gaussian Mixture Models from "
                     "scratch' (its own sample, not a prefix of R's faithful)"),
    "galaxies": ("galaxies_rg1997.csv", None,
                 "Galaxy velocities in 1000 km/s as analysed by Richardson & Green (1997), "
                 "observation 78 = 26.960 (the default: the corrected value of the mixture "
                 "literature, on a scale where reg_covar defaults make sense)"),
    "galaxies_mass": ("galaxies.csv", None,
                      "Galaxy velocities in km/s, R MASS::galaxies (Roeder 1990), with the typo "
                      "26690 for observation 78 that ?galaxies documents"),
    "acidity": ("acidity.csv", None,
                "Log acidity index of 155 Wisconsin lakes (Crawford et al. 1992; "
                "Richardson & Green 1997)"),
    "enzyme": ("enzyme.csv", None,
               "Enzymatic activity in the blood of 245 individuals (Bechtel et al. 1993; "
               "Richardson & Green 1997)"),
}


def _iris():
    from sklearn.datasets import load_iris

    iris = load_iris()
    return Dataset("iris", iris.data.astype(float), tuple(iris.feature_names),
                   "Fisher's iris, scikit-learn's bundled copy (load_iris); species as labels",
                   labels=iris.target.copy())


# ------------------------------------------------------------------ user CSV


# Text a CSV cell may hold for a missing value (all rejected, naming the row).
MISSING_VALUES = ("", "NA", "NaN", "nan", "null", "None")


def load_csv(path, columns=None, min_rows=2):
    """A user CSV (header row, numeric columns) as a Dataset; ``columns`` selects by name.

    Rejects, naming the file, column and row: a path that is not a readable text file, an empty
    file, repeated or unknown columns, non-numeric values, missing values, fewer than
    ``min_rows`` rows and constant columns. The numbers are parsed once, chunk by chunk, by
    pandas' C parser into one float64 array (the peak memory is that array and a chunk); only a
    file that fails is read again, as text in chunks, to find the first bad cell.
    """
    path = check_text_file(path, "CSV file")
    header = _csv_header(path)
    if columns is not None:
        columns = [columns] if isinstance(columns, str) else list(columns)
        _check_columns(path, columns, header)
    try:
        values = _read_numbers(path, [header.index(c) for c in columns or header])
    except ValueError as error:  # a cell that is not a number, or a ragged row
        if "Error tokenizing" in str(error):
            raise ValueError(f"{path}: {' '.join(str(error).split())}; expected the same "
                             "number of fields on every line.") from None
        _first_bad_cell(path, columns or header)
        raise ValueError(f"{path}: {error}") from None
    if len(values) < min_rows:
        raise ValueError(f"{path}: {len(values)} data rows, at least {min_rows} needed.")
    if not np.isfinite(values).all():
        _first_bad_cell(path, columns or header)
    for j, column in enumerate(columns or header):
        if np.ptp(values[:, j]) == 0:
            raise ValueError(f"{path}: column '{column}' is constant ({values[0, j]:g}); a "
                             f"Gaussian mixture needs variation in every feature.")
    return Dataset(path.stem, values, tuple(columns or header), f"user CSV {path.resolve()}",
                   metadata={"path": str(path.resolve())})


def _read_numbers(path, positions, chunk_rows=1 << 18):
    """The columns at ``positions`` of a CSV (after its header row) as a float64 array (N, D),
    parsed by pandas' C parser chunk by chunk into one array sized by the file's line count:
    the peak is that array and a chunk."""
    with open(path, "rb") as handle:
        lines, last = 1, b""
        for block in iter(lambda: handle.read(1 << 22), b""):
            lines, last = lines + block.count(b"\n"), block[-1:]
    values = np.empty((lines - (last == b"\n"), len(positions)))  # rows + header, at most
    filled = 0
    try:
        with pd.read_csv(path, header=None, skiprows=1, dtype=dict.fromkeys(positions, np.float64),
                         na_values=list(MISSING_VALUES), keep_default_na=False,
                         low_memory=False, chunksize=chunk_rows) as chunks:
            for chunk in chunks:  # every column read, so a ragged row is an error
                values[filled:filled + len(chunk)] = chunk[positions].to_numpy()
                filled += len(chunk)
    except pd.errors.EmptyDataError:  # a header and no rows
        pass
    return values[:filled]


def check_text_file(path, what):
    """``path`` as a Path when it names a readable text file; else an error naming it and
    saying what is wrong (missing, a folder, unreadable, binary)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder; expected a file.")
    try:
        with open(path, "rb") as handle:
            start = handle.read(65536)
    except OSError as error:
        raise OSError(f"{what} {path} cannot be read ({error.strerror}).") from None
    if b"\0" in start:
        raise ValueError(f"{what} {path} is not text (it holds NUL bytes, byte "
                         f"{start.index(b'\0')}); expected comma-separated text.")
    try:
        start.decode("utf-8")
    except UnicodeDecodeError as error:
        if len(start) < 65536 or error.start < len(start) - 4:  # not a character cut short
            raise ValueError(f"{what} {path} is not UTF-8 text (byte {error.start}); expected "
                             "comma-separated text.") from None
    return path


def _csv_header(path):
    """The column names of a CSV's header row (a UTF-8 byte-order mark, as Excel writes, is
    not part of the first name); an empty file or repeated names are errors."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        line = handle.readline()
    names = next(csv.reader([line], skipinitialspace=True), [])
    if not line.strip():
        raise ValueError(f"{path} is empty or its first line is blank; expected a header row "
                         "of column names, then one row of numbers per sample.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}: the header names column(s) {repeated} more than once; "
                         "expected each column name once.")
    return names


def _check_columns(path, columns, header):
    if not columns:
        raise ValueError(f"{path}: columns=[] selects nothing; expected column names from "
                         f"{header}.")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(f"{path}: columns={columns} names {repeated} more than once; expected "
                         "each column once.")
    unknown = [c for c in columns if c not in header]
    if unknown:
        raise ValueError(f"{path}: no column {unknown} (columns are {header}).")


def _first_bad_cell(path, columns, chunk_rows=200_000):
    """Raise ValueError naming the first missing or non-numeric cell of ``columns`` (file,
    column, data row and line); the file is read as text in chunks."""
    offset = 0
    for chunk in pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False,
                             skipinitialspace=True, chunksize=chunk_rows,
                             encoding="utf-8-sig"):
        for column in columns:
            text = chunk[column].str.strip()
            missing = text.isin(MISSING_VALUES).to_numpy()
            numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(numbers) & ~missing
            first_missing = np.flatnonzero(missing)[:1]
            first_bad = np.flatnonzero(bad)[:1]
            if len(first_missing) and (not len(first_bad) or first_missing[0] < first_bad[0]):
                row = offset + int(first_missing[0]) + 1
                raise ValueError(f"{path}: column '{column}' has a missing value in data row "
                                 f"{row} (line {row + 1}); remove or impute it.")
            if len(first_bad):
                row = offset + int(first_bad[0]) + 1
                raise ValueError(f"{path}: column '{column}' is not numeric: data row {row} "
                                 f"(line {row + 1}) holds {text.iloc[first_bad[0]]!r}; expected "
                                 f"a finite number.")
        offset += len(chunk)


def fingerprint(name, target=None, **options):
    """sha256 of what data set ``name`` is made from: its input file (a user CSV, a shipped
    file) or else the array its loader generates. Resume compares it to find changed data."""
    digest = hashlib.sha256()
    if name == "csv" and "path" in options:
        path = check_text_file(options["path"], "CSV file")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    elif name in SHIPPED:
        digest.update((_DATA / SHIPPED[name][0]).read_bytes())
    else:
        dataset = loader(name, target)(**options)
        X = np.ascontiguousarray(dataset.X if isinstance(dataset, Dataset) else
                                 np.asarray(dataset, dtype=float))
        digest.update(str(X.shape).encode() + str(X.dtype).encode())
        digest.update(X.tobytes())
    return digest.hexdigest()


# ------------------------------------------------------------------ registry

REGISTRY = {
    "tutorial_1d": _tutorial_1d,
    "tutorial_2d": _tutorial_2d,
    "stretched_blobs": _stretched_blobs,
    "synthetic": _synthetic,
    "few_distinct": _few_distinct,
    "line": _line,
    **{name: partial(_shipped, name) for name in SHIPPED},
    "iris": _iris,
    "csv": load_csv,
}


ENTRY_POINT_GROUP = "gmmlab.datasets"
# ``dataset=custom dataset.target=module:function``: any function returning a Dataset or an
# (N, D) array.
CUSTOM = plugins.CUSTOM


def available():
    """Names accepted by :func:`load_dataset`."""
    return sorted(REGISTRY) + sorted(plugins.registered(ENTRY_POINT_GROUP)) + [CUSTOM]


def load_dataset(name, *, standardize=False, test_size=None, split_seed=0, target=None,
                 **options):
    """Load a named data set; ``options`` go to its loader (e.g. ``n_samples``, ``seed``).

    Parameters
    ----------
    name : str
        A name of :func:`available` (``'faithful'``, ``'tutorial_1d'``, ``'synthetic'``,
        ``'csv'``, ...), an installed plug-in's, or ``'custom'`` with ``target``.
    standardize : bool, default=False
        Centre and scale every feature by the training mean and standard deviation (test data
        and true parameters transformed alike).
    test_size : float or None, default=None
        Fraction in (0, 1) held out as ``X_test``, by a permutation seeded with
        ``split_seed``.
    split_seed : int, default=0
        Seed of the held-out split.
    target : str or None, default=None
        For ``custom``: the "module:function" that returns the data.
    **options
        The loader's options (``path`` and ``columns`` for ``csv``; ``n_samples``, ``seed``,
        ... for the generated sets).

    Returns
    -------
    Dataset
        ``X`` (N, D), ``X_test`` or None, ``feature_names``, ``labels`` and ``truth`` when
        known, ``provenance``, and ``metadata`` (options, split and standardisation).

    Raises
    ------
    ValueError
        An unknown name, a bad option, or data that fail the checks (a CSV's bad cell is named
        by file, column and row).

    Examples
    --------
    >>> from gmmlab.datasets import load_dataset
    >>> data = load_dataset("faithful", test_size=0.25)
    >>> data.X.shape, data.X_test.shape, data.feature_names
    ((204, 2), (68, 2), ('eruptions', 'waiting'))
    >>> load_dataset("tutorial_1d").truth.means.ravel()
    array([-1.,  2.,  5.])
    """
    dataset = loader(name, target)(**options)
    if not isinstance(dataset, Dataset):
        dataset = _from_array(dataset, name if target is None else target, options)
    if test_size is not None:
        dataset = train_test_split(dataset, test_size, split_seed)
    if standardize:
        dataset = standardized(dataset)
    return dataset


def loader(name, target):
    """The function that makes data set ``name``: built in, an entry point, or ``target``."""
    return plugins.find(name, target, kind="data set", key="dataset", built_in=REGISTRY,
                        group=ENTRY_POINT_GROUP, available=available)


def _from_array(values, source, options):
    """A user function's (N, D) array as a Dataset, features named x1, x2, ..."""
    X = np.asarray(values, dtype=float)
    if X.ndim == 1:
        X = X[:, np.newaxis]
    if X.ndim != 2 or len(X) < 2 or not np.isfinite(X).all():
        raise ValueError(f"data set {source!r} returned an array of shape {X.shape}; expected "
                         "a Dataset or finite numbers of shape (n_samples >= 2, n_features).")
    return Dataset(str(source), X, tuple(f"x{j + 1}" for j in range(X.shape[1])),
                   f"{source}({', '.join(f'{k}={v!r}' for k, v in options.items())})")


def train_test_split(dataset, test_size, seed):
    """Hold out round(test_size * N) samples chosen by ``RandomState(seed).permutation``."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}.")
    n_test = int(round(test_size * dataset.n_samples))
    if n_test < 1 or n_test > dataset.n_samples - 2:
        raise ValueError(f"test_size={test_size} leaves {n_test} of {dataset.n_samples} samples "
                         f"for testing; need at least 1 and 2 left for training.")
    order = np.random.RandomState(seed).permutation(dataset.n_samples)
    test, train = order[:n_test], order[n_test:]
    labels = dataset.labels
    return replace(
        dataset, X=dataset.X[train], X_test=dataset.X[test],
        labels=None if labels is None else labels[train],
        labels_test=None if labels is None else labels[test],
        metadata=dataset.metadata | {"test_size": test_size, "split_seed": seed},
    )


def standardized(dataset):
    """(x - m) / s with training mean m and standard deviation s; truth transformed alike."""
    centre, scale = dataset.X.mean(axis=0), dataset.X.std(axis=0)
    if np.any(scale == 0):
        constant = [n for n, s in zip(dataset.feature_names, scale, strict=True) if s == 0]
        raise ValueError(f"cannot standardise {dataset.name}: constant feature(s) {constant}.")
    truth = dataset.truth
    if truth is not None:
        truth = Truth(truth.weights, (truth.means - centre) / scale,
                      truth.covariances / np.outer(scale, scale))
    X_test = None if dataset.X_test is None else (dataset.X_test - centre) / scale
    return replace(dataset, X=(dataset.X - centre) / scale, X_test=X_test, truth=truth,
                   metadata=dataset.metadata | {"standardized": {"mean": centre.tolist(),
                                                                 "std": scale.tolist()}})
