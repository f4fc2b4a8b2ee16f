// runners/kernels/avx512_math.h's exponentials. exp2_for_bf16_16 (the AMX attention's
// softmax exponential) against float64's exp2, within the bound its note
// states: 2.7e-6 relative from the polynomial, ~2e-7 from float
// evaluation, so |got / want - 1| <= 3e-6; exactly 0 below -125 (no
// subnormal results) and at -inf; NaN stays NaN. Over [-126, 0.01] in
// steps of ~3e-5 and around every integer (where round(t) flips).
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runners/kernels/amx_tiles.h"

#ifdef EMBEVAL_AMX_BUILD
// GCC 12's "may be used uninitialized" on the _mm512_undefined_* inside
// AVX-512 intrinsics once inlined (GCC bug 105593): not this code's.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "runners/kernels/avx512_math.h"

namespace {

EMBEVAL_AVX512_MATH_TARGET void exp2_all(const std::vector<float>& t, std::vector<float>& out) {
  out.resize(t.size());
  for (size_t i = 0; i < t.size(); i += 16) {
    const __mmask16 m = embeval::first_lanes16(static_cast<int64_t>(t.size() - i));
    _mm512_mask_storeu_ps(out.data() + i, m, embeval::exp2_for_bf16_16(_mm512_maskz_loadu_ps(m, t.data() + i)));
  }
}

EMBEVAL_AVX512_MATH_TARGET void exp_all(const std::vector<float>& x, std::vector<float>& out) {
  out.resize(x.size());
  for (size_t i = 0; i < x.size(); i += 16) {
    const __mmask16 m = embeval::first_lanes16(static_cast<int64_t>(x.size() - i));
    _mm512_mask_storeu_ps(out.data() + i, m, embeval::exp_nonpositive16(_mm512_maskz_loadu_ps(m, x.data() + i)));
  }
}

}  // namespace

TEST(Avx512Math, Exp2ForBf16WithinItsBound) {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512dq")) GTEST_SKIP() << "no AVX-512 here";
  std::vector<float> t;
  for (int64_t i = 0; i <= 4200000; ++i) t.push_back(static_cast<float>(-126.0 + 126.01 * i / 4200000.0));
  for (int k = -125; k <= 0; ++k)
    for (float d : {-0.5f, -0.4999999f, -1e-7f, 0.0f, 1e-7f, 0.4999999f, 0.5f}) t.push_back(static_cast<float>(k) + d);
  std::vector<float> got;
  exp2_all(t, got);
  double worst = 0;
  int64_t wrong = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] < -125.0f) {
      wrong += got[i] != 0.0f;
      continue;
    }
    const double rel = std::fabs(got[i] / std::exp2(static_cast<double>(t[i])) - 1.0);
    worst = std::max(worst, rel);
    wrong += !(rel <= 3e-6) || std::fpclassify(got[i]) == FP_SUBNORMAL;
  }
  EXPECT_EQ(wrong, 0) << "worst relative error " << worst;
  EXPECT_LT(worst, 3e-6);
  RecordProperty("worst_relative_error", std::to_string(worst));
  std::vector<float> special = {-INFINITY, -1e30f, NAN, -125.5f}, out;
  exp2_all(special, out);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_EQ(out[3], 0.0f);
}

// exp_nonpositive16 (the fp32 attention's softmax): the Cephes expf
// reduction, within 2e-7 relative of float64's exp over [-87, 0]; exactly 0
// below -87 and at -inf; NaN stays NaN (a clamp with its operands the other
// way round once made it exp(-87)).
TEST(Avx512Math, ExpNonpositiveWithinItsBoundAndNanStays) {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512dq")) GTEST_SKIP() << "no AVX-512 here";
  std::vector<float> x = {NAN, -INFINITY, -87.5f, -1e30f};
  for (int64_t i = 0; i <= 2000000; ++i) x.push_back(static_cast<float>(-87.0 * i / 2000000.0));
  std::vector<float> got;
  exp_all(x, got);
  EXPECT_TRUE(std::isnan(got[0]));
  EXPECT_EQ(got[1], 0.0f);
  EXPECT_EQ(got[2], 0.0f);
  EXPECT_EQ(got[3], 0.0f);
  double worst = 0;
  for (size_t i = 4; i < x.size(); ++i)
    worst = std::max(worst, std::fabs(got[i] / std::exp(static_cast<double>(x[i])) - 1.0));
  EXPECT_LT(worst, 2e-7);
  RecordProperty("worst_relative_error", std::to_string(worst));
}

#else

TEST(Avx512Math, Exp2ForBf16WithinItsBound) { GTEST_SKIP() << "no AVX-512 intrinsics in this build"; }
TEST(Avx512Math, ExpNonpositiveWithinItsBoundAndNanStays) { GTEST_SKIP() << "no AVX-512 intrinsics in this build"; }

#endif
