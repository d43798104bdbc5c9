"""`python -m gmmlab`: fit the from-scratch EM estimator on Old Faithful and print it."""

import numpy as np

from gmmlab.datasets import load_dataset
from gmmlab.em import EMGaussianMixture


def main():
    data = load_dataset("faithful")
    model = EMGaussianMixture(n_components=2, n_init=5, random_state=0).fit(data.X)
    np.set_printoptions(precision=4, suppress=True)
    print(f"EM on {data.name} ({data.n_samples} x {data.n_features}, "
          f"{', '.join(data.feature_names)}): K=2, full covariances")
    print(f"converged={model.converged_} after {model.n_iter_} iterations; "
          f"log-likelihood {model.score(data.X) * data.n_samples:.4f}; "
          f"BIC {model.bic(data.X):.2f}; AIC {model.aic(data.X):.2f}")
    for k in np.argsort(model.means_[:, 0]):
        print(f"component {k}: weight {model.weights_[k]:.4f}, mean {model.means_[k]}, "
              f"covariance {model.covariances_[k].tolist()}")


if __name__ == "__main__":
    main()
