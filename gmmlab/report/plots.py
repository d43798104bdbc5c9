"""Figures shared by reports: matplotlib only, drawn onto a given or new Axes."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from gmmlab.report import analysis
from gmmlab.report.columns import CRITERION


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


# One colour per backend family (analysis.BACKEND_FAMILIES); users' backends grey.
BACKEND_COLOURS = {"em": "tab:blue", "sklearn": "tab:orange", "sklearn_vb": "tab:green",
                   "pymc": "tab:red", "gibbs": "tab:brown", "mclust": "tab:purple"}


def _colour(label):
    """The colour of the backend family of a label (e.g. 'sklearn_vb n_init=5')."""
    return BACKEND_COLOURS.get(analysis.backend_family(label), "tab:gray")


def _line_styles(labels):
    """(colour, line style) of each label: its backend's colour, a backend's second and third
    variants dashed and dotted; a backend with more than three variants (e.g. fourteen
    covariance models) gives each its own colour of tab20 instead, solid and dashed in turn."""
    by_colour = {}
    for label in labels:
        by_colour.setdefault(_colour(label), []).append(label)
    styles = {}
    for colour, group in by_colour.items():
        for i, label in enumerate(group):
            styles[label] = (colour, ("-", "--", "-.")[i]) if len(group) <= 3 else (
                plt.cm.tab20(i % 20), ("-", "--")[i // 10 % 2])
    return styles


def plot_fitted_densities(dataset, fits, name=None):
    """Each fit over the data: fits is a list of (label, weights, means, covariances), drawn in
    that order; the truth (``dataset.truth``) in black where known; ``name`` in the title
    (default: the data set's).

    1-D: one histogram with every fit's mixture density (solid) and components (dotted), the
    true density dashed. 2-D: one panel per fit: scatter, component ellipses at 1 and 2 sigma,
    density contours, the true components' 1-sigma ellipses dashed. Returns the Figure.
    """
    truth, name = dataset.truth, name or dataset.name
    from gmmlab.model.metrics import log_likelihood_per_sample

    X = dataset.X
    if dataset.n_features == 1:
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.hist(X[:, 0], bins=30, density=True, color="0.85", edgecolor="white")
        grid = np.linspace(X.min() - X.std(), X.max() + X.std(), 400)[:, None]
        styles = _line_styles([label for label, *_ in fits])
        for label, weights, means, covariances in fits:
            colour, linestyle = styles[label]
            ax.plot(grid, np.exp(log_likelihood_per_sample(grid, weights, means, covariances)),
                    color=colour, linestyle=linestyle, label=label)
            for w, m, c in zip(weights, means, covariances, strict=True):
                density = w * np.exp(-0.5 * (grid[:, 0] - m[0]) ** 2 / c[0, 0]) / np.sqrt(
                    2 * np.pi * c[0, 0])
                ax.plot(grid, density, color=colour, linestyle=":", linewidth=1)
        if truth is not None:
            ax.plot(grid, np.exp(log_likelihood_per_sample(
                grid, truth.weights, truth.means, truth.covariances)), color="black",
                linestyle="--", label="truth")
        ax.set_xlabel(dataset.feature_names[0])
        ax.set_ylabel("density")
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
        ax.set_title(f"{name}: fitted densities and components")
        return fig
    if dataset.n_features != 2:
        raise ValueError(f"fitted densities are drawn for 1-D or 2-D data, not "
                         f"{dataset.n_features}-D.")
    columns = min(len(fits), 4)
    rows = -(-len(fits) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 4 * rows), squeeze=False,
                             sharex=True, sharey=True)
    pad = 0.1 * np.ptp(X, axis=0)
    xs = np.linspace(X[:, 0].min() - pad[0], X[:, 0].max() + pad[0], 120)
    ys = np.linspace(X[:, 1].min() - pad[1], X[:, 1].max() + pad[1], 120)
    grid = np.array(np.meshgrid(xs, ys)).reshape(2, -1).T
    for ax in axes.flat[len(fits):]:
        ax.set_visible(False)
    for ax, (label, weights, means, covariances) in zip(axes.flat, fits, strict=False):
        ax.scatter(X[:, 0], X[:, 1], s=6, color="0.6")
        density = log_likelihood_per_sample(grid, weights, means, covariances)
        ax.contour(xs, ys, np.exp(density).reshape(len(ys), len(xs)), levels=8,
                   colors=_colour(label), linewidths=0.6, alpha=0.6)
        for m, c in zip(means, covariances, strict=True):
            for radius in (1, 2):
                _ellipse(ax, m, c, radius, _colour(label))
        if truth is not None:
            for m, c in zip(truth.means, truth.covariances, strict=True):
                _ellipse(ax, m, c, 1, "black", linestyle=":")
        ax.set_title(label, fontsize="small")
        ax.set_xlabel(dataset.feature_names[0])
    for ax in axes[:, 0]:
        ax.set_ylabel(dataset.feature_names[1])
    fig.suptitle(f"{name}: components at 1 and 2 sigma, density contours"
                 + ("; true components at 1 sigma, black dotted" if truth is not None else ""))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / (4 * rows)))  # 0.4 inch left for the title
    return fig


def _ellipse(ax, mean, covariance, radius, colour, linestyle=None):
    """The contour (x - mu)^T Sigma^{-1} (x - mu) = radius^2 (solid at 1, dashed beyond)."""
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    angle = np.linspace(0, 2 * np.pi, 100)
    circle = np.array([np.cos(angle), np.sin(angle)]) * radius
    points = eigenvectors @ (np.sqrt(np.maximum(eigenvalues, 0))[:, None] * circle)
    ax.plot(mean[0] + points[0], mean[1] + points[1], color=colour,
            linewidth=1.5 if radius == 1 else 0.8,
            linestyle=linestyle or ("-" if radius == 1 else "--"))


def plot_criteria_vs_k(summary, criteria, order):
    """Criterion (lower is better) against K, one line per variant, the chosen K starred.

    summary: DataFrame with columns variant, n_components and the criteria (means over seeds);
    order: the variants in the order of the report's tables (legend order).
    """
    variants = [v for v in order if v in set(summary["variant"])]
    styles = _line_styles(variants)
    legend_columns = 4 if len(variants) <= 8 else 3
    fig, axes = plt.subplots(1, len(criteria), figsize=(4 * len(criteria), 4), squeeze=False)
    for ax, criterion in zip(axes[0], criteria, strict=True):
        for variant in variants:
            rows = summary[summary["variant"] == variant]
            rows = rows.dropna(subset=[criterion]).sort_values("n_components")
            if rows.empty:
                continue
            colour, linestyle = styles[variant]
            ax.plot(rows["n_components"], rows[criterion], marker="o", color=colour,
                    linestyle=linestyle, label=variant)
            best = rows.loc[rows[criterion].idxmin()]
            ax.plot(best["n_components"], best[criterion], marker="*", markersize=16,
                    color=colour)
        ax.set_xlabel("K")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{CRITERION[criterion].label} (lower is better; * = chosen)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), legend_columns),
               frameon=False)
    rows_of_legend = -(-len(labels) // legend_columns)
    fig.tight_layout(rect=(0, 0.07 * rows_of_legend, 1, 1))
    return fig


def plot_loglik_histories(histories):
    """EM's log-likelihood after every iteration: histories is a list of (label, values). A
    history that would hide under an earlier one (same length, within 1/1000 of the axis range
    everywhere) is drawn dashed over it and its legend entry names the one it covers."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    every = np.concatenate([np.asarray(values, dtype=float) for _, values in histories])
    close = 1e-3 * max(np.ptp(every[np.isfinite(every)]) if np.isfinite(every).any() else 0, 1e-12)
    drawn = []
    colours = plt.cm.tab20 if len(histories) > 10 else plt.cm.tab10  # a colour per history
    for i, (label, values) in enumerate(histories):
        values = np.asarray(values, dtype=float)
        same = [earlier for earlier, seen in drawn
                if len(seen) == len(values) and np.all(np.abs(seen - values) <= close)]
        ax.plot(np.arange(len(values)), values, color=colours(i % colours.N),
                marker="x" if same else ".",
                linestyle="--" if same else "-",
                label=label + (f" (on top of {same[0]})" if same else ""))
        drawn.append((label, values))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration")
    ax.set_ylabel("train log-likelihood")
    fig.tight_layout()  # before the legend below the axes, which the saved figure grows to hold
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(0, -0.18),
              ncol=2 if len(histories) > 6 else 1)
    return fig


def plot_singularity(table, order):
    """Smallest covariance eigenvalue (relative to the data variance) per run and variant, one
    row per variant (in ``order``): o final parameters, x failed fit, v smallest in any
    posterior draw."""
    floor = 1e-18  # the axis' left end: zero eigenvalues and failed fits are drawn there
    variants = [v for v in order if v in set(table["variant"])]
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
    clipped = 0
    for column in ("singular.min_eigenvalue_relative", any_draw):
        if column in table:
            clipped += int((table[column].astype(float) < floor).sum())
    ax.set_title("o final parameters, x fit failed (no parameters), v smallest in any draw"
                 + (f"; {clipped} values below {floor:g} (0 included) drawn at {floor:g}"
                    if clipped else ""), fontsize="small")
    fig.tight_layout()
    return fig


def plot_accuracy_vs_time(table, accuracy, label, order):
    """Accuracy (``accuracy`` column, named ``label``, higher is better) against fit seconds on
    a log axis, one point per run, one panel per data setting, one colour per variant (legend
    in ``order``)."""
    settings = list(dict.fromkeys(table["data_setting"]))
    columns = min(len(settings), 4)
    rows_of_panels = -(-len(settings) // columns)
    fig, axes = plt.subplots(rows_of_panels, columns, figsize=(3.6 * columns,
                                                               3.2 * rows_of_panels),
                             squeeze=False)
    markers = "osD^vP*X"
    variants = [v for v in order if v in set(table["variant"])]
    handles = {}
    for ax, setting in zip(axes.flat, settings, strict=False):
        rows = table[table["data_setting"] == setting]
        for i, variant in enumerate(variants):
            runs = rows[rows["variant"] == variant]
            if not runs.empty:
                handles[variant] = ax.scatter(
                    runs["fit_seconds"], runs[accuracy], color=_colour(variant),
                    marker=markers[i % len(markers)], label=variant, alpha=0.8)
        _log_seconds_axis(ax, rows["fit_seconds"])
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_title(setting, fontsize="small")
        ax.set_xlabel("fit time (s, log scale)")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{label} (higher is better)")
    for ax in list(axes.flat)[len(settings):]:
        ax.set_visible(False)
    fig.tight_layout()
    # below the panels, every variant once; the saved figure grows to hold it
    labels = [v for v in variants if v in handles]
    wide = max(len(v) for v in labels) > 25
    fig.legend([handles[v] for v in labels], labels, loc="upper center",
               bbox_to_anchor=(0.5, 0), ncol=min(len(labels), 2 if wide else 5), frameon=False)
    return fig


def _log_seconds_axis(ax, seconds):
    """A log x axis labelled at 1, 2, 5 x 10^n within three decades (at 10^n beyond), with
    plain numbers and no minor labels, so labels never run into each other."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    seconds = seconds[seconds > 0]
    decades = np.log10(seconds.max() / seconds.min()) if len(seconds) else 0
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5) if decades < 3 else (1,)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_trace(draws):
    """Trace of weights and means: one row per parameter (the weights, then the means of each
    feature), left its density per component (chains pooled), right its value per draw, one
    line style per chain; one colour per component, named in the legend.

    draws: an xarray Dataset with weights (chain, draw, component) and means (chain, draw,
    component, feature)."""
    weights = draws["weights"].transpose("chain", "draw", ...).to_numpy()
    means = draws["means"].transpose("chain", "draw", ...).to_numpy()
    parameters = [("weights", weights)] + [
        (f"means, feature {d}" if means.shape[-1] > 1 else "means", means[..., d])
        for d in range(means.shape[-1])]
    styles = ("-", "--", ":", "-.")
    fig, axes = plt.subplots(len(parameters), 2, figsize=(10, 2.1 * len(parameters) + 0.6),
                             squeeze=False, gridspec_kw={"width_ratios": (1, 2)})
    for (name, values), (left, right) in zip(parameters, axes, strict=True):
        for k in range(values.shape[-1]):
            colour = plt.cm.tab10(k % 10)
            pooled = values[..., k].ravel()
            left.hist(pooled, bins=40, histtype="step", density=True, color=colour,
                      label=f"component {k}")
            for chain in range(values.shape[0]):
                right.plot(values[chain, :, k], color=colour, alpha=0.6, linewidth=0.5,
                           linestyle=styles[chain % len(styles)])
        left.set_title(f"{name}: density", fontsize="small")
        right.set_title(f"{name}: value per draw", fontsize="small")
        right.set_xlabel("draw")
    chains = min(weights.shape[0], len(styles))
    handles = [plt.Line2D([], [], color=plt.cm.tab10(k % 10)) for k in range(weights.shape[-1])]
    handles += [plt.Line2D([], [], color="0.3", linestyle=styles[c]) for c in range(chains)]
    labels = [f"component {k}" for k in range(weights.shape[-1])] + [
        f"chain {c}" for c in range(chains)]
    fig.tight_layout(rect=(0, 0.06 * 3 / len(parameters) + 0.02, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), frameon=False,
               fontsize="small")
    return fig


def plot_bic_models(cells, chosen, competitive=None):
    """mclust's ``plot(BIC)`` made readable: BIC (lower is better) against K, one line per
    covariance model labelled by its letter code at every point, the axis limited to the
    competitive region (BIC within ``competitive`` of the best: 3% of the best's magnitude,
    at least 60), the choice circled; how many cells lie off the axis is stated.

    cells: DataFrame with model, n_components, bic (the cells not set aside); chosen: the
    chosen cell (Series with model, n_components, bic)."""
    best = float(chosen["bic"])
    competitive = competitive or max(0.03 * abs(best), 60.0)
    top = best + competitive
    fig, ax = plt.subplots(figsize=(9, 5))
    models = list(dict.fromkeys(cells["model"]))
    colours = plt.cm.tab20 if len(models) > 10 else plt.cm.tab10
    hidden = 0
    for i, model in enumerate(models):
        rows = cells[cells["model"] == model].sort_values("n_components")
        colour = np.array(colours(i % colours.N)[:3]) * 0.75  # darkened: the codes stay legible
        ax.plot(rows["n_components"], rows["bic"], color=colour, linewidth=1, alpha=0.7)
        for k, bic in zip(rows["n_components"], rows["bic"], strict=True):
            if bic <= top:
                ax.text(k, bic, model, color=colour, ha="center", va="center",
                        fontsize=8, fontweight="bold",
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
            else:
                hidden += 1
    ax.plot(chosen["n_components"], best, marker="o", markersize=22, markerfacecolor="none",
            markeredgecolor="black", markeredgewidth=1.5)
    ax.annotate(f"chosen: {chosen['model']},{int(chosen['n_components'])} "
                f"(BIC {best:.1f})", (chosen["n_components"], best), xytext=(12, -18),
                textcoords="offset points", fontsize=9)
    ax.set_ylim(best - 0.08 * competitive, top)
    ax.set_xlabel("K")
    ax.set_ylabel("BIC (lower is better)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"BIC of each covariance model; axis cut at the best + {competitive:.0f}: "
                 f"{hidden} of {len(cells)} cells lie above it", fontsize="small")
    fig.tight_layout()
    return fig


def plot_bic_by_model(cells, chosen):
    """scikit-learn's BIC-by-covariance-type bars: per covariance model its lowest BIC over K
    (lower is better; on the bar its K and its BIC minus the chosen one's), the chosen model
    hatched; the axis starts near the
    best so that differences show, which the title states."""
    best = cells.loc[cells.groupby("model", sort=False)["bic"].idxmin()]
    fig, ax = plt.subplots(figsize=(9, 3.8))
    x = np.arange(len(best))
    colours = ["tab:red" if m == chosen["model"] else "tab:blue" for m in best["model"]]
    bars = ax.bar(x, best["bic"], color=colours, alpha=0.8)
    for bar, k, model, bic in zip(bars, best["n_components"], best["model"], best["bic"],
                                  strict=True):
        if model == chosen["model"]:
            bar.set_hatch("//")
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(),
                f"K={int(k)}\n+{bic - chosen['bic']:.1f}", ha="center", va="bottom",
                fontsize=7)
    low, high = best["bic"].min(), best["bic"].max()
    bottom = low - 0.1 * max(high - low, 1.0)
    ax.set_ylim(bottom, high + 0.15 * max(high - low, 1.0))
    ax.set_xticks(x, best["model"])
    ax.set_ylabel("lowest BIC over K")
    ax.set_title(f"lowest BIC per covariance model (red, hatched: chosen "
                 f"{chosen['model']},{int(chosen['n_components'])}); the axis starts at "
                 f"{bottom:.0f}, not 0", fontsize="small")
    fig.tight_layout()
    return fig


def plot_loo_compare(comparison, chosen):
    """``arviz.plot_compare``-style: per K (rows) its elpd ± se (filled; hollow where PSIS-LOO
    is unreliable) and, for the reliable ones, elpd of the best plus the difference ± dse
    (grey triangles); the best elpd's line dashed; the chosen K named on its row.

    comparison: DataFrame indexed by K (text) with elpd, se, elpd_diff, dse, reliable."""
    ks = sorted(comparison.index, key=int)
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.45 * len(ks)))
    reliable = comparison["reliable"] == "yes"
    best_elpd = comparison.loc[reliable, "elpd"].max() if reliable.any() else np.nan
    for y, k in enumerate(ks):
        row = comparison.loc[k]
        ok = row["reliable"] == "yes"
        ax.errorbar(row["elpd"], y, xerr=row["se"], fmt="o", color="black",
                    markerfacecolor="black" if ok else "white", capsize=3)
        if ok and pd.notna(row["dse"]) and row["dse"] > 0:
            ax.errorbar(best_elpd + row["elpd_diff"], y + 0.25, xerr=row["dse"], fmt="^",
                        color="0.5", capsize=3)
        label = ("chosen" if k == chosen else "") + ("" if ok else " unreliable")
        if label.strip():
            ax.annotate(label.strip(), (row["elpd"], y), xytext=(8, 6),
                        textcoords="offset points", fontsize=8)
    if np.isfinite(best_elpd):
        ax.axvline(best_elpd, color="0.6", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(ks)), [f"K = {k}" for k in ks])
    ax.invert_yaxis()
    ax.set_xlabel("elpd (PSIS-LOO; higher is better)")
    fig.tight_layout()
    return fig
