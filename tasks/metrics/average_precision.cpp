#include "tasks/metrics/average_precision.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace embeval::metrics {

double average_precision(const double* scores, const int* labels, size_t n) {
  if (n == 0) return 0.0;
  size_t positives = 0;
  for (size_t i = 0; i < n; ++i) positives += labels[i] != 0;
  if (positives == 0) return 0.0;

  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });

  // Walk thresholds from the highest score down; each distinct score adds
  // (recall gain) * (precision at that threshold).
  double ap = 0.0;
  size_t tp = 0, seen = 0, tp_prev = 0;
  for (size_t k = 0; k < n; ++k) {
    size_t i = order[k];
    tp += labels[i] != 0;
    ++seen;
    bool last_of_group = k + 1 == n || scores[order[k + 1]] != scores[i];
    if (!last_of_group) continue;
    if (tp != tp_prev) {
      double precision = static_cast<double>(tp) / static_cast<double>(seen);
      ap += (static_cast<double>(tp - tp_prev) / static_cast<double>(positives)) * precision;
      tp_prev = tp;
    }
  }
  return ap;
}

}  // namespace embeval::metrics
