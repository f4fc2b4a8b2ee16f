#pragma once
// Average precision exactly as sklearn.metrics.average_precision_score
// computes it for binary labels: step-wise area under the precision-recall
// curve with one step per distinct score (tied scores form one step).
#include <cstddef>

namespace embeval::metrics {

// labels[i] is 1 for a positive, 0 for a negative. With no positive, sklearn
// (>= 1.1) sets recall to 1 at every threshold, so the area is 0; so is ours.
double average_precision(const double* scores, const int* labels, size_t n);

}  // namespace embeval::metrics
