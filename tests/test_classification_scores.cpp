#include <vector>

#include <gtest/gtest.h>

#include "tasks/metrics/classification_scores.h"
#include "tasks/metrics/numpy_sum.h"

using namespace embeval::metrics;

// Hand-computed. Labels {0,1,2,3} (3 is predicted but never true):
//   class 0: tp 2, predicted 2, true 3: p 1,   r 2/3, F1 0.8
//   class 1: tp 1, predicted 3, true 1: p 1/3, r 1,   F1 0.5
//   class 2: never predicted (p = 0 by zero_division), r 0: F1 0
//   class 3: never true (r = 0), p 0: F1 0, weight 0
// macro = 1.3 / 4 = 0.325, weighted = (0.8*3 + 0.5*1) / 6 = 0.48333...
// sklearn 1.2.1 f1_score gives 0.325 and 0.4833333333333334.
TEST(ClassificationScores, UnpredictedAndUntrueLabels) {
  std::vector<int> y_true = {0, 0, 0, 1, 2, 2}, y_pred = {0, 0, 1, 1, 1, 3};
  EXPECT_DOUBLE_EQ(accuracy(y_true.data(), y_pred.data(), 6), 0.5);
  EXPECT_NEAR(f1_macro(y_true.data(), y_pred.data(), 6), 0.325, 1e-15);
  EXPECT_NEAR(f1_weighted(y_true.data(), y_pred.data(), 6), 2.9 / 6, 1e-15);
  EXPECT_EQ(f1_weighted(y_true.data(), y_pred.data(), 6), 0.4833333333333334);  // sklearn's bits
}

// Hand-computed F1 0.4, 0.8, 0; sklearn prints 0.4000000000000001 for both
// averages, from the same order of operations (2 p r / (p + r), then the mean).
TEST(ClassificationScores, MatchesSklearnRounding) {
  std::vector<int> y_true = {0, 0, 1, 1, 2, 2}, y_pred = {0, 1, 1, 1, 0, 0};
  EXPECT_EQ(f1_macro(y_true.data(), y_pred.data(), 6), 0.4000000000000001);
  EXPECT_EQ(f1_weighted(y_true.data(), y_pred.data(), 6), 0.4000000000000001);
}

// Labels that occur in neither array do not enter the average.
TEST(ClassificationScores, OnlyOccurringLabelsCount) {
  std::vector<int> y = {5, 5};
  EXPECT_DOUBLE_EQ(f1_macro(y.data(), y.data(), 2), 1.0);
  EXPECT_DOUBLE_EQ(f1_weighted(y.data(), y.data(), 2), 1.0);
  EXPECT_DOUBLE_EQ(accuracy(y.data(), y.data(), 2), 1.0);
}

TEST(ClassificationScores, EdgeCases) {
  std::vector<int> one_true = {1}, one_pred = {0};
  EXPECT_DOUBLE_EQ(accuracy(one_true.data(), one_pred.data(), 1), 0.0);
  EXPECT_DOUBLE_EQ(f1_macro(one_true.data(), one_pred.data(), 1), 0.0);
  EXPECT_DOUBLE_EQ(f1_weighted(one_true.data(), one_pred.data(), 1), 0.0);
  EXPECT_DOUBLE_EQ(accuracy(nullptr, nullptr, 0), 0.0);  // sklearn has no value here
  EXPECT_DOUBLE_EQ(f1_macro(nullptr, nullptr, 0), 0.0);
  EXPECT_DOUBLE_EQ(f1_weighted(nullptr, nullptr, 0), 0.0);
}

// np.sum(1 / arange(1, 301)) = 6.282663880299504 and np.mean = 0.02094221293433168
// (numpy 1.24); a left-to-right loop gives 6.282663880299502.
TEST(NumpySum, PairwiseOrder) {
  std::vector<double> a;
  for (int k = 0; k < 300; ++k) a.push_back(1.0 / (k + 1));
  EXPECT_EQ(numpy_sum(a.data(), a.size()), 6.282663880299504);
  EXPECT_EQ(numpy_mean(a.data(), a.size()), 0.02094221293433168);
  std::vector<double> small = {0.5, 0.25, 0.125};
  EXPECT_EQ(numpy_sum(small.data(), 3), 0.875);
  EXPECT_EQ(numpy_sum<double>(nullptr, 0), 0.0);
}
