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
