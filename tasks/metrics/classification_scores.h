#pragma once
// The scores MTEB's logRegClassificationEvaluator reports, computed exactly
// as sklearn.metrics does for hard predictions (labels are non-negative
// class indices; their numeric order is sklearn's label order).
#include <cstddef>

namespace embeval::metrics {

// accuracy_score: fraction of y_pred equal to y_true (0 for n == 0).
double accuracy(const int* y_true, const int* y_pred, size_t n);

// f1_score(average="macro"): unweighted mean of the per-label F1 over the
// labels occurring in y_true or y_pred. A label never predicted (or never
// true) has precision (recall) 0, sklearn's zero_division="warn" value.
double f1_macro(const int* y_true, const int* y_pred, size_t n);

// f1_score(average="weighted"): per-label F1 weighted by its count in y_true.
double f1_weighted(const int* y_true, const int* y_pred, size_t n);

}  // namespace embeval::metrics
