"""Later scikit-learn releases' numerics, patched into the installed 1.2.1.

Debian 12 ships scikit-learn 1.2.1 only and nothing newer can be installed
here, so the expected values of embeval's sklearn-1.3 and sklearn-1.4
scoring protocols come from 1.2.1 with exactly the changes those releases
made, transcribed from their source:

- 1.3 (PR #25752): `_kmeans_plusplus` draws the first center with
  `random_state.choice(n, p=sample_weight / sample_weight.sum())` instead of
  `random_state.randint(n)`, and sums potentials with the weights.
- 1.4 (PR #26721): `LinearModelLoss.loss_gradient` returns the mean loss,
  `loss.sum() / sw_sum`, with `grad_pointwise /= sw_sum` before the products;
  `_logistic_regression_path` passes `l2_reg_strength = 1.0 / (C * sw_sum)`
  and L-BFGS-B options `maxiter`, `maxls=50`, `gtol=tol`,
  `ftol=64 * np.finfo(float).eps`. 1.5 and 1.6 changed neither fit.

Use:  with release("1.4"): ...sklearn calls...
Everything else (label encoding, starting point, scipy's Fortran L-BFGS-B,
predict, MiniBatchKMeans' other draws) is the installed code's own.
"""
import contextlib
import types

import joblib
import numpy as np
import sklearn.cluster._kmeans as K
import sklearn.linear_model._logistic as L
from scipy import optimize as scipy_optimize
from sklearn.linear_model._linear_loss import LinearModelLoss
from sklearn.metrics.pairwise import _euclidean_distances
from sklearn.utils.extmath import stable_cumsum


def kmeans_plusplus_1_3(X, n_clusters, x_squared_norms, random_state, n_local_trials=None):
    """sklearn 1.3-1.6's _kmeans_plusplus with unit sample weights."""
    n_samples, n_features = X.shape
    sample_weight = np.ones(n_samples, dtype=X.dtype)
    centers = np.empty((n_clusters, n_features), dtype=X.dtype)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    center_id = random_state.choice(n_samples, p=sample_weight / sample_weight.sum())
    indices = np.full(n_clusters, -1, dtype=int)
    centers[0] = X[center_id]
    indices[0] = center_id
    closest_dist_sq = _euclidean_distances(centers[0, np.newaxis], X, Y_norm_squared=x_squared_norms, squared=True)
    current_pot = closest_dist_sq @ sample_weight
    for c in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * current_pot
        candidate_ids = np.searchsorted(stable_cumsum(sample_weight * closest_dist_sq), rand_vals)
        np.clip(candidate_ids, None, closest_dist_sq.size - 1, out=candidate_ids)
        distance_to_candidates = _euclidean_distances(X[candidate_ids], X, Y_norm_squared=x_squared_norms, squared=True)
        np.minimum(closest_dist_sq, distance_to_candidates, out=distance_to_candidates)
        candidates_pot = distance_to_candidates @ sample_weight.reshape(-1, 1)
        best_candidate = np.argmin(candidates_pot)
        current_pot = candidates_pot[best_candidate]
        closest_dist_sq = distance_to_candidates[best_candidate]
        best_candidate = candidate_ids[best_candidate]
        centers[c] = X[best_candidate]
        indices[c] = best_candidate
    return centers, indices


def loss_gradient_1_4(self, coef, X, y, sample_weight=None, l2_reg_strength=0.0, n_threads=1, raw_prediction=None):
    """sklearn 1.4's LinearModelLoss.loss_gradient (the mean loss)."""
    (n_samples, n_features), n_classes = X.shape, self.base_loss.n_classes
    n_dof = n_features + int(self.fit_intercept)
    if raw_prediction is None:
        weights, intercept, raw_prediction = self.weight_intercept_raw(coef, X)
    else:
        weights, intercept = self.weight_intercept(coef)
    loss, grad_pointwise = self.base_loss.loss_gradient(
        y_true=y, raw_prediction=raw_prediction, sample_weight=sample_weight, n_threads=n_threads)
    sw_sum = n_samples if sample_weight is None else np.sum(sample_weight)
    loss = loss.sum() / sw_sum
    loss += self.l2_penalty(weights, l2_reg_strength)
    grad_pointwise /= sw_sum
    if not self.base_loss.is_multiclass:
        grad = np.empty_like(coef, dtype=weights.dtype)
        grad[:n_features] = X.T @ grad_pointwise + l2_reg_strength * weights
        if self.fit_intercept:
            grad[-1] = grad_pointwise.sum()
    else:
        grad = np.empty((n_classes, n_dof), dtype=weights.dtype, order="F")
        grad[:, :n_features] = grad_pointwise.T @ X + l2_reg_strength * weights
        if self.fit_intercept:
            grad[:, -1] = grad_pointwise.sum(axis=0)
        if coef.ndim == 1:
            grad = grad.ravel(order="F")
    return loss, grad


def _minimize_1_4(fun, x0, method=None, jac=None, args=(), options=None, **kw):
    """scipy.optimize.minimize as 1.4's _logistic_regression_path calls it for
    lbfgs; 1.2.1 hands it l2_reg_strength = 1 / C and the options
    {iprint, gtol, maxiter}."""
    X, target, sample_weight, l2_reg_strength, n_threads = args
    C = 1.0 / l2_reg_strength
    sw_sum = X.shape[0] if sample_weight is None else np.sum(sample_weight)
    args = (X, target, sample_weight, 1.0 / (C * sw_sum), n_threads)
    options = {"maxiter": options["maxiter"], "maxls": 50, "gtol": options["gtol"],
               "ftol": 64 * np.finfo(float).eps, "iprint": options.get("iprint", -1)}
    return scipy_optimize.minimize(fun, x0, method=method, jac=jac, args=args, options=options, **kw)


@contextlib.contextmanager
def release(version):
    """Patches the installed scikit-learn 1.2.1 into `version`'s numerics for
    LogisticRegression(lbfgs) and MiniBatchKMeans(k-means++) while the block runs."""
    assert version in ("1.2", "1.3", "1.4"), version
    saved = (K._kmeans_plusplus, LinearModelLoss.loss_gradient, L.optimize)
    try:
        with contextlib.ExitStack() as stack:
            if version in ("1.3", "1.4"):
                K._kmeans_plusplus = kmeans_plusplus_1_3
            if version == "1.4":
                LinearModelLoss.loss_gradient = loss_gradient_1_4
                L.optimize = types.SimpleNamespace(minimize=_minimize_1_4)
                # LogisticRegression(n_jobs=-1), as MTEB calls it, fits in a
                # joblib worker process, where these patches do not exist;
                # threads share them (the fit is one job either way).
                stack.enter_context(joblib.parallel_backend("threading"))
            yield
    finally:
        K._kmeans_plusplus, LinearModelLoss.loss_gradient, L.optimize = saved


def self_check():
    """The 1.4 transcription differs from 1.2.1's own loss_gradient only by
    the 1/n: on random data, n * (its loss and gradient) equals 1.2.1's to
    rounding. Raises AssertionError otherwise."""
    from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss
    rs = np.random.RandomState(0)
    X = rs.random_sample((50, 7))
    for base, y, coef in ((HalfBinomialLoss(), (rs.random_sample(50) < 0.5).astype(float), rs.random_sample(8)),
                          (HalfMultinomialLoss(n_classes=3), rs.randint(0, 3, 50).astype(float),
                           rs.random_sample(24))):
        m = LinearModelLoss(base_loss=base, fit_intercept=True)
        sw = np.ones(50)
        l12, g12 = LinearModelLoss.loss_gradient(m, coef, X, y, sw, 0.0)
        l14, g14 = loss_gradient_1_4(m, coef, X, y, sw, 0.0)
        assert abs(50 * l14 - l12) <= 1e-12 * abs(l12), (l14, l12)
        assert np.allclose(50 * g14, g12, rtol=1e-12, atol=1e-14)
