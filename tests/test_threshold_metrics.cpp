#include <vector>

#include <gtest/gtest.h>

#include "tasks/metrics/threshold_metrics.h"

using embeval::metrics::BestAccuracy;
using embeval::metrics::BestF1;
using embeval::metrics::find_best_acc_and_threshold;
using embeval::metrics::find_best_f1_and_threshold;

// Every expected value below was worked by hand from MTEB's loop and then
// checked by running MTEB 1.39.7's two static methods (copied into Python)
// on the same input. Tolerance 1e-15: thresholds are midpoints of two inputs.
namespace {

struct Case {
  std::vector<double> scores;
  std::vector<int> labels;
  bool high_score_more_similar;
};

BestAccuracy acc_of(const Case& c) {
  return find_best_acc_and_threshold(c.scores.data(), c.labels.data(), c.labels.size(), c.high_score_more_similar);
}
BestF1 f1_of(const Case& c) {
  return find_best_f1_and_threshold(c.scores.data(), c.labels.data(), c.labels.size(), c.high_score_more_similar);
}

}  // namespace

// Sorted: (.9,+) (.5,-) (.5,+) (.1,-); negatives after the cut start at 2.
// Cuts: after 1 -> (1+2)/4 = .75 at (.9+.5)/2 = .7; after 2 -> .5; after 3 -> .75 (not better).
// F1: after 1 -> P 1, R .5, F1 2/3; after 2 -> .5; after 3 -> P 2/3, R 1, F1 .8 at (.5+.1)/2.
TEST(ThresholdMetrics, TieBetweenNegativeAndPositive) {
  Case c{{0.9, 0.5, 0.5, 0.1}, {1, 0, 1, 0}, true};
  BestAccuracy a = acc_of(c);
  EXPECT_NEAR(a.accuracy, 0.75, 1e-15);
  EXPECT_NEAR(a.threshold, 0.7, 1e-15);
  BestF1 f = f1_of(c);
  EXPECT_NEAR(f.f1, 0.8, 1e-15);
  EXPECT_NEAR(f.precision, 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(f.recall, 1.0, 1e-15);
  EXPECT_NEAR(f.threshold, 0.3, 1e-15);
}

// Tied scores keep input order, and MTEB cuts inside the tie: (.9,+) (.5,+) | (.5,-) (.1,-)
// scores accuracy 1 at threshold (.5+.5)/2 = .5, though no real threshold separates them.
TEST(ThresholdMetrics, CutInsideATieKeepsInputOrder) {
  Case c{{0.9, 0.5, 0.5, 0.1}, {1, 1, 0, 0}, true};
  BestAccuracy a = acc_of(c);
  EXPECT_NEAR(a.accuracy, 1.0, 1e-15);
  EXPECT_NEAR(a.threshold, 0.5, 1e-15);
  BestF1 f = f1_of(c);
  EXPECT_NEAR(f.f1, 1.0, 1e-15);
  EXPECT_NEAR(f.precision, 1.0, 1e-15);
  EXPECT_NEAR(f.recall, 1.0, 1e-15);
  EXPECT_NEAR(f.threshold, 0.5, 1e-15);
}

// All scores tied: (.4,-) (.4,+) (.4,-). Accuracy: 1/3, then 2/3 at .4. F1: first cut has
// no true positive (skipped); second P .5, R 1, F1 2/3 at .4.
TEST(ThresholdMetrics, AllScoresTied) {
  Case c{{0.4, 0.4, 0.4}, {0, 1, 0}, true};
  BestAccuracy a = acc_of(c);
  EXPECT_NEAR(a.accuracy, 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(a.threshold, 0.4, 1e-15);
  BestF1 f = f1_of(c);
  EXPECT_NEAR(f.f1, 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(f.precision, 0.5, 1e-15);
  EXPECT_NEAR(f.recall, 1.0, 1e-15);
  EXPECT_NEAR(f.threshold, 0.4, 1e-15);
}

// Distances sort ascending: (.2,+) (.4,+) (.8,-). Accuracy 2/3 at .3, then 1 at .6.
TEST(ThresholdMetrics, DistancesSortAscending) {
  Case c{{0.2, 0.8, 0.4}, {1, 0, 1}, false};
  BestAccuracy a = acc_of(c);
  EXPECT_NEAR(a.accuracy, 1.0, 1e-15);
  EXPECT_NEAR(a.threshold, 0.6, 1e-15);
  BestF1 f = f1_of(c);
  EXPECT_NEAR(f.f1, 1.0, 1e-15);
  EXPECT_NEAR(f.threshold, 0.6, 1e-15);
}

// Distance ties: (1,-) (1,+) (2,+) (2,-). Accuracy .25 at 1, .5 at 1.5, .75 at 2 (inside the
// tie). F1: .5 at 1.5, then P 2/3, R 1, F1 .8 at 2.
TEST(ThresholdMetrics, DistanceTies) {
  Case c{{1, 1, 2, 2}, {0, 1, 1, 0}, false};
  BestAccuracy a = acc_of(c);
  EXPECT_NEAR(a.accuracy, 0.75, 1e-15);
  EXPECT_NEAR(a.threshold, 2.0, 1e-15);
  BestF1 f = f1_of(c);
  EXPECT_NEAR(f.f1, 0.8, 1e-15);
  EXPECT_NEAR(f.precision, 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(f.recall, 1.0, 1e-15);
  EXPECT_NEAR(f.threshold, 2.0, 1e-15);
}

// The cut after the last pair is never tried, so all-positive labels top out at (n-1)/n.
// F1: 1/3 recall -> .5 at .25; 2/3 recall -> .8 at .15.
TEST(ThresholdMetrics, AllPositive) {
  Case c{{0.3, 0.2, 0.1}, {1, 1, 1}, true};
  BestAccuracy a = acc_of(c);
  EXPECT_NEAR(a.accuracy, 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(a.threshold, 0.15, 1e-15);
  BestF1 f = f1_of(c);
  EXPECT_NEAR(f.f1, 0.8, 1e-15);
  EXPECT_NEAR(f.precision, 1.0, 1e-15);
  EXPECT_NEAR(f.recall, 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(f.threshold, 0.15, 1e-15);
}

// No positives: accuracy 2/3 at the first cut (.25); F1 never has a true positive, so
// MTEB's initial values (all 0, threshold 0) come back.
TEST(ThresholdMetrics, AllNegative) {
  Case c{{0.3, 0.2, 0.1}, {0, 0, 0}, true};
  BestAccuracy a = acc_of(c);
  EXPECT_NEAR(a.accuracy, 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(a.threshold, 0.25, 1e-15);
  BestF1 f = f1_of(c);
  EXPECT_EQ(f.f1, 0.0);
  EXPECT_EQ(f.precision, 0.0);
  EXPECT_EQ(f.recall, 0.0);
  EXPECT_EQ(f.threshold, 0.0);
}

// Fewer than two pairs: no cut at all; MTEB returns its initial values.
TEST(ThresholdMetrics, OneOrNoPair) {
  Case one{{0.5}, {1}, true};
  EXPECT_EQ(acc_of(one).accuracy, 0.0);
  EXPECT_EQ(acc_of(one).threshold, -1.0);
  EXPECT_EQ(f1_of(one).f1, 0.0);
  EXPECT_EQ(f1_of(one).threshold, 0.0);
  Case none{{}, {}, true};
  EXPECT_EQ(acc_of(none).accuracy, 0.0);
  EXPECT_EQ(acc_of(none).threshold, -1.0);
  EXPECT_EQ(f1_of(none).f1, 0.0);
}
