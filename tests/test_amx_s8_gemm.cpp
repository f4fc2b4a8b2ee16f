// The AMX int8 kernel (runners/kernels/amx_s8_gemm.h) against the exact
// integer product: sums of int8 x int8 computed in float64 (exact at these
// sizes), then the epilogue's float operations in the order the header
// states. Skipped where the CPU or build has no AMX int8.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <gtest/gtest.h>

#include "runners/kernels/amx_s8_gemm.h"
#include "runners/kernels/int8_linear.h"

using namespace embeval;

namespace {

// float(acc) * sw, then * sx + b as one fused multiply-add: the product
// rounded once and the epilogue's two roundings.
at::Tensor expected(const at::Tensor& codes, const at::Tensor& w, const at::Tensor& sw, const at::Tensor& sx,
                    const at::Tensor& b) {
  const at::Tensor acc = at::mm(codes.to(at::kDouble), w.to(at::kDouble).t()).to(at::kInt).contiguous();
  const int64_t rows = acc.size(0), n = acc.size(1);
  at::Tensor y = at::empty({rows, n}, at::kFloat);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c) {
      const float t = static_cast<float>(acc[r][c].item<int32_t>()) * sw[c].item<float>();
      y[r][c] = std::fma(t, sx[r].item<float>(), b[c].item<float>());
    }
  return y;
}

}  // namespace

TEST(AmxS8Gemm, MatchesTheExactIntegerProductAndItsEpilogue) {
  if (!AmxS8Gemm::available()) GTEST_SKIP() << "no AMX int8 here";
  at::manual_seed(11);
  // k: one K step, a partial one, several; n: partial column blocks and
  // several chunks; rows: one, a partial block, blocks and a tail.
  for (int64_t k : {64, 100, 200, 3}) {
    for (int64_t n : {7, 48, 160, 300}) {
      at::Tensor w = at::randint(-127, 128, {n, k}, at::kLong).to(at::kChar);
      w[0].fill_(-127);  // extremes: sums exact in int32
      at::Tensor sw = at::rand({n}) * 0.01 + 1e-3, b = at::randn({n});
      AmxS8Gemm g(w, sw, b, LinearActivation::none);
      ASSERT_EQ(g.lda() % 64, 0);
      for (int64_t rows : {1, 31, 33, 70}) {
        at::Tensor codes = at::randint(-127, 128, {rows, k}, at::kLong).to(at::kChar);
        codes[0].fill_(-127);
        // The kernel's padded buffer, with junk past k and past `rows`: it must not count.
        at::Tensor buf = at::full({AmxS8Gemm::rows_padded(rows), g.lda()}, 99, at::kChar);
        buf.narrow(0, 0, rows).narrow(1, 0, k).copy_(codes);
        at::Tensor sx = at::rand({rows}) * 0.02 + 1e-3;
        const at::Tensor want = expected(codes, w, sw, sx, b);
        at::Tensor y = at::full({rows, n}, NAN, at::kFloat);
        g.run(buf.data_ptr<int8_t>(), rows, sx.data_ptr<float>(), y.data_ptr<float>(), n, 0, n);
        EXPECT_TRUE(y.equal(want)) << "k " << k << " n " << n << " rows " << rows << " max diff "
                                   << (y - want).abs().max().item<float>();
        // bf16 out: the same floats rounded once (c10's nearest even).
        at::Tensor y16 = at::zeros({rows, n}, at::kBFloat16);
        g.run(buf.data_ptr<int8_t>(), rows, sx.data_ptr<float>(), reinterpret_cast<uint16_t*>(y16.data_ptr<at::BFloat16>()),
              n, 0, n);
        EXPECT_TRUE(y16.equal(want.to(at::kBFloat16))) << "bf16 k " << k << " n " << n << " rows " << rows;
        // A range of columns writes those columns only.
        if (n > 32) {
          at::Tensor part = at::full({rows, n}, 7.0f, at::kFloat);
          g.run(buf.data_ptr<int8_t>(), rows, sx.data_ptr<float>(), part.data_ptr<float>(), n, 32, n - 1);
          EXPECT_TRUE(part.narrow(1, 32, n - 33).equal(want.narrow(1, 32, n - 33)));
          EXPECT_TRUE((part.narrow(1, 0, 32) == 7.0f).all().item<bool>());
          EXPECT_EQ(part[0][n - 1].item<float>(), 7.0f);
        }
      }
    }
  }
}

TEST(AmxS8Gemm, ActivationsAndNanRows) {
  if (!AmxS8Gemm::available()) GTEST_SKIP() << "no AMX int8 here";
  at::manual_seed(12);
  const int64_t k = 96, n = 80, rows = 40;
  at::Tensor w = at::randint(-127, 128, {n, k}, at::kLong).to(at::kChar);
  at::Tensor sw = at::rand({n}) * 0.01 + 1e-3, b = at::randn({n});
  at::Tensor codes = at::randint(-127, 128, {rows, k}, at::kLong).to(at::kChar);
  at::Tensor sx = at::rand({rows}) * 0.02 + 1e-3;
  sx[5] = NAN;  // a NaN input row gives NaN outputs, never finite ones
  at::Tensor buf = at::zeros({AmxS8Gemm::rows_padded(rows), 128}, at::kChar);
  buf.narrow(1, 0, k).narrow(0, 0, rows).copy_(codes);
  const at::Tensor pre = expected(codes, w, sw, sx, b).to(at::kDouble);
  for (LinearActivation a : {LinearActivation::gelu_erf, LinearActivation::gelu_tanh, LinearActivation::relu}) {
    AmxS8Gemm g(w, sw, b, a);
    at::Tensor y = at::empty({rows, n}, at::kFloat);
    g.run(buf.data_ptr<int8_t>(), rows, sx.data_ptr<float>(), y.data_ptr<float>(), n, 0, n);
    at::Tensor want = a == LinearActivation::gelu_erf    ? 0.5 * pre * (1 + at::erf(pre / std::sqrt(2.0)))
                      : a == LinearActivation::gelu_tanh ? at::gelu(pre, "tanh")
                                                         : pre.relu();
    EXPECT_TRUE(at::isnan(y[5]).all().item<bool>()) << static_cast<int>(a);
    const at::Tensor ok = at::cat({at::arange(0, 5), at::arange(6, rows)});
    const double err = (y.index_select(0, ok).to(at::kDouble) - want.index_select(0, ok)).abs().max().item<double>();
    EXPECT_LT(err, 1e-5) << static_cast<int>(a);  // A&S erf 1.5e-7 relative, float rounding
  }
}

// Int8Linear on this kernel and on oneDNN's (EMBEVAL_NO_AMX_INT8=1 at
// construction): the same bits, one row and many, float and bf16.
TEST(AmxS8Gemm, Int8LinearGivesOneDnnsBits) {
  if (!AmxS8Gemm::available() || !onednn_int8_gemm_is_exact()) GTEST_SKIP() << "needs both kernels";
  at::manual_seed(13);
  const int64_t in = 192, out = 96;
  at::Tensor wq = at::randint(-127, 128, {out, in}, at::kLong).to(at::kChar);
  at::Tensor sw = at::rand({out}) * 0.01 + 1e-3, b = at::randn({out}), smooth = at::rand({in}) + 0.5;
  Int8Linear amx(wq, sw, b, LinearActivation::none, smooth);
  setenv("EMBEVAL_NO_AMX_INT8", "1", 1);
  Int8Linear dnn(wq, sw, b, LinearActivation::none, smooth);
  unsetenv("EMBEVAL_NO_AMX_INT8");
  ASSERT_EQ(amx.implementation().rfind(AmxS8Gemm::uses_tiles() ? "amx:" : "avx512_vnni:", 0), 0u) << amx.implementation();
  ASSERT_EQ(dnn.implementation().rfind("onednn:", 0), 0u);
  for (int64_t rows : {1, 100, 700}) {
    at::Tensor x = at::randn({rows, in}) * 2;
    EXPECT_TRUE(amx(x).equal(dnn(x))) << rows;
    const at::Tensor x16 = x.to(at::kBFloat16);
    EXPECT_TRUE(amx(x16).equal(dnn(x16))) << rows;
  }
}

// The kernel's own activation step gives quantize_per_token's codes and
// scales exactly (that one is checked against SmoothQuant's torch ops in
// test_int8_linear.cpp): quotients by reciprocal and one FMA correction,
// smoothing factors in range by reciprocal, out of range by division.
TEST(AmxS8Gemm, QuantizeGivesQuantizePerTokensCodesAndScales) {
  if (!AmxS8Gemm::available()) GTEST_SKIP() << "no AMX int8 here";
  at::manual_seed(14);
  for (int64_t k : {7, 96, 100, 768}) {
    const int64_t rows = 1500;
    // Rows of every magnitude (1e-30 .. 1e30, many below the 1e-5 floor),
    // uniform and heavy-tailed values, an all-zero row, NaN and inf rows.
    at::Tensor x = at::randn({rows, k}) * at::pow(10.0, at::randint(-30, 31, {rows, 1}).to(at::kFloat));
    x.narrow(0, 0, 300) = at::randn({300, k}) * at::rand({300, 1}) * 1e-5;
    x.narrow(0, 300, 300) = (at::rand({300, k}) - 0.5) * 254;  // many quotients near half-integers
    x[700].zero_();
    x[701][k / 2] = NAN;
    x[702][0] = INFINITY;
    x[703][k - 1] = -INFINITY;
    const at::Tensor w = at::randint(-127, 128, {32, k}, at::kLong).to(at::kChar);
    for (int smooth_kind = 0; smooth_kind < 3; ++smooth_kind) {
      at::Tensor smooth = smooth_kind == 0   ? at::Tensor()
                          : smooth_kind == 1 ? at::pow(10.0, at::rand({k}) * 8 - 4)          // [1e-4, 1e4]: reciprocals
                                             : at::pow(10.0, at::rand({k}) * 20 - 10);       // outside [1e-8, 1e8]: division
      if (smooth_kind == 2) smooth[0] = 1e-9;
      AmxS8Gemm g(w, at::ones({32}), at::Tensor(), LinearActivation::none, smooth);
      for (bool bf16 : {false, true}) {
        const at::Tensor xin = bf16 ? x.to(at::kBFloat16) : x;
        auto [want_codes, want_scales] = quantize_per_token(xin, smooth);
        at::Tensor codes = at::zeros({AmxS8Gemm::rows_padded(rows), g.lda()}, at::kChar);
        at::Tensor scales = at::empty({rows}, at::kFloat);
        if (bf16)
          g.quantize(reinterpret_cast<const uint16_t*>(xin.data_ptr<at::BFloat16>()), rows, codes.data_ptr<int8_t>(),
                     scales.data_ptr<float>());
        else
          g.quantize(xin.data_ptr<float>(), rows, codes.data_ptr<int8_t>(), scales.data_ptr<float>());
        const at::Tensor got = codes.narrow(0, 0, rows).narrow(1, 0, k);
        EXPECT_EQ((got != want_codes).sum().item<int64_t>(), 0) << "k " << k << " smooth " << smooth_kind << " bf16 " << bf16;
        const at::Tensor finite = at::isfinite(want_scales);
        EXPECT_TRUE(at::isnan(scales).equal(at::isnan(want_scales))) << "k " << k << " smooth " << smooth_kind;
        EXPECT_TRUE(scales.masked_select(finite).equal(want_scales.masked_select(finite)))
            << "k " << k << " smooth " << smooth_kind << " bf16 " << bf16;
        EXPECT_TRUE(std::isnan(scales[701].item<float>()) && std::isnan(scales[702].item<float>()));
      }
    }
  }
}

// The kernel's GELU (avx512_math.h's rational erf) against float64 within
// the bound vec_math.h states for EMBEVAL_GELU_ERF: each row's one output is
// GELU(sx[r]) exactly (code 1 times weight 1, scale 1, no bias).
TEST(AmxS8Gemm, GeluWithinTheStatedBound) {
  if (!AmxS8Gemm::available()) GTEST_SKIP() << "no AMX int8 here";
  at::manual_seed(15);
  const at::Tensor x =
      at::cat({at::linspace(-12, 12, 2400001), at::randn({2003}) * 3, at::randn({7}) * 1e-3}).to(at::kFloat).contiguous();
  const int64_t rows = x.size(0);
  at::Tensor w = at::zeros({1, 64}, at::kChar);
  w[0][0] = 1;
  AmxS8Gemm g(w, at::ones({1}), at::Tensor(), LinearActivation::gelu_erf);
  at::Tensor codes = at::zeros({AmxS8Gemm::rows_padded(rows), g.lda()}, at::kChar);
  codes.select(1, 0).fill_(1);
  at::Tensor y = at::empty({rows, 1}, at::kFloat);
  g.run(codes.data_ptr<int8_t>(), rows, x.data_ptr<float>(), y.data_ptr<float>(), 1, 0, 1);
  const at::Tensor xd = x.to(at::kDouble);
  const at::Tensor want = 0.5 * xd * (1 + at::erf(xd / std::sqrt(2.0)));
  const at::Tensor err = (y.reshape({rows}).to(at::kDouble) - want).abs();
  const at::Tensor allowed = (0.5 * 1.5e-7 + 1e-7) * xd.abs() + 4 * std::ldexp(1.0, -24) * want.abs() + 1e-38;
  EXPECT_TRUE((err <= allowed).all().item<bool>())
      << "worst excess " << (err - allowed).max().item<double>() << " at x = " << x[(err - allowed).argmax()].item<float>();
  // NaN stays NaN, +inf gives +inf.
  const at::Tensor special = at::tensor({NAN, INFINITY}, at::kFloat);
  at::Tensor ys = at::empty({2, 1}, at::kFloat);
  g.run(codes.data_ptr<int8_t>(), 2, special.data_ptr<float>(), ys.data_ptr<float>(), 1, 0, 1);
  EXPECT_TRUE(std::isnan(ys[0][0].item<float>()));
  EXPECT_EQ(ys[1][0].item<float>(), INFINITY);
}
