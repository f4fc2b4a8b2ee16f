#include "tasks/metrics/v_measure.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "tasks/metrics/numpy_sum.h"

namespace embeval::metrics {
namespace {

// Maps labels to 0..C-1 in sorted label order, which is np.unique's order,
// so sums run over classes in the order sklearn sums them.
std::vector<int64_t> dense_ids(const int64_t* labels, size_t n, int64_t* n_ids) {
  std::vector<int64_t> sorted(labels, labels + n);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<int64_t> ids(n);
  for (size_t i = 0; i < n; ++i)
    ids[i] = std::lower_bound(sorted.begin(), sorted.end(), labels[i]) - sorted.begin();
  *n_ids = static_cast<int64_t>(sorted.size());
  return ids;
}

std::vector<double> counts_of(const std::vector<int64_t>& ids, int64_t n_ids) {
  std::vector<double> counts(static_cast<size_t>(n_ids), 0.0);
  for (int64_t id : ids) counts[static_cast<size_t>(id)] += 1.0;
  return counts;
}

// sklearn.metrics.cluster.entropy: -sum(p * (log(c) - log(N))), 0 for one class.
double entropy(const std::vector<double>& counts) {
  if (counts.size() == 1) return 0.0;
  double total = numpy_sum(counts.data(), counts.size());
  std::vector<double> terms(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) terms[i] = (counts[i] / total) * (std::log(counts[i]) - std::log(total));
  return -numpy_sum(terms.data(), terms.size());
}

}  // namespace

VMeasure homogeneity_completeness_v_measure(const int64_t* labels_true, const int64_t* labels_pred, size_t n,
                                            double beta) {
  VMeasure out;
  if (n == 0) return out;
  int64_t n_classes = 0, n_clusters = 0;
  std::vector<int64_t> cls = dense_ids(labels_true, n, &n_classes);
  std::vector<int64_t> clu = dense_ids(labels_pred, n, &n_clusters);
  std::vector<double> class_counts = counts_of(cls, n_classes), cluster_counts = counts_of(clu, n_clusters);
  const double entropy_c = entropy(class_counts);
  const double entropy_k = entropy(cluster_counts);

  // Mutual information over the non-zero cells of the contingency table, in
  // row-major order as sklearn reads its sparse table (sp.find). A labeling
  // with a single group carries no information: MI = 0.
  double mi = 0.0;
  if (n_classes > 1 && n_clusters > 1) {
    std::vector<std::pair<int64_t, int64_t>> cells(n);
    for (size_t i = 0; i < n; ++i) cells[i] = {cls[i], clu[i]};
    std::sort(cells.begin(), cells.end());
    const double total = static_cast<double>(n), log_total = std::log(total);
    const double eps = std::numeric_limits<double>::epsilon();
    std::vector<double> terms;
    for (size_t i = 0; i < n;) {
      size_t j = i;
      while (j < n && cells[j] == cells[i]) ++j;
      const double nij = static_cast<double>(j - i);
      const int64_t outer = static_cast<int64_t>(class_counts[cells[i].first]) *
                            static_cast<int64_t>(cluster_counts[cells[i].second]);
      const double p = nij / total;
      const double log_outer = -std::log(static_cast<double>(outer)) + log_total + log_total;
      double term = p * (std::log(nij) - log_total) + p * log_outer;
      // sklearn zeroes terms below machine epsilon so that independent
      // labelings give exactly 0.
      if (std::fabs(term) < eps) term = 0.0;
      terms.push_back(term);
      i = j;
    }
    mi = std::max(0.0, numpy_sum(terms.data(), terms.size()));
  }

  out.homogeneity = entropy_c != 0.0 ? mi / entropy_c : 1.0;
  out.completeness = entropy_k != 0.0 ? mi / entropy_k : 1.0;
  if (out.homogeneity + out.completeness == 0.0) out.v_measure = 0.0;
  else
    out.v_measure = (1.0 + beta) * out.homogeneity * out.completeness / (beta * out.homogeneity + out.completeness);
  return out;
}

double v_measure_score(const int64_t* labels_true, const int64_t* labels_pred, size_t n, double beta) {
  return homogeneity_completeness_v_measure(labels_true, labels_pred, n, beta).v_measure;
}

}  // namespace embeval::metrics
