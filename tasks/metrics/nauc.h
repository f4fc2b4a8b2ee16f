#pragma once
// MTEB's abstention metrics (nAUC, arXiv 2402.12997) as MTEB 1.39.7 computes
// them in mteb/evaluation/evaluators/utils.py (confidence_scores, nAUC) for
// the retrieval `nauc_*` and reranking `nAUC_*` keys.
//
// numpy's summation order (pairwise) and sklearn's auc (np.trapz) are
// reproduced operation for operation: when a metric is constant over the
// queries (precision_at_100 = 0.01 everywhere, say) MTEB's result is decided by
// rounding noise (NaN, or exactly 1.0), and only the same arithmetic gives
// the same answer.
#include <cstddef>
#include <vector>

namespace embeval::metrics {

// How confident a system is about one query, from its similarity scores.
struct Confidence {
  double max = 0;    // highest score
  double std = 0;    // population standard deviation (np.std, ddof 0)
  double diff1 = 0;  // highest minus second highest; 0 for a single score
};
// n == 0 gives all zeros (MTEB raises there; it only happens when
// ignore_identical_ids empties a query's run).
Confidence confidence_scores(const double* scores, size_t n);

// Normalised area under the abstention curve of `metric` (one value per
// query) when queries are abstained on by increasing `confidence`, at MTEB's
// rates 0, 0.1, ..., 0.9. 1 = as good as the oracle, 0 = no better than not
// abstaining. NaN when the oracle curve is flat (MTEB reports null then) or
// there are no queries.
double nauc(const std::vector<double>& confidence, const std::vector<double>& metric);

// nAUC for each of MTEB's confidence functions, in its key order.
struct NaucByConfidence {
  double max, std, diff1;
};
NaucByConfidence nauc_by_confidence(const std::vector<Confidence>& confidence, const std::vector<double>& metric);

}  // namespace embeval::metrics
