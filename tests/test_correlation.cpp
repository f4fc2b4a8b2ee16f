#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "tasks/metrics/correlation.h"

using embeval::metrics::average_ranks;
using embeval::metrics::pearson;
using embeval::metrics::spearman;

// Expected values are worked by hand; those marked "scipy" were also printed
// by scipy 1.10.1 (repr of pearsonr/spearmanr(...)[0]) and agree.

TEST(Correlation, AverageRanks) {
  // Sorted: 5 (rank 1), 10 (rank 2), 20 20 20 (ranks 3,4,5 -> 4). scipy rankdata agrees.
  std::vector<double> x = {10, 20, 20, 5, 20};
  std::vector<double> expected = {2, 4, 4, 1, 4};
  EXPECT_EQ(average_ranks(x.data(), x.size()), expected);
  EXPECT_TRUE(average_ranks(nullptr, 0).empty());
}

TEST(Correlation, PearsonByHand) {
  // Centred: x {-1,0,1}, y {-1,1,0}; r = 1 / (sqrt2 * sqrt2) = 0.5 (scipy: 0.4999999999999999).
  std::vector<double> x = {1, 2, 3}, y = {1, 3, 2};
  EXPECT_NEAR(pearson(x.data(), y.data(), 3), 0.5, 1e-15);
  // Centred: x {-2,-1,0,1,2}, y {-2,0,1,0,1}; r = 6 / sqrt(10 * 6) = 0.7745966692414834.
  std::vector<double> a = {1, 2, 3, 4, 5}, b = {2, 4, 5, 4, 5};
  EXPECT_NEAR(pearson(a.data(), b.data(), 5), 6.0 / std::sqrt(60.0), 1e-15);
  EXPECT_NEAR(pearson(b.data(), a.data(), 5), 6.0 / std::sqrt(60.0), 1e-15);
}

// MTEB rescales gold scores to (s - min) / (max - min) before correlating; we
// do not (task.json has no range). An increasing affine map must not matter.
TEST(Correlation, GoldRescalingDoesNotMatter) {
  std::vector<double> gold = {0, 1, 2, 2, 3, 5, 4, 1}, sim = {0.1, 0.3, 0.2, 0.5, 0.4, 0.9, 0.9, 0.0};
  std::vector<double> scaled;
  for (double g : gold) scaled.push_back((g - 0.0) / (5.0 - 0.0));
  EXPECT_NEAR(pearson(scaled.data(), sim.data(), 8), pearson(gold.data(), sim.data(), 8), 1e-15);
  EXPECT_EQ(spearman(scaled.data(), sim.data(), 8), spearman(gold.data(), sim.data(), 8));
}

TEST(Correlation, SpearmanWithTies) {
  // Ranks x {1,2.5,2.5,4}, y {1,3,2,4}; centred on 2.5: x {-1.5,0,0,1.5}, y {-1.5,.5,-.5,1.5};
  // rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9). scipy: 0.9486832980505139 (one ulp above sqrt(0.9)).
  std::vector<double> x = {1, 2, 2, 3}, y = {1, 3, 2, 4};
  EXPECT_NEAR(spearman(x.data(), y.data(), 4), std::sqrt(0.9), 1e-15);
  EXPECT_EQ(spearman(x.data(), y.data(), 4), 0.9486832980505139);  // bit-exact with scipy

  // Ties on both sides: ranks x {1.5,1.5,3,5,5,5}, y {3,1.5,1.5,6,4.5,4.5}; centred on 3.5,
  // sum dx*dy = 12.75, sum dx^2 = 15, sum dy^2 = 16.5; rho = 12.75 / sqrt(247.5).
  std::vector<double> a = {1, 1, 2, 3, 3, 3}, b = {2, 1, 1, 5, 4, 4};
  EXPECT_NEAR(spearman(a.data(), b.data(), 6), 12.75 / std::sqrt(247.5), 1e-15);
  EXPECT_EQ(spearman(a.data(), b.data(), 6), 0.8104432008587534);  // scipy
}

TEST(Correlation, AgreesWithScipyOnTiedData) {
  std::vector<double> x = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5}, y = {2, 7, 1, 8, 2, 8, 1, 8, 2, 8, 4};
  EXPECT_NEAR(pearson(x.data(), y.data(), 11), 0.09422924859889792, 1e-15);  // scipy
  EXPECT_EQ(spearman(x.data(), y.data(), 11), 0.1384567651467695);          // scipy, bit-exact
}

// scipy returns NaN for a constant input (ConstantInputWarning); MTEB would
// write NaN and the plugins report null.
TEST(Correlation, ConstantInputIsNaN) {
  std::vector<double> c = {2, 2, 2}, v = {1, 2, 3};
  EXPECT_TRUE(std::isnan(pearson(c.data(), v.data(), 3)));
  EXPECT_TRUE(std::isnan(pearson(v.data(), c.data(), 3)));
  EXPECT_TRUE(std::isnan(spearman(c.data(), v.data(), 3)));
  EXPECT_TRUE(std::isnan(spearman(v.data(), c.data(), 3)));
}

TEST(Correlation, TwoPoints) {
  // scipy special-cases n == 2 in pearsonr: sign(dx) * sign(dy), exactly.
  std::vector<double> x = {1, 2}, up = {3, 5}, down = {5, 3};
  EXPECT_EQ(pearson(x.data(), up.data(), 2), 1.0);
  EXPECT_EQ(pearson(x.data(), down.data(), 2), -1.0);
  // spearmanr goes through np.corrcoef: -0.5 / sqrt(0.5) / sqrt(0.5) = -0.9999999999999999.
  EXPECT_EQ(spearman(x.data(), down.data(), 2), -0.9999999999999999);
  EXPECT_NEAR(spearman(x.data(), up.data(), 2), 1.0, 1e-15);
}

TEST(Correlation, FewerThanTwoPointsIsNaN) {
  std::vector<double> x = {1}, y = {2};
  EXPECT_TRUE(std::isnan(pearson(x.data(), y.data(), 1)));
  EXPECT_TRUE(std::isnan(spearman(x.data(), y.data(), 1)));
  EXPECT_TRUE(std::isnan(pearson(nullptr, nullptr, 0)));
  EXPECT_TRUE(std::isnan(spearman(nullptr, nullptr, 0)));
}
