#include "tasks/metrics/classification_scores.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tasks/metrics/numpy_sum.h"

namespace embeval::metrics {
namespace {

// Per-label F1 and support over sklearn's label set unique(y_true, y_pred),
// following precision_recall_fscore_support step by step: precision and
// recall first (0 where the denominator is 0), then 2*p*r / (p + r) with a
// zero denominator replaced by 1.
void per_label_f1(const int* y_true, const int* y_pred, size_t n, std::vector<double>& f1,
                  std::vector<double>& support) {
  int n_labels = 0;
  for (size_t i = 0; i < n; ++i) n_labels = std::max({n_labels, y_true[i] + 1, y_pred[i] + 1});
  std::vector<int64_t> tp(n_labels, 0), pred_sum(n_labels, 0), true_sum(n_labels, 0);
  for (size_t i = 0; i < n; ++i) {
    ++pred_sum[y_pred[i]];
    ++true_sum[y_true[i]];
    if (y_true[i] == y_pred[i]) ++tp[y_true[i]];
  }
  f1.clear();
  support.clear();
  for (int k = 0; k < n_labels; ++k) {
    if (pred_sum[k] == 0 && true_sum[k] == 0) continue;  // not in unique(y_true, y_pred)
    double p = pred_sum[k] == 0 ? 0.0 : static_cast<double>(tp[k]) / static_cast<double>(pred_sum[k]);
    double r = true_sum[k] == 0 ? 0.0 : static_cast<double>(tp[k]) / static_cast<double>(true_sum[k]);
    double denom = p + r;
    if (denom == 0.0) denom = 1.0;
    f1.push_back(2.0 * p * r / denom);
    support.push_back(static_cast<double>(true_sum[k]));
  }
}

}  // namespace

double accuracy(const int* y_true, const int* y_pred, size_t n) {
  if (n == 0) return 0.0;
  size_t correct = 0;
  for (size_t i = 0; i < n; ++i) correct += y_true[i] == y_pred[i];
  return static_cast<double>(correct) / static_cast<double>(n);
}

double f1_macro(const int* y_true, const int* y_pred, size_t n) {
  std::vector<double> f1, support;
  per_label_f1(y_true, y_pred, n, f1, support);
  if (f1.empty()) return 0.0;
  return numpy_mean(f1.data(), f1.size());
}

double f1_weighted(const int* y_true, const int* y_pred, size_t n) {
  std::vector<double> f1, support;
  per_label_f1(y_true, y_pred, n, f1, support);
  // np.average(f1, weights=support) = sum(f1 * support) / sum(support).
  std::vector<double> weighted(f1.size());
  for (size_t k = 0; k < f1.size(); ++k) weighted[k] = f1[k] * support[k];
  double total = numpy_sum(support.data(), support.size());
  if (total == 0.0) return 0.0;  // sklearn's zero_division value when y_true is empty
  return numpy_sum(weighted.data(), weighted.size()) / total;
}

}  // namespace embeval::metrics
