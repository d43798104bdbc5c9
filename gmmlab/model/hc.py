"""Model-based agglomerative hierarchical clustering (Fraley 1998), mclust's ``hc()`` start.

Starting from one group per sample, the two groups whose merge costs least are merged until
one is left. (mclust's ``hc()`` declares ``partition = dupPartition(data)``, identical samples
together, but does not pass it on to ``hcVVV``, which then starts from singletons too: its
``initialPartition`` is 1..N on Old Faithful's 16 repeated rows.) The
cost of a group of l samples with scatter matrix W (about its mean) is mclust's ``VVV`` term

    t(l, W) = l log(beta (tr W + alpha) / l)              if l <= D (or W = 0),
    t(l, W) = l log(det(W / l) + beta (tr W + alpha) / l)  otherwise,

a regularised -2 x classification log-likelihood of a group with its own full covariance
(alpha = tr(W_data) / (N D), beta = 1, as mclust's ``hcVVV``); merging i and j costs
t(i u j) - t(i) - t(j), with W_iuj = W_i + W_j + n_i n_j / (n_i + n_j) (m_i - m_j)(m_i - m_j)^T.

As mclust's default (``mclust.options("hcUse") == "SVD"``), the agglomeration runs on the
scaled-SVD variables: standardised data rotated onto their singular vectors and divided by the
square roots of the singular values. In 1-D mclust starts from quantile classes instead
(``qclass``), and so does :func:`partition` there.
"""

from functools import lru_cache

import numpy as np

# Larger data are agglomerated on a random subset of this many samples (partition).
MAX_SAMPLES = 1000


def scaled_svd(X):
    """mclust's ``hcUse = "SVD"`` variables: Z = S V diag(1 / sqrt(d)), with S the standardised
    data (sd with N - 1), S = U diag(d) V^T its thin SVD; constant features dropped. (N, D')."""
    X = np.asarray(X, dtype=float)
    scaled = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    scaled = scaled[:, np.all(np.isfinite(scaled), axis=0)]
    _, singular_values, vt = np.linalg.svd(scaled, full_matrices=False)
    return scaled @ vt.T / np.sqrt(singular_values)


def group_cost(n, scatter, alpha, beta=1.0):
    """mclust's VVV term t(l, W) for groups of sizes n (G,) and scatter matrices (G, D, D)."""
    D = scatter.shape[-1]
    trace = np.trace(scatter, axis1=-2, axis2=-1)
    penalty = beta * (trace + alpha) / n
    sign, logdet = np.linalg.slogdet(scatter / n[:, None, None])
    determinant = np.where((n > D) & (trace > 0) & (sign > 0), np.exp(logdet), 0.0)
    return n * np.log(determinant + penalty)


def agglomerate(Z, keep):
    """Merge the samples of Z (N, D) down to one group; the partitions with ``keep`` groups.

    keep: iterable of numbers of groups. Returns {G: labels (N,) in 0..G-1}. Ties between
    merge costs go as in mclust's Fortran (the last pair (i, j), in the order j, then i, of
    the groups' slots, among the cheapest).
    """
    Z = np.asarray(Z, dtype=float)
    N, D = Z.shape
    keep = {int(g) for g in keep}
    labels = np.arange(N)
    m = N
    n = np.ones(N)
    means = Z.copy()
    scatter = np.zeros((N, D, D))
    alpha = max(float(((Z - Z.mean(axis=0)) ** 2).sum()) / (N * D), np.finfo(float).eps)
    own = group_cost(n, scatter, alpha)

    def merged(i, others):
        """Sizes, means, scatters and costs of group i merged with each of ``others``."""
        n_ij = n[i] + n[others]
        difference = means[others] - means[i]
        factor = n[i] * n[others] / n_ij
        w = scatter[i] + scatter[others] + factor[:, None, None] * (
            difference[:, :, None] * difference[:, None, :])
        mean = (n[i] * means[i] + n[others, None] * means[others]) / n_ij[:, None]
        return n_ij, mean, w, group_cost(n_ij, w, alpha) - own[i] - own[others]

    cost = np.full((m, m), np.inf)  # cost[i, j] for slots i < j
    for j in range(1, m):
        cost[:j, j] = merged(j, np.arange(j))[3]
    partitions = {m: labels.copy()} if m in keep else {}
    while m > 1:
        # the last cheapest pair in the order (j, i): scan cost^T row by row
        view = cost[:m, :m].T
        flat = np.flatnonzero(view == view.min())[-1]
        j, i = divmod(int(flat), m)
        n_ij, mean, w, _ = merged(i, np.array([j]))
        n[i], means[i], scatter[i] = n_ij[0], mean[0], w[0]
        own[i] = group_cost(n[i : i + 1], scatter[i : i + 1], alpha)[0]
        labels[labels == j] = i
        last = m - 1
        if j != last:  # the last slot moves into j
            n[j], means[j], scatter[j], own[j] = n[last], means[last], scatter[last], own[last]
            labels[labels == last] = j
            cost[:j, j] = cost[:j, last]
            cost[j, j + 1 : last] = cost[j + 1 : last, last]
        m -= 1
        cost[:, m:] = np.inf
        others = np.arange(m) != i
        row = np.full(m, np.inf)
        row[others] = merged(i, np.flatnonzero(others))[3]
        cost[:i, i] = row[:i]
        cost[i, i + 1 : m] = row[i + 1 :]
        if m in keep:
            partitions[m] = labels.copy()
    return partitions


def quantile_classes(x, n_groups):
    """mclust's ``qclass``: 1-D classes between quantiles (N,), in 0..G-1, as R computes them
    (type-7 quantiles, the narrowest gaps dropped when ties leave too many)."""
    x = np.ravel(np.asarray(x, dtype=float))
    eps = x.std(ddof=1) * np.sqrt(np.finfo(float).eps)
    q, count = np.array([np.nan]), n_groups
    while len(q) < n_groups + 1:
        count += 1
        q = np.unique(np.quantile(x, np.linspace(0, 1, count)))
    if len(q) > n_groups + 1:
        drop = np.argsort(np.diff(q), kind="stable")[: len(q) - n_groups - 1]
        q = np.delete(q, drop)
    q[0], q[-1] = x.min() - eps, x.max() + eps
    labels = np.full(len(x), -1)
    for g in range(n_groups):
        labels[(x >= q[g]) & (x < q[g + 1])] = g
    return labels


class Agglomeration:
    """The hc start of one data set: its merge tree, cut at any number of groups.

    D > 1: the VVV agglomeration on scaled-SVD variables (mclust's ``hc(X)``), its partitions
    into 1..30 groups computed at once and others on demand. It keeps an N x N matrix of merge
    costs and takes O(N^3) time, so above :data:`MAX_SAMPLES` samples it runs on a random
    subset of that many (always the same, seed 0), and every other sample joins the group
    whose mean is nearest in the scaled-SVD variables (mclust's ``subset`` option does the
    same with an E-step). D = 1: quantile classes (mclust's ``qclass``), no tree.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    max_samples : int
        The most samples agglomerated; above it, a random subset of this many.
    """

    def __init__(self, X, max_samples=MAX_SAMPLES):
        self.X = np.asarray(X, dtype=float)
        self.one_dimensional = self.X.ndim == 1 or self.X.shape[1] == 1
        if self.one_dimensional:
            return
        self.Z = scaled_svd(self.X)
        N = len(self.X)
        self.subset = np.arange(N) if N <= max_samples else np.sort(
            np.random.RandomState(0).choice(N, max_samples, replace=False))
        self.partitions = agglomerate(self.Z[self.subset], range(1, 31))

    def partition(self, n_groups):
        """mclust's ``hclass(hc(X), G)``: labels of shape (n_samples,) in 0..n_groups-1.

        Raises
        ------
        ValueError
            When the samples cannot make ``n_groups`` groups.
        """
        if self.one_dimensional:
            return quantile_classes(self.X, n_groups)
        if n_groups not in self.partitions:
            self.partitions |= agglomerate(self.Z[self.subset], [n_groups])
        if n_groups not in self.partitions:
            raise ValueError(f"hc: {len(self.X)} samples cannot make {n_groups} groups.")
        labels = self.partitions[n_groups]
        if len(self.subset) == len(self.X):
            return labels
        Z = self.Z
        means = np.stack([Z[self.subset][labels == g].mean(axis=0) for g in range(n_groups)])
        nearest = ((Z[:, None, :] - means[None]) ** 2).sum(axis=2).argmin(axis=1)
        nearest[self.subset] = labels
        return nearest


@lru_cache(maxsize=1)
def _agglomeration_of(data, shape):
    return Agglomeration(np.frombuffer(data).reshape(shape))


def agglomeration(X):
    """The :class:`Agglomeration` of ``X``, the last one reused while the same data are asked
    for again (:func:`gmmlab.select` and EM restarts cut one data set's tree at many K).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    Agglomeration
    """
    X = np.ascontiguousarray(X, dtype=float)
    return _agglomeration_of(X.tobytes(), X.shape)


def partition(X, n_groups):
    """The hc start of mclust's ``Mclust()``: labels (N,) in 0..n_groups-1
    (:meth:`Agglomeration.partition` of :func:`agglomeration`)."""
    return agglomeration(X).partition(n_groups)


def responsibilities(X, n_groups):
    """One-hot responsibilities (N, n_groups) of :func:`partition`: an EM start."""
    labels = partition(X, n_groups)
    resp = np.zeros((len(labels), n_groups))
    resp[np.arange(len(labels)), labels] = 1.0
    return resp
