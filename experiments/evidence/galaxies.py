"""The galaxy-data evidence under Chib's (1995) prior: ``python experiments/evidence/galaxies.py``.

Data: the 82 velocities in 1000 km/s as Chib's Table 3 (observation 78 = 26.960,
gmmlab/data/galaxies_rg1997.csv), and MASS's copy (26.690, gmmlab/data/galaxies.csv / 1000).
Prior: mu_j ~ N(20, 100), sigma_j^2 ~ IG(6/2, 40/2), weights ~ Dirichlet(1, ..., 1), unrestricted
variances. Prints gmmlab.posterior_over_k for K = 1..6 (bridge sampling, 4 chains x 1000 kept
Gibbs draws) on each copy, and the seconds.
"""

import time
from importlib import resources

import pandas as pd

from gmmlab import posterior_over_k

CHIB_PRIOR = {"family": "independent-normal-inverse-wishart", "mean": [20.0],
              "mean_covariance": [[100.0]], "dof": 6.0, "scale": [[40.0]], "alpha": 1.0}


def main():
    for name, scale in (("galaxies_rg1997.csv", 1.0), ("galaxies.csv", 1000.0)):
        with resources.as_file(resources.files("gmmlab") / "data" / name) as path:
            X = pd.read_csv(path).to_numpy(float) / scale
        began = time.perf_counter()
        result = posterior_over_k(X, range(1, 7), prior=CHIB_PRIOR)
        print(f"{name} (velocities / {scale:g}), {time.perf_counter() - began:.0f} s")
        print(result.summary())


if __name__ == "__main__":
    main()
