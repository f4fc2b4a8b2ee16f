// amx_bf16_gemm.h's kernel: the packing exact (small integers, whose fp32
// sums are exact, give the exactly rounded bf16 of the integer result, and
// with the caller's packing and float outputs the sums themselves),
// random values within the stated bound of a float64 product of the same
// bf16 numbers (with and without GELU), partial row and column blocks,
// strided inputs and outputs, column ranges, and nothing past k read as a
// number. Skipped where the build or CPU has no AMX bf16.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/BFloat16.h>
#include <gtest/gtest.h>

#include "runners/kernels/amx_bf16_gemm.h"
#include "test_util.h"

using namespace embeval;

namespace {

uint16_t float_to_bits(float f) { return c10::BFloat16(f).x; }

double gelu(double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }

// x [rows, ldx] bf16 bits from a float tensor [rows, k] (columns past k: `fill`).
std::vector<uint16_t> to_bits(const at::Tensor& x, int64_t ldx, float fill) {
  const int64_t rows = x.size(0), k = x.size(1);
  std::vector<uint16_t> out(static_cast<size_t>(rows * ldx), float_to_bits(fill));
  const at::Tensor xf = x.to(at::kFloat).contiguous();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < k; ++i) out[static_cast<size_t>(r * ldx + i)] = float_to_bits(xf[r][i].item<float>());
  return out;
}

TEST(AmxBf16Gemm, SmallIntegersGiveTheExactlyRoundedResult) {
  if (!AmxBf16Gemm::available()) GTEST_SKIP() << "no AMX bf16 in this build or CPU";
  // |x|, |w| <= 7: every product and partial sum (< 2^24) is exact in fp32,
  // so y = bf16(sum + b) exactly, whatever the order of the additions; a
  // weight or input in the wrong place of a tile changes the sum.
  at::manual_seed(11);
  for (int64_t k : {32, 96, 768, 70}) {
    const int64_t n = 72, rows = 45;
    at::Tensor x = at::randint(-7, 8, {rows, k}).to(at::kFloat);
    at::Tensor w = at::randint(-7, 8, {n, k}).to(at::kFloat);
    at::Tensor b = at::randint(-50, 51, {n}).to(at::kFloat);
    AmxBf16Gemm g(w, b, LinearActivation::none);
    const std::vector<uint16_t> xb = to_bits(x, k, 0.0f);
    std::vector<uint16_t> y(static_cast<size_t>(rows * n), 0);
    g.run(xb.data(), rows, k, y.data(), n, 0, n);
    at::Tensor want = at::matmul(x.to(at::kDouble), w.to(at::kDouble).t()) + b.to(at::kDouble);
    int64_t wrong = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < n; ++c)
        if (y[static_cast<size_t>(r * n + c)] != float_to_bits(static_cast<float>(want[r][c].item<double>()))) ++wrong;
    EXPECT_EQ(wrong, 0) << "k " << k;
  }
}

TEST(AmxBf16Gemm, PackedByTheCallerWithFloatOutputsTheExactIntegerSums) {
  if (!AmxBf16Gemm::available()) GTEST_SKIP() << "no AMX bf16 in this build or CPU";
  // pack() + run_packed(): weights with a row stride past k, widths that are
  // not multiples of 16 / 32, float outputs (exact here: integer sums below
  // 2^24), with a bias and without, and GELU against float64.
  at::manual_seed(13);
  for (int64_t k : {2304, 100})
    for (int64_t n : {128, 72, 5}) {
      const int64_t rows = 37, ldw = k + 24;
      at::Tensor x = at::randint(-7, 8, {rows, k}).to(at::kFloat);
      at::Tensor w = at::randint(-7, 8, {n, k}).to(at::kFloat);
      at::Tensor b = at::randint(-50, 51, {n}).to(at::kFloat);
      const std::vector<uint16_t> xb = to_bits(x, k, 0.0f), wb = to_bits(w, ldw, NAN);
      std::vector<uint16_t> packed(static_cast<size_t>(AmxBf16Gemm::packed_elements(n, k)));
      AmxBf16Gemm::pack(wb.data(), n, k, ldw, packed.data());
      const at::Tensor sum = at::matmul(x.to(at::kDouble), w.to(at::kDouble).t());
      for (bool with_bias : {true, false})
        for (LinearActivation act : {LinearActivation::none, LinearActivation::gelu_erf}) {
          const int64_t ldy = n + 3;
          std::vector<float> y(static_cast<size_t>(rows * ldy), -1.0f);
          AmxBf16Gemm::run_packed(packed.data(), n, k, with_bias ? b.data_ptr<float>() : nullptr, act, xb.data(),
                                  rows, k, y.data(), ldy);
          int64_t wrong = 0, touched = 0;
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < n; ++c) {
              const double s = sum[r][c].item<double>() + (with_bias ? b[c].item<double>() : 0.0);
              const double got = y[static_cast<size_t>(r * ldy + c)];
              if (act == LinearActivation::none ? got != s : std::fabs(got - gelu(s)) > 2e-7 * std::fabs(s) + 1e-6)
                ++wrong;
            }
            for (int64_t c = n; c < ldy; ++c) touched += y[static_cast<size_t>(r * ldy + c)] != -1.0f;
          }
          EXPECT_EQ(wrong, 0) << "k " << k << " n " << n << " bias " << with_bias << " act " << static_cast<int>(act);
          EXPECT_EQ(touched, 0);
        }
    }
}

TEST(AmxBf16Gemm, WithinTheBoundOfTheFloat64Product) {
  if (!AmxBf16Gemm::available()) GTEST_SKIP() << "no AMX bf16 in this build or CPU";
  at::manual_seed(12);
  struct Case {
    int64_t rows, k, n, ldx, c0, c1;
  };
  // Row counts around the 32-row blocks, input widths a multiple of 32 or
  // not (100), strided inputs, column ranges starting past 0 and ending
  // inside a 32-column block, and several 128-column chunks over rows that
  // end in a partial block (odd chunks walk the rows last to first, so
  // they start on that block).
  const Case cases[] = {{1, 768, 96, 768, 0, 96},    {31, 768, 3072, 768, 0, 3072}, {33, 3072, 96, 3072, 0, 96},
                        {100, 100, 50, 100, 0, 50},  {64, 96, 200, 160, 64, 200},   {200, 768, 256, 800, 128, 250},
                        {257, 64, 40, 64, 32, 40},   {77, 96, 300, 96, 0, 300},     {77, 100, 300, 100, 32, 290}};
  for (const Case& cs : cases)
    for (LinearActivation act : {LinearActivation::none, LinearActivation::gelu_erf}) {
      at::Tensor x = at::randn({cs.rows, cs.k}).to(at::kBFloat16).to(at::kFloat);
      at::Tensor w = (at::randn({cs.n, cs.k}) / std::sqrt(double(cs.k))).to(at::kBFloat16).to(at::kFloat);
      at::Tensor b = at::randn({cs.n});
      AmxBf16Gemm g(w, b, act);
      // NaN past k in each row of x: it must never reach a sum.
      const std::vector<uint16_t> xb = to_bits(x, cs.ldx, NAN);
      const int64_t width = cs.c1 - cs.c0, ldy = width + 7;
      std::vector<uint16_t> y(static_cast<size_t>(cs.rows * ldy), 0xABCD);
      g.run(xb.data(), cs.rows, cs.ldx, y.data(), ldy, cs.c0, cs.c1);
      const at::Tensor xd = x.to(at::kDouble), wd = w.to(at::kDouble);
      const at::Tensor sum = at::matmul(xd, wd.t()) + b.to(at::kDouble).to(at::kDouble);
      const at::Tensor mag = at::matmul(xd.abs(), wd.abs().t());  // sum |x||w|: the fp32 summation error's scale
      double worst = 0;
      int64_t over = 0, touched = 0;
      for (int64_t r = 0; r < cs.rows; ++r) {
        for (int64_t j = 0; j < width; ++j) {
          const int64_t c = cs.c0 + j;
          const double s = sum[r][c].item<double>();
          const double want = act == LinearActivation::gelu_erf ? gelu(s) : s;
          const double got = test::bf16_bits_to_float(y[static_cast<size_t>(r * ldy + j)]);
          // Half a bf16 step of the value, fp32 sums (K 2^-24 sum |x||w|,
          // GELU's slope <= 1.13), the GELU's own bound (vec_math.h).
          const double allowed = std::ldexp(std::fabs(want), -8) +
                                 1.13 * (cs.k + 1) * std::ldexp(1.0, -24) * (mag[r][c].item<double>() + std::fabs(s)) +
                                 2e-7 * std::fabs(s) + 1e-30;
          const double err = std::isnan(got) ? INFINITY : std::fabs(got - want);
          if (err > allowed) ++over;
          worst = std::max(worst, err / allowed);
        }
        for (int64_t j = width; j < ldy; ++j) touched += y[static_cast<size_t>(r * ldy + j)] != 0xABCD;
      }
      EXPECT_EQ(over, 0) << "rows " << cs.rows << " k " << cs.k << " n " << cs.n << " act "
                         << static_cast<int>(act) << ": worst error / bound " << worst;
      EXPECT_EQ(touched, 0) << "wrote past its columns";
    }
}

TEST(AmxBf16Gemm, GeluErrorMostlyTheExactValuesRounding) {
  if (!AmxBf16Gemm::available()) GTEST_SKIP() << "no AMX bf16 in this build or CPU";
  // k = 1 with w = 1: the sum is x exactly, so the outputs are the GELU of
  // known numbers: nearly all the float64 value's own bf16 rounding.
  const int64_t rows = 4000, n = 32;
  at::Tensor x = at::linspace(-6, 6, rows).reshape({rows, 1}).to(at::kBFloat16).to(at::kFloat);
  AmxBf16Gemm g(at::ones({n, 1}), at::zeros({n}), LinearActivation::gelu_erf);
  const std::vector<uint16_t> xb = to_bits(x, 1, 0.0f);
  std::vector<uint16_t> y(static_cast<size_t>(rows * n));
  g.run(xb.data(), rows, 1, y.data(), n, 0, n);
  int64_t exact = 0, counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const double v = x[r][0].item<double>(), want = gelu(v);
    // Below -2 the GELU bound's 2e-7 |x| is no longer small against the
    // value (test_gelu_bf16.cpp's reasoning); above, a different rounding
    // is possible only within ~1e-5 of a halfway point.
    if (v < -2) continue;
    for (int64_t c = 0; c < n; ++c) {
      ++counted;
      exact += y[static_cast<size_t>(r * n + c)] == float_to_bits(static_cast<float>(want));
    }
  }
  EXPECT_GE(exact, counted * 99 / 100) << exact << " of " << counted;
}

}  // namespace
