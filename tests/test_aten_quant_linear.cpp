// The ATen quantized Linears (runners/kernels/aten_quant_linear.h), which
// CUDA models run, checked here on the CPU (the same ATen operators):
// - AtenWeightOnlyLinear's per-call weight is exactly scale * (code - zero)
//   (divided by the input divisor) in fp32, and that rounded once in bf16 /
//   fp16, for int4 (packed two to a byte) and int8, contiguous and act-order
//   groups, an odd width left unpacked; its product matches float64;
// - aten_quantize_per_token gives Int8Linear's codes and scales bit for bit
//   (the CPU kernel is itself tested against SmoothQuant's formula), and
//   AtenInt8Linear's output matches a float64 product of those integers;
// - both agree with the CPU kernels to within their float rounding.
#include <cmath>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "runners/kernels/aten_quant_linear.h"
#include "runners/kernels/int8_linear.h"
#include "runners/kernels/weight_only_linear.h"
#include "weight_parts.h"

using namespace embeval;
using namespace embeval::test;

namespace {

const c10::Device cpu(c10::kCPU);

}  // namespace

TEST(AtenWeightOnlyLinear, PerCallWeightIsExactForEveryLayoutAndDtype) {
  struct Case {
    int bits;
    int64_t in, group;
    bool act_order, divisor;
  };
  // in = 96 with groups of 32 straddles the halves a nibble pair spans; in =
  // 45 cannot be packed two to a byte; out = 40 rows run in several blocks
  // only for the wide case (block_rows = 2^20 / in), so a 3000-wide layer is
  // added to cross a block boundary.
  for (Case c : {Case{4, 96, 32, false, false}, Case{4, 96, 0, false, true}, Case{8, 96, 32, false, false},
                 Case{8, 96, 0, false, true}, Case{4, 96, 16, true, false}, Case{8, 96, 16, true, true},
                 Case{4, 45, 0, false, false}, Case{4, 3000, 100, false, true}}) {
    const int64_t out = c.in == 3000 ? 400 : 40;
    WeightParts p = random_weight_parts(out, c.in, c.bits, c.group, c.act_order, 30 + c.bits + c.in);
    const at::Tensor d = c.divisor ? at::rand({c.in}) + 0.5 : at::Tensor();
    at::Tensor want = reference_weight(p, c.in, c.group);
    if (d.defined()) want = want / d.unsqueeze(0);
    for (at::ScalarType t : {at::kFloat, at::kBFloat16, at::kHalf}) {
      AtenWeightOnlyLinear layer(p.codes, c.bits, p.scales, p.zeros, c.group, p.g_idx, at::Tensor(),
                                 LinearActivation::none, d, t, cpu);
      const at::Tensor w = layer.dequantized_weight();
      EXPECT_EQ(w.scalar_type(), t);
      EXPECT_TRUE(w.equal(want.to(t))) << c.bits << " bits, in " << c.in << ", group " << c.group
                                       << (c.act_order ? ", act-order" : "") << ", " << c10::toString(t);
    }
  }
}

TEST(AtenWeightOnlyLinear, MatchesFloat64AndTheCpuKernel) {
  const int64_t out = 48, in = 128, group = 32;
  WeightParts p = random_weight_parts(out, in, 4, group, false, 7);
  const at::Tensor bias = at::randn({out}) * 0.1;
  at::manual_seed(8);
  const at::Tensor x = at::randn({3, 5, in});
  const at::Tensor w64 = reference_weight(p, in, group).to(at::kDouble);
  for (LinearActivation act : {LinearActivation::none, LinearActivation::gelu_erf}) {
    AtenWeightOnlyLinear aten(p.codes, 4, p.scales, p.zeros, group, p.g_idx, bias, act, at::Tensor(), at::kFloat, cpu);
    WeightOnlyLinear native(p.codes, 4, p.scales, p.zeros, group, p.g_idx, bias, act);
    at::Tensor want = at::linear(x.to(at::kDouble), w64, bias.to(at::kDouble));
    if (act == LinearActivation::gelu_erf) want = at::gelu(want);
    const at::Tensor got = aten(x);
    EXPECT_EQ(got.sizes(), (std::vector<int64_t>{3, 5, out}));
    EXPECT_LT(rel_err(got, want), 1e-5);
    EXPECT_LT(rel_err(got, native(x)), 1e-5);
    // bf16 in and out: the bf16 weight's product, within bf16's rounding of the result.
    const at::Tensor got_bf16 = AtenWeightOnlyLinear(p.codes, 4, p.scales, p.zeros, group, p.g_idx, bias, act,
                                                     at::Tensor(), at::kBFloat16, cpu)(x.to(at::kBFloat16));
    EXPECT_EQ(got_bf16.scalar_type(), at::kBFloat16);
    EXPECT_LT(rel_err(got_bf16, want), 2e-2);
  }
}

TEST(AtenWeightOnlyLinear, HoldsThePackedBytes) {
  WeightParts p = random_weight_parts(64, 256, 4, 128, false, 3);
  AtenWeightOnlyLinear l4(p.codes, 4, p.scales, p.zeros, 128, p.g_idx, at::Tensor(), LinearActivation::none,
                          at::Tensor(), at::kHalf, cpu);
  // int4 codes two to a byte (8192), float scales and zeros for 64 x 2 groups (512 each).
  EXPECT_EQ(l4.weight_bytes(), 64 * 256 / 2 + 2 * 64 * 2 * 4);
  EXPECT_LE(l4.weight_bytes(), 0.16 * 64 * 256 * 4);
  // int8 with act-order groups and a divisor: codes a byte each, g_idx int64, divisor float.
  WeightParts q = random_weight_parts(64, 256, 8, 128, true, 4);
  AtenWeightOnlyLinear l8(q.codes, 8, q.scales, q.zeros, 128, q.g_idx, at::Tensor(), LinearActivation::none,
                          at::ones({256}), at::kFloat, cpu);
  EXPECT_EQ(l8.weight_bytes(), 64 * 256 + 2 * 64 * 2 * 4 + 256 * 8 + 256 * 4);
}

TEST(AtenInt8Linear, PerTokenCodesAreInt8LinearsBitForBit) {
  at::manual_seed(11);
  at::Tensor x = at::randn({37, 200}) * at::rand({1, 200}) * 10;
  x[3].zero_();  // an all-zero row: scale 1e-5 / 127, codes zero
  const at::Tensor smooth = at::rand({200}) + 0.25;
  for (const at::Tensor& s : {at::Tensor(), smooth})
    for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
      const at::Tensor xt = x.to(t);
      auto [codes, scales] = aten_quantize_per_token(xt, s);
      auto [want_codes, want_scales] = quantize_per_token(xt, s);
      EXPECT_TRUE(codes.equal(want_codes)) << c10::toString(t) << (s.defined() ? ", smoothed" : "");
      EXPECT_TRUE(scales.equal(want_scales)) << c10::toString(t) << (s.defined() ? ", smoothed" : "");
    }
}

TEST(AtenInt8Linear, MatchesFloat64OfItsIntegersAndTheCpuKernel) {
  const int64_t out = 40, in = 64;
  at::manual_seed(12);
  const at::Tensor w = at::randint(-127, 128, {out, in}, at::kLong).to(at::kChar);
  const at::Tensor sw = at::rand({out}) * 0.01 + 1e-3;
  const at::Tensor bias = at::randn({out});
  const at::Tensor smooth = at::rand({in}) + 0.5;
  const at::Tensor x = at::randn({2, 9, in});
  for (LinearActivation act : {LinearActivation::none, LinearActivation::gelu_erf, LinearActivation::relu}) {
    // float64 of the integers the input's codes and the weight make, the epilogue in float64.
    const auto reference = [&](const at::Tensor& input) {
      auto [codes, sx] = quantize_per_token(input.reshape({-1, in}).to(at::kFloat), smooth);
      at::Tensor r = at::mm(codes.to(at::kDouble), w.to(at::kDouble).t()) * sw.to(at::kDouble) *
                         sx.to(at::kDouble).unsqueeze(1) +
                     bias.to(at::kDouble);
      if (act == LinearActivation::gelu_erf) r = at::gelu(r);
      if (act == LinearActivation::relu) r = r.relu();
      return r;
    };
    AtenInt8Linear aten(w, sw, bias, act, smooth, at::kFloat, cpu);
    Int8Linear native(w, sw, bias, act, smooth);
    const at::Tensor got = aten(x);
    EXPECT_EQ(got.sizes(), (std::vector<int64_t>{2, 9, out}));
    EXPECT_LT(rel_err(got.reshape({-1, out}), reference(x)), 1e-6);
    EXPECT_LT(rel_err(got, native(x)), 1e-5);
    // fp16 in and out: the fp16 input's integers, the result rounded once to fp16 (2^-11 relative).
    const at::Tensor xh = x.to(at::kHalf);
    const at::Tensor half = AtenInt8Linear(w, sw, bias, act, smooth, at::kHalf, cpu)(xh);
    EXPECT_EQ(half.scalar_type(), at::kHalf);
    EXPECT_LT(rel_err(half.reshape({-1, out}), reference(xh)), 5e-4);
  }
  // No _int_mm on the CPU: the implementation says which GEMM ran and why.
  EXPECT_NE(AtenInt8Linear(w, sw, bias, LinearActivation::none, smooth, at::kFloat, cpu).implementation().find(
                "fp32 GEMM"),
            std::string::npos);
  EXPECT_FALSE(AtenInt8Linear::int_mm_available(cpu));
}

TEST(AtenInt8Linear, NanRowGivesNanOutputOthersUntouched) {
  const int64_t out = 16, in = 32;
  at::manual_seed(13);
  const at::Tensor w = at::randint(-127, 128, {out, in}, at::kLong).to(at::kChar);
  AtenInt8Linear layer(w, at::rand({out}) * 0.01, at::Tensor(), LinearActivation::none, at::Tensor(), at::kFloat, cpu);
  at::Tensor x = at::randn({4, in});
  const at::Tensor clean = layer(x);
  x[2][5] = NAN;
  const at::Tensor got = layer(x);
  EXPECT_TRUE(at::isnan(got[2]).all().item<bool>());
  EXPECT_TRUE(got.index_select(0, at::tensor({0, 1, 3})).equal(clean.index_select(0, at::tensor({0, 1, 3}))));
}
