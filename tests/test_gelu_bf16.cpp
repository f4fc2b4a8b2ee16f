// gelu_bf16.h's pass against erf in float64: each bf16 output within the
// stated GELU bound plus half a bf16 step of the exact value, nearly every
// one the exact value's own rounding, rows and leading dimensions kept, the
// special values as torch.nn.functional.gelu gives them. Skipped where the
// build or CPU has no AVX-512 pass.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/BFloat16.h>
#include <gtest/gtest.h>

#include "runners/kernels/gelu_bf16.h"
#include "test_util.h"

using namespace embeval;

namespace {

TEST(GeluBf16, WithinTheBoundAndRoundedToNearest) {
  if (!gelu_erf_bf16_available()) GTEST_SKIP() << "no AVX-512 GELU pass in this build or CPU";
  // 240,001 values over [-12, 12] as rows of 50 in a [rows, 64] buffer, out
  // into a [rows, 56] one whose last 6 columns must stay as they were.
  const int64_t n = 240001, cols = 50, ldx = 64, ldy = 56, rows = (n + cols - 1) / cols;
  std::vector<float> x(static_cast<size_t>(rows * ldx), 0.0f);
  std::vector<double> xs;
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float v = i < n ? static_cast<float>(-12.0 + 1e-4 * static_cast<double>(i)) : 0.5f;
    x[static_cast<size_t>((i / cols) * ldx + i % cols)] = v;
    xs.push_back(v);
  }
  std::vector<uint16_t> y(static_cast<size_t>(rows * ldy), 0xABCD);
  gelu_erf_to_bf16(x.data(), ldx, rows, cols, y.data(), ldy);
  int64_t exact = 0, counted = 0, over = 0;
  double worst = 0, worst_x = 0;
  for (int64_t i = 0; i < rows * cols; ++i) {
    const double xi = xs[static_cast<size_t>(i)];
    const double want = 0.5 * xi * (1 + std::erf(xi / std::sqrt(2.0)));
    const float got = test::bf16_bits_to_float(y[static_cast<size_t>((i / cols) * ldy + i % cols)]);
    // vec_math.h's GELU bound, then half a bf16 step (2^-8 of the value at most).
    const double allowed = 1.75e-7 * std::fabs(xi) + (4 * std::ldexp(1.0, -24) + std::ldexp(1.0, -8)) * std::fabs(want) + 1e-38;
    const double err = std::fabs(got - want);
    if (err > allowed) ++over;
    if (err - allowed > worst) worst = err - allowed, worst_x = xi;
    if (xi >= -2) {  // below, the bound's 1.75e-7 |x| is no longer small against the value
      ++counted;
      if (got == static_cast<float>(c10::BFloat16(static_cast<float>(want)))) ++exact;
    }
  }
  EXPECT_EQ(over, 0) << "worst excess " << worst << " at x = " << worst_x;
  // A different rounding is possible only within the bound of a halfway
  // point (x >= -2: within ~1e-5 of the value, 1/400 of a bf16 step);
  // truncation would miss about half.
  EXPECT_GE(exact, counted * 99 / 100) << exact << " of " << counted;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = cols; j < ldy; ++j) ASSERT_EQ(y[static_cast<size_t>(r * ldy + j)], 0xABCD) << "row " << r;
}

TEST(GeluBf16, SpecialValuesAsTorch) {
  if (!gelu_erf_bf16_available()) GTEST_SKIP() << "no AVX-512 GELU pass in this build or CPU";
  // torch.nn.functional.gelu (float32): nan, inf, nan, 0, 0, -0.1587
  const float x[6] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, -1.0f};
  uint16_t y[6];
  gelu_erf_to_bf16(x, 6, 1, 6, y, 6);
  EXPECT_TRUE(std::isnan(test::bf16_bits_to_float(y[0])));
  EXPECT_EQ(test::bf16_bits_to_float(y[1]), INFINITY);
  EXPECT_TRUE(std::isnan(test::bf16_bits_to_float(y[2])));
  EXPECT_EQ(test::bf16_bits_to_float(y[3]), 0.0f);
  EXPECT_EQ(test::bf16_bits_to_float(y[4]), 0.0f);
  EXPECT_EQ(test::bf16_bits_to_float(y[5]), static_cast<float>(c10::BFloat16(-0.15865525393145707f)));
}

}  // namespace
