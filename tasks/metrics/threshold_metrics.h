#pragma once
// The best-threshold search of MTEB's PairClassificationEvaluator (taken from
// sentence-transformers' BinaryClassificationEvaluator), step for step, so
// that its quirks carry over:
// - pairs are stably sorted by score, most similar first (descending when
//   high_score_more_similar, ascending for distances); tied scores keep their
//   input order, as Python's sorted(..., reverse=True) does;
// - a cut is tried after each of the first n-1 sorted pairs, including in the
//   middle of a run of tied scores, and the threshold reported is the midpoint
//   of the scores on either side of the cut (so it can equal a tied score);
// - the cut after the last pair (everything predicted similar) is never tried;
// - only a strictly better value replaces the best, so the earliest cut wins.
// labels[i] is 1 for a similar pair and 0 otherwise.
#include <cstddef>

namespace embeval::metrics {

struct BestAccuracy {
  double accuracy = 0.0;
  double threshold = -1.0;  // MTEB's value when no cut is tried (n < 2)
};

struct BestF1 {
  double f1 = 0.0, precision = 0.0, recall = 0.0;
  double threshold = 0.0;  // MTEB's value when no cut has a true positive
};

// Accuracy of "the pairs before the cut are similar": (positives before the
// cut + negatives after it) / n.
BestAccuracy find_best_acc_and_threshold(const double* scores, const int* labels, size_t n,
                                         bool high_score_more_similar);

// F1 of the same prediction; precision and recall are those of the best cut.
// All zero when there is no positive label.
BestF1 find_best_f1_and_threshold(const double* scores, const int* labels, size_t n,
                                  bool high_score_more_similar);

}  // namespace embeval::metrics
