"""PyMC's SMC evidence against the exact one: ``python experiments/evidence/smc.py``.

The 1-D K = 2 enumeration case of experiments/evidence/estimators.py (N = 12), the PyMC
backend's model under the same normal-inverse-Wishart prior (unordered means: SMC samples the
prior, where the ordered transform's region would need a K! correction), ``pm.sample_smc`` with
2 chains x 2000 particles; prints the exact value, each chain's log marginal likelihood and the
seconds (model compile included).
"""

import time

import numpy as np
import pymc as pm
from estimators import data, prior

from gmmlab.backends.bayes import build_model
from gmmlab.model import conjugate


def main():
    X = data(12, 1, seed=13)
    exact = conjugate.exact_log_evidence(X, 2, prior(1))
    model = build_model(X, 2, "full", covariance_prior="normal_inverse_wishart", prior=prior(1),
                        ordered=False)
    began = time.perf_counter()
    with model:
        idata = pm.sample_smc(draws=2000, chains=2, random_seed=0, progressbar=False, cores=1)
    seconds = time.perf_counter() - began
    by_chain = idata["sample_stats"]["log_marginal_likelihood"]
    estimates = [np.asarray(by_chain.sel(chain=c).values).ravel()[-1]  # the last stage's
                 for c in by_chain["chain"].to_numpy()]
    print(f"exact {exact:.4f}; SMC chains {[round(float(e), 4) for e in estimates]}; "
          f"{seconds:.0f} s")


if __name__ == "__main__":
    main()
