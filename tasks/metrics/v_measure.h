#pragma once
// Homogeneity, completeness and V-measure exactly as sklearn 1.2-1.7 compute
// them (sklearn.metrics.homogeneity_completeness_v_measure): natural-log
// entropies of the two labelings and their mutual information from the
// contingency table. Labels are arbitrary integer ids; only the partition
// they induce matters.
#include <cstddef>
#include <cstdint>

namespace embeval::metrics {

struct VMeasure {
  double homogeneity = 1.0;
  double completeness = 1.0;
  double v_measure = 1.0;
};

// beta weighs completeness against homogeneity (sklearn's default 1 gives
// their harmonic mean). n == 0 gives 1, 1, 1 as sklearn does.
VMeasure homogeneity_completeness_v_measure(const int64_t* labels_true, const int64_t* labels_pred, size_t n,
                                            double beta = 1.0);
double v_measure_score(const int64_t* labels_true, const int64_t* labels_pred, size_t n, double beta = 1.0);

}  // namespace embeval::metrics
