// vec_math.h's scalar element macros (the fp32 softmax of attention.cpp,
// the exponential inside BERT's erf GELU): EMBEVAL_EXP_NONPOSITIVE within
// 2e-7 relative of float64's exp over [-87, 0], exactly 0 below -87 and at
// -inf, NaN kept; GELU's special values. Together with a sanitized build
// (EMBEVAL_SANITIZE): a NaN input once converted NaN to int and shifted a
// negative number left, which UBSan reported.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runners/kernels/vec_math.h"

namespace {

float exp_np(float x) {
  float y;
  EMBEVAL_EXP_NONPOSITIVE(x, y);
  return y;
}

float gelu(float x) {
  float y;
  EMBEVAL_GELU_ERF(x, y);
  return y;
}

TEST(VecMath, ExpNonpositiveWithinItsBoundAndNanStays) {
  EXPECT_TRUE(std::isnan(exp_np(NAN)));
  EXPECT_TRUE(std::isnan(exp_np(-NAN)));
  EXPECT_EQ(exp_np(-INFINITY), 0.0f);
  EXPECT_EQ(exp_np(-87.5f), 0.0f);
  EXPECT_EQ(exp_np(-1e30f), 0.0f);
  EXPECT_EQ(exp_np(0.0f), 1.0f);
  double worst = 0;
  for (int64_t i = 0; i <= 2000000; ++i) {
    const float x = static_cast<float>(-87.0 * i / 2000000.0);
    worst = std::max(worst, std::fabs(exp_np(x) / std::exp(static_cast<double>(x)) - 1.0));
  }
  EXPECT_LT(worst, 2e-7);
  RecordProperty("worst_relative_error", std::to_string(worst));
}

TEST(VecMath, GeluSpecialValues) {
  EXPECT_TRUE(std::isnan(gelu(NAN)));
  EXPECT_EQ(gelu(INFINITY), INFINITY);
  EXPECT_EQ(gelu(0.0f), 0.0f);
  EXPECT_EQ(gelu(-20.0f), -0.0f);
  // Within the erf approximation's 1.5e-7 (times x / 2) of the exact value.
  for (float x : {-5.0f, -1.0f, -0.1f, 0.3f, 1.0f, 4.0f})
    EXPECT_NEAR(gelu(x), 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))), 2e-7 * std::max(1.0f, std::fabs(x))) << x;
}

}  // namespace
