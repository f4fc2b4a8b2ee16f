#pragma once
// sklearn.linear_model.LogisticRegression as MTEB uses it (solver="lbfgs",
// penalty="l2", fit_intercept=True, multi_class="auto"), reproduced step by
// step: sklearn 1.2's summed loss and gradient (_linear_loss.py, _loss.pyx)
// minimised by a port of the L-BFGS-B 3.0 code scipy 1.10 calls
// (lbfgsb.f: mainlb, formk, subsm, lnsrlb, matupd, formt, dcsrch, dcstep),
// so that a fit stopped after max_iter iterations lands where sklearn's does.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace embeval::metrics {

// ---- L-BFGS-B without bounds: scipy.optimize.minimize(method="L-BFGS-B") ----

struct LbfgsbOptions {  // scipy's option names and defaults
  int maxiter = 15000;
  int maxcor = 10;  // m, the number of correction pairs kept
  double gtol = 1e-5;  // pgtol: stop when max |g_i| <= gtol
  double ftol = 2.2204460492503131e-09;  // stop when the relative f reduction <= ftol
  int maxls = 20;  // function evaluations per line search
};

struct LbfgsbResult {
  std::vector<double> x;
  double f = 0;
  int nit = 0;   // iterations (scipy's nit)
  int nfev = 0;  // objective evaluations
  bool converged = false;  // false: iteration limit or line-search failure
  std::string message;     // scipy's task string, e.g. "CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL"
};

// Returns f(x) and writes the gradient to grad (x.size() values).
using LbfgsbObjective = std::function<double(const double* x, double* grad)>;

LbfgsbResult lbfgsb_minimize(const LbfgsbObjective& objective, std::vector<double> x0,
                             const LbfgsbOptions& options = {});

// ---- sklearn's loss: LinearModelLoss(HalfBinomialLoss | HalfMultinomialLoss) ----

// loss_gradient(coef, X, y, sample_weight=ones, l2_reg_strength=l2) with
// fit_intercept=True: the summed per-sample loss plus l2/2 * ||weights||^2
// (sklearn 1.2-1.3), or with `mean` (sklearn >= 1.4, PR #26721) the mean
// loss, the pointwise gradients divided by n before the products.
// x is n x dim row-major. n_classes == 2: y[i] in {0, 1}, coef = [w (dim), b].
// n_classes > 2: y[i] in [0, n_classes), coef is sklearn's ravel(order="F") of
// the n_classes x (dim + 1) matrix, i.e. coef[j * n_classes + k] is feature j
// (j == dim: the intercept) of class k. grad has coef's layout.
double logistic_loss_gradient(const double* coef, const double* x, int64_t n, int64_t dim, const int* y,
                              int n_classes, double l2, double* grad, bool mean = false);

// ---- LogisticRegression(C, max_iter, tol).fit / .predict ----

// Which release's objective and stopping rules the fit follows.
enum LogisticProtocol {
  // sklearn 1.2-1.3: summed loss, l2 = 1/C, scipy's L-BFGS-B defaults (ftol
  // 2.2e-9, maxls 20).
  LOGISTIC_PROTOCOL_SKLEARN_1_2,
  // sklearn 1.4-1.6: mean loss, l2 = 1/(C n), ftol = 64 eps, maxls = 50. The
  // minimiser is the same, but gtol now meets an n times smaller gradient, so
  // the 100 iterations stop elsewhere.
  LOGISTIC_PROTOCOL_SKLEARN_1_4,
};

struct LogisticRegressionOptions {
  double C = 1.0;
  int max_iter = 100;
  double tol = 1e-4;
  LogisticProtocol protocol = LOGISTIC_PROTOCOL_SKLEARN_1_2;
};

struct LogisticRegressionModel {
  std::vector<int> classes;  // sorted distinct training labels (classes_)
  int64_t dim = 0;
  // coef_ and intercept_: one row (class classes[1] against classes[0]) for
  // two classes, one row per class otherwise; rows x dim, row-major.
  std::vector<double> coef, intercept;
  int n_iter = 0;
  bool converged = false;
};

// x: n x dim float32 row-major (sklearn upcasts to float64 for lbfgs).
// Throws std::invalid_argument when y has fewer than two distinct labels.
LogisticRegressionModel fit_logistic_regression(const float* x, int64_t n, int64_t dim, const int* y,
                                                const LogisticRegressionOptions& options = {});

// decision_function(x): n x rows scores (float64 arithmetic, as sklearn's
// float32 @ float64 matmul), then predict's rule: score > 0 picks classes[1]
// for two classes, else the first class with the highest score.
std::vector<double> decision_function(const LogisticRegressionModel& model, const float* x, int64_t n);
std::vector<int> predict(const LogisticRegressionModel& model, const float* x, int64_t n);

}  // namespace embeval::metrics
