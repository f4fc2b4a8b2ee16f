#pragma once
// Average precision exactly as sklearn.metrics.average_precision_score
// computes it for binary labels: step-wise area under the precision-recall
// curve with one step per distinct score (tied scores form one step).
#include <cstddef>

namespace embeval::metrics {

// labels[i] is 1 for a positive, 0 for a negative. Returns NaN when there is
// no positive (sklearn's recall is undefined there) and 0 for n == 0.
double average_precision(const double* scores, const int* labels, size_t n);

}  // namespace embeval::metrics
