"""Figures shared by reports: matplotlib only, drawn onto a given or new Axes."""

import matplotlib

matplotlib.use("Agg")  # reports are written to files; no screen is assumed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_dataset(dataset, ax=None, bins=30):
    """1-D: histogram (stacked by true label when known); 2-D: scatter coloured by true label.

    Returns the Axes. Higher-dimensional data are refused: project them first.
    """
    if ax is None:
        ax = plt.figure(figsize=(5, 4)).add_subplot()
    X, labels = dataset.X, dataset.labels
    if dataset.n_features == 1:
        if labels is None:
            ax.hist(X[:, 0], bins=bins, color="0.6", edgecolor="white")
        else:
            groups = [X[labels == k, 0] for k in np.unique(labels)]
            ax.hist(groups, bins=bins, stacked=True, edgecolor="white",
                    label=[f"z = {k}" for k in np.unique(labels)])
            ax.legend(frameon=False)
        ax.set_xlabel(dataset.feature_names[0])
        ax.set_ylabel("count")
    elif dataset.n_features == 2:
        colours = {"color": "0.4"} if labels is None else {"c": labels, "cmap": "tab10"}
        ax.scatter(X[:, 0], X[:, 1], s=10, alpha=0.8, **colours)
        ax.set_xlabel(dataset.feature_names[0])
        ax.set_ylabel(dataset.feature_names[1])
    else:
        raise ValueError(f"plot_dataset draws 1-D or 2-D data; {dataset.name} has "
                         f"{dataset.n_features} features.")
    ax.set_title(f"{dataset.name} (N = {dataset.n_samples})")
    return ax


BACKEND_COLOURS = {"em": "tab:blue", "sklearn": "tab:orange", "sklearn_vb": "tab:green",
                   "pymc": "tab:red", "mclust": "tab:purple"}


def _colour(label):
    """The colour of the backend a label (e.g. 'sklearn_vb n_init=5') starts with."""
    matches = [name for name in BACKEND_COLOURS if str(label).startswith(name)]
    return BACKEND_COLOURS[max(matches, key=len)] if matches else "tab:gray"  # user backends


def plot_fitted_densities(dataset, fits):
    """Each fit over the data: fits is a list of (label, weights, means, covariances).

    1-D: one histogram with every fit's mixture density (solid) and components (dotted).
    2-D: one panel per fit: scatter, component ellipses at 1 and 2 sigma, density contours.
    Returns the Figure.
    """
    from gmmlab.metrics import log_likelihood_per_sample

    X = dataset.X
    if dataset.n_features == 1:
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.hist(X[:, 0], bins=30, density=True, color="0.85", edgecolor="white")
        grid = np.linspace(X.min() - X.std(), X.max() + X.std(), 400)[:, None]
        for label, weights, means, covariances in fits:
            colour = _colour(label)
            ax.plot(grid, np.exp(log_likelihood_per_sample(grid, weights, means, covariances)),
                    color=colour, label=label)
            for w, m, c in zip(weights, means, covariances, strict=True):
                density = w * np.exp(-0.5 * (grid[:, 0] - m[0]) ** 2 / c[0, 0]) / np.sqrt(
                    2 * np.pi * c[0, 0])
                ax.plot(grid, density, color=colour, linestyle=":", linewidth=1)
        ax.set_xlabel(dataset.feature_names[0])
        ax.set_ylabel("density")
        ax.legend(frameon=False)
        ax.set_title(f"{dataset.name}: fitted densities and components")
        return fig
    if dataset.n_features != 2:
        raise ValueError(f"fitted densities are drawn for 1-D or 2-D data, not "
                         f"{dataset.n_features}-D.")
    fig, axes = plt.subplots(1, len(fits), figsize=(4 * len(fits), 4), squeeze=False,
                             sharex=True, sharey=True)
    pad = 0.1 * np.ptp(X, axis=0)
    xs = np.linspace(X[:, 0].min() - pad[0], X[:, 0].max() + pad[0], 120)
    ys = np.linspace(X[:, 1].min() - pad[1], X[:, 1].max() + pad[1], 120)
    grid = np.array(np.meshgrid(xs, ys)).reshape(2, -1).T
    for ax, (label, weights, means, covariances) in zip(axes[0], fits, strict=True):
        ax.scatter(X[:, 0], X[:, 1], s=6, color="0.6")
        density = log_likelihood_per_sample(grid, weights, means, covariances)
        ax.contour(xs, ys, np.exp(density).reshape(len(ys), len(xs)), levels=8,
                   colors=_colour(label), linewidths=0.6, alpha=0.6)
        for m, c in zip(means, covariances, strict=True):
            for radius in (1, 2):
                _ellipse(ax, m, c, radius, _colour(label))
        ax.set_title(label)
        ax.set_xlabel(dataset.feature_names[0])
    axes[0, 0].set_ylabel(dataset.feature_names[1])
    fig.suptitle(f"{dataset.name}: components at 1 and 2 sigma, density contours")
    fig.tight_layout()
    return fig


def _ellipse(ax, mean, covariance, radius, colour):
    """The contour (x - mu)^T Sigma^{-1} (x - mu) = radius^2."""
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    angle = np.linspace(0, 2 * np.pi, 100)
    circle = np.array([np.cos(angle), np.sin(angle)]) * radius
    points = eigenvectors @ (np.sqrt(np.maximum(eigenvalues, 0))[:, None] * circle)
    ax.plot(mean[0] + points[0], mean[1] + points[1], color=colour,
            linewidth=1.5 if radius == 1 else 0.8, linestyle="-" if radius == 1 else "--")


def plot_criteria_vs_k(summary, criteria):
    """Criterion (lower is better) against K, one line per variant, the chosen K starred.

    summary: DataFrame with columns variant, n_components and the criteria (means over seeds).
    """
    variants = sorted(summary["variant"].unique())
    # a backend's colour; its second and third variants dashed and dotted
    styles = {v: ("-", "--", ":")[[_colour(w) for w in variants[:i]].count(_colour(v)) % 3]
              for i, v in enumerate(variants)}
    fig, axes = plt.subplots(1, len(criteria), figsize=(4 * len(criteria), 4), squeeze=False)
    for ax, criterion in zip(axes[0], criteria, strict=True):
        for variant, rows in summary.groupby("variant"):
            rows = rows.dropna(subset=[criterion]).sort_values("n_components")
            if rows.empty:
                continue
            ax.plot(rows["n_components"], rows[criterion], marker="o", color=_colour(variant),
                    linestyle=styles[variant], label=variant)
            best = rows.loc[rows[criterion].idxmin()]
            ax.plot(best["n_components"], best[criterion], marker="*", markersize=16,
                    color=_colour(variant))
        ax.set_xlabel("K")
        ax.set_title(f"{criterion.split('.')[0].upper()} (lower is better; * = chosen)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False)
    rows_of_legend = -(-len(labels) // 4)
    fig.tight_layout(rect=(0, 0.07 * rows_of_legend, 1, 1))
    return fig


def plot_loglik_histories(histories):
    """EM's log-likelihood after every iteration: histories is a list of (label, values)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, values in histories:
        ax.plot(np.arange(len(values)), values, marker=".", label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("train log-likelihood")
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def plot_singularity(table):
    """Smallest covariance eigenvalue (relative to the data variance) per run and variant, one
    row per variant: o final parameters, x failed fit, v smallest in any posterior draw."""
    floor = 1e-18  # the axis' left end: zero eigenvalues and failed fits are drawn there
    variants = sorted(table["variant"].unique())
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.28 * len(variants)))
    any_draw = "diagnostics.min_eigenvalue_relative_any_draw"
    for i, variant in enumerate(variants):
        rows = table[table["variant"] == variant]
        colour = _colour(rows["backend"].iloc[0])
        values = rows["singular.min_eigenvalue_relative"].astype(float).dropna()
        ax.scatter(values.clip(lower=floor), np.full(len(values), i), color=colour, marker="o")
        failed = int((rows["status"] == "failed").sum())
        ax.scatter(np.full(failed, floor), np.full(failed, i), color=colour, marker="x", s=60)
        if any_draw in rows:
            draws = rows[any_draw].astype(float).dropna()
            ax.scatter(draws.clip(lower=floor), np.full(len(draws), i), color=colour,
                       marker="v", s=50)
    ax.set_yticks(range(len(variants)), variants, fontsize="small")
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("smallest eigenvalue / data variance")
    ax.set_title("o final parameters, x fit failed (no parameters), v smallest in any draw",
                 fontsize="small")
    fig.tight_layout()
    return fig


def plot_bootstrap_lrt(results, title=""):
    """One panel per bootstrap LRT (:class:`gmmlab.bootstrap.BootstrapLRT`): the histogram of
    the replicate statistics, the observed statistic as a line, and the p-value. Returns the
    Figure."""
    figure, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.2),
                                squeeze=False)
    for ax, result in zip(axes[0], results, strict=True):
        # bins over the replicates and the observed statistic, so both show on one axis
        edges = np.linspace(min(result.replicates.min(), 0.0),
                            max(result.replicates.max(), result.observed), 50)
        ax.hist(result.replicates, bins=edges, color="0.6", edgecolor="white")
        ax.axvline(result.observed, color="tab:red", label=f"observed {result.observed:.2f}")
        ax.set_title(f"{result.model}: {result.n_components} vs {result.n_components + 1}, "
                     f"p = {result.p_value:.3f} (B = {len(result.replicates)})", fontsize=9)
        ax.set_xlabel(r"bootstrap LRTS = $2\,(\ell_{K+1} - \ell_K)$")
        ax.legend(frameon=False, fontsize=8)
    axes[0, 0].set_ylabel("replicates")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
