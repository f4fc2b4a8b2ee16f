#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "tasks/metrics/paired_similarity.h"

using namespace embeval::metrics;

// Hand-computed; sklearn 1.2.1's paired_* functions give the same (float64 input).
TEST(PairedSimilarity, ByHand) {
  // Row 0: (1,2,3) vs (4,-5,6): dot 12, diff (-3,7,-3): L2 sqrt(67), L1 13,
  //        cosine 12 / sqrt(14 * 77) = 0.36548694232390...
  // Row 1: (1,0,0) vs (0,1,0): orthogonal, cosine 0, L2 sqrt(2), L1 2.
  std::vector<float> x = {1, 2, 3, 1, 0, 0}, y = {4, -5, 6, 0, 1, 0};
  std::vector<double> cos = paired_cosine_similarity(x.data(), y.data(), 2, 3);
  std::vector<double> l2 = paired_euclidean_distance(x.data(), y.data(), 2, 3);
  std::vector<double> l1 = paired_manhattan_distance(x.data(), y.data(), 2, 3);
  std::vector<double> dot = paired_dot_product(x.data(), y.data(), 2, 3);
  EXPECT_NEAR(cos[0], 12.0 / std::sqrt(1078.0), 1e-15);
  EXPECT_NEAR(cos[1], 0.0, 1e-15);
  EXPECT_NEAR(l2[0], std::sqrt(67.0), 1e-15);
  EXPECT_NEAR(l2[1], std::sqrt(2.0), 1e-15);
  EXPECT_EQ(l1[0], 13.0);
  EXPECT_EQ(l1[1], 2.0);
  EXPECT_EQ(dot[0], 12.0);
  EXPECT_EQ(dot[1], 0.0);
}

// sklearn's 1 - 0.5 * |x/|x| - y/|y||^2 form makes identical rows exactly 1
// (dot / (|x||y|) can land an ulp off).
TEST(PairedSimilarity, IdenticalRowsAreExactlyOne) {
  std::vector<float> x = {0.1f, -0.7f, 0.3f, 0.55f, 3.0f, 4.0f, 1e-3f, 2e-3f};
  std::vector<double> cos = paired_cosine_similarity(x.data(), x.data(), 2, 4);
  EXPECT_EQ(cos[0], 1.0);
  EXPECT_EQ(cos[1], 1.0);
  EXPECT_EQ(paired_euclidean_distance(x.data(), x.data(), 2, 4)[0], 0.0);
}

// sklearn's normalize() leaves a (near-)zero row unscaled, so cosine with it is
// 1 - 0.5 * |0 - y/|y||^2 = 0.5. sklearn (float32 input) prints 0.5 for both rows.
TEST(PairedSimilarity, ZeroVectorGivesOneHalf) {
  std::vector<float> x = {0.0f, 0.0f, 1e-7f, 0.0f}, y = {3.0f, 4.0f, 3.0f, 4.0f};
  std::vector<double> cos = paired_cosine_similarity(x.data(), y.data(), 2, 2);
  EXPECT_EQ(cos[0], 0.5);
  EXPECT_NEAR(cos[1], 0.5, 1e-6);  // |x| = 1e-7 < 10 * float32 eps: not normalised
}

TEST(PairedSimilarity, NoRows) {
  EXPECT_TRUE(paired_cosine_similarity(nullptr, nullptr, 0, 4).empty());
  EXPECT_TRUE(paired_dot_product(nullptr, nullptr, 0, 4).empty());
}
