#include "tasks/metrics/correlation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace embeval::metrics {
namespace {

constexpr double k_nan = std::numeric_limits<double>::quiet_NaN();

bool is_constant(const double* x, size_t n) {
  for (size_t i = 1; i < n; ++i)
    if (x[i] != x[0]) return false;
  return true;
}

double mean_of(const double* x, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += x[i];
  return sum / static_cast<double>(n);
}

double sign_of(double v) { return static_cast<double>((v > 0) - (v < 0)); }

}  // namespace

std::vector<double> average_ranks(const double* x, size_t n) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });

  std::vector<double> ranks(n);
  for (size_t lo = 0; lo < n;) {
    size_t hi = lo + 1;
    while (hi < n && x[order[hi]] == x[order[lo]]) ++hi;
    // Positions lo..hi-1 (0-based) hold one tied value: their 1-based ranks
    // lo+1..hi average to (lo + 1 + hi) / 2, exact in double.
    double rank = 0.5 * static_cast<double>(lo + 1 + hi);
    for (size_t k = lo; k < hi; ++k) ranks[order[k]] = rank;
    lo = hi;
  }
  return ranks;
}

double pearson(const double* x, const double* y, size_t n) {
  if (n < 2 || is_constant(x, n) || is_constant(y, n)) return k_nan;
  if (n == 2) return sign_of(x[1] - x[0]) * sign_of(y[1] - y[0]);

  const double x_mean = mean_of(x, n), y_mean = mean_of(y, n);
  double xx = 0.0, yy = 0.0;
  for (size_t i = 0; i < n; ++i) {
    xx += (x[i] - x_mean) * (x[i] - x_mean);
    yy += (y[i] - y_mean) * (y[i] - y_mean);
  }
  // scipy normalises each centred vector first, then takes the dot product.
  const double x_norm = std::sqrt(xx), y_norm = std::sqrt(yy);
  double r = 0.0;
  for (size_t i = 0; i < n; ++i) r += ((x[i] - x_mean) / x_norm) * ((y[i] - y_mean) / y_norm);
  return std::max(std::min(r, 1.0), -1.0);
}

double spearman(const double* x, const double* y, size_t n) {
  if (n < 2 || is_constant(x, n) || is_constant(y, n)) return k_nan;
  std::vector<double> rx = average_ranks(x, n), ry = average_ranks(y, n);

  // Both rank vectors have mean (n + 1) / 2.
  const double mean = 0.5 * static_cast<double>(n + 1);
  double cxx = 0.0, cyy = 0.0, cxy = 0.0;
  for (size_t i = 0; i < n; ++i) {
    double dx = rx[i] - mean, dy = ry[i] - mean;
    cxx += dx * dx;
    cyy += dy * dy;
    cxy += dx * dy;
  }
  // np.cov multiplies by 1/(n-1); np.corrcoef then divides entry [1][0] by
  // the standard deviation of y (row) and then of x (column).
  const double scale = 1.0 / static_cast<double>(n - 1);
  cxx *= scale;
  cyy *= scale;
  cxy *= scale;
  double r = cxy / std::sqrt(cyy) / std::sqrt(cxx);
  return std::max(std::min(r, 1.0), -1.0);
}

}  // namespace embeval::metrics
