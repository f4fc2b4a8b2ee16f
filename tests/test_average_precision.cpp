#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "tasks/metrics/average_precision.h"

using embeval::metrics::average_precision;

// Hand-computed: ranking + - + - : AP = (1/1 + 2/3) / 2 = 0.8333...
TEST(AveragePrecision, DistinctScores) {
  std::vector<double> s = {0.9, 0.8, 0.7, 0.6};
  std::vector<int> y = {1, 0, 1, 0};
  EXPECT_NEAR(average_precision(s.data(), y.data(), 4), (1.0 + 2.0 / 3.0) / 2.0, 1e-15);
}

// Ties form one step: scores {0.5,0.5} with labels {1,0} and a lower positive.
// Thresholds: 0.5 -> tp=1, seen=2 (P=0.5, R=0.5); 0.1 -> tp=2, seen=3 (P=2/3, R=1).
// AP = 0.5*0.5 + 0.5*(2/3) = 0.58333...; sklearn gives the same.
TEST(AveragePrecision, TiesAreOneStep) {
  std::vector<double> s = {0.5, 0.5, 0.1};
  std::vector<int> y = {0, 1, 1};
  EXPECT_NEAR(average_precision(s.data(), y.data(), 3), 0.25 + 1.0 / 3.0, 1e-15);
}

TEST(AveragePrecision, EdgeCases) {
  std::vector<double> s = {0.3};
  std::vector<int> pos = {1}, neg = {0};
  EXPECT_DOUBLE_EQ(average_precision(s.data(), pos.data(), 1), 1.0);
  // sklearn 1.2.1: average_precision_score([0], [0.3]) == -0.0 (recall set to 1, with a warning).
  EXPECT_EQ(average_precision(s.data(), neg.data(), 1), 0.0);
  EXPECT_DOUBLE_EQ(average_precision(nullptr, nullptr, 0), 0.0);
}
