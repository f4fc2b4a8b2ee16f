#include "tasks/metrics/threshold_metrics.h"

#include <algorithm>
#include <numeric>
#include <vector>

namespace embeval::metrics {
namespace {

// Indices in MTEB's order: most similar first, ties in input order.
std::vector<size_t> most_similar_first(const double* scores, size_t n, bool high_score_more_similar) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (high_score_more_similar)
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  else
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  return order;
}

}  // namespace

BestAccuracy find_best_acc_and_threshold(const double* scores, const int* labels, size_t n,
                                         bool high_score_more_similar) {
  std::vector<size_t> order = most_similar_first(scores, n, high_score_more_similar);
  BestAccuracy best;
  size_t positives_before = 0, negatives_after = 0;
  for (size_t i = 0; i < n; ++i) negatives_after += labels[i] == 0;

  for (size_t k = 0; k + 1 < n; ++k) {
    if (labels[order[k]] == 1)
      ++positives_before;
    else
      --negatives_after;
    double accuracy = static_cast<double>(positives_before + negatives_after) / static_cast<double>(n);
    if (accuracy > best.accuracy) {
      best.accuracy = accuracy;
      best.threshold = (scores[order[k]] + scores[order[k + 1]]) / 2;
    }
  }
  return best;
}

BestF1 find_best_f1_and_threshold(const double* scores, const int* labels, size_t n, bool high_score_more_similar) {
  std::vector<size_t> order = most_similar_first(scores, n, high_score_more_similar);
  BestF1 best;
  size_t positives = 0;
  for (size_t i = 0; i < n; ++i) positives += labels[i] == 1;

  size_t predicted = 0, true_positives = 0;
  for (size_t k = 0; k + 1 < n; ++k) {
    ++predicted;
    if (labels[order[k]] == 1) ++true_positives;
    if (true_positives == 0) continue;
    double precision = static_cast<double>(true_positives) / static_cast<double>(predicted);
    double recall = static_cast<double>(true_positives) / static_cast<double>(positives);
    // Same operation order as MTEB, so equal-looking F1 values compare alike.
    double f1 = 2 * precision * recall / (precision + recall);
    if (f1 > best.f1) {
      best.f1 = f1;
      best.precision = precision;
      best.recall = recall;
      best.threshold = (scores[order[k]] + scores[order[k + 1]]) / 2;
    }
  }
  return best;
}

}  // namespace embeval::metrics
