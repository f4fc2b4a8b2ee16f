#include "tasks/metrics/nauc.h"

#include "tasks/metrics/numpy_sum.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace embeval::metrics {
namespace {

// np.argsort(kind="stable"): MTEB asks for a stable sort (numpy >= 2 default).
// NaN sorts last, as in numpy.
std::vector<size_t> stable_argsort(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (std::isnan(v[b])) return !std::isnan(v[a]);
    return v[a] < v[b];
  });
  return order;
}

// MTEB's abstention rates: np.linspace(0, 1, 11)[:-1], i.e. i * 0.1.
constexpr int N_RATES = 10;
double rate(int i) { return static_cast<double>(i) * 0.1; }

// Mean metric over the queries left after abstaining on the least confident
// round(rate * n) of them (at least one query is always kept).
void abstention_curve(const std::vector<double>& conf, const std::vector<double>& metric, double* curve) {
  const size_t n = conf.size();
  std::vector<size_t> order = stable_argsort(conf);
  std::vector<double> kept;
  for (int i = 0; i < N_RATES; ++i) {
    // Python's round() on a float64 rounds half to even, like nearbyint.
    double abst = std::nearbyint(rate(i) * static_cast<double>(n));
    size_t skip = std::min(static_cast<size_t>(abst), n - 1);
    kept.clear();
    for (size_t k = skip; k < n; ++k) kept.push_back(metric[order[k]]);
    curve[i] = numpy_mean(kept.data(), kept.size());
  }
}

// sklearn.metrics.auc(x, y) = np.trapz(y, x) = add.reduce(diff(x) * (y[1:] + y[:-1]) / 2.0).
double trapz(const double* y) {
  double terms[N_RATES - 1];
  for (int i = 0; i + 1 < N_RATES; ++i) terms[i] = (rate(i + 1) - rate(i)) * (y[i + 1] + y[i]) / 2.0;
  return numpy_sum(terms, N_RATES - 1);
}

}  // namespace

Confidence confidence_scores(const double* scores, size_t n) {
  Confidence c;
  if (n == 0) return c;
  std::vector<double> sorted(scores, scores + n);
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  c.max = sorted[0];
  c.diff1 = n > 1 ? sorted[0] - sorted[1] : 0.0;
  // np.std: mean by pairwise sum, then the pairwise sum of squared deviations.
  double mean = numpy_sum(scores, n) / static_cast<double>(n);
  std::vector<double> sq(n);
  for (size_t i = 0; i < n; ++i) {
    double d = scores[i] - mean;
    sq[i] = d * d;
  }
  c.std = std::sqrt(numpy_sum(sq.data(), n) / static_cast<double>(n));
  return c;
}

double nauc(const std::vector<double>& confidence, const std::vector<double>& metric) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (metric.empty() || confidence.size() != metric.size()) return nan;
  double abst_curve[N_RATES], oracle_curve[N_RATES];
  abstention_curve(confidence, metric, abst_curve);
  abstention_curve(metric, metric, oracle_curve);
  double abst_auc = trapz(abst_curve);
  double oracle_auc = trapz(oracle_curve);
  double flat_auc = oracle_curve[0] * (rate(N_RATES - 1) - rate(0));
  if (oracle_auc == flat_auc) return nan;
  return (abst_auc - flat_auc) / (oracle_auc - flat_auc);
}

NaucByConfidence nauc_by_confidence(const std::vector<Confidence>& confidence, const std::vector<double>& metric) {
  std::vector<double> c_max, c_std, c_diff1;
  for (const Confidence& c : confidence) {
    c_max.push_back(c.max);
    c_std.push_back(c.std);
    c_diff1.push_back(c.diff1);
  }
  return {nauc(c_max, metric), nauc(c_std, metric), nauc(c_diff1, metric)};
}

}  // namespace embeval::metrics
