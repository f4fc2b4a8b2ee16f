// GPTQ (runners/quant/gptq.h): with uncorrelated inputs (H diagonal) the
// error feedback has nothing to spread and GPTQ is round-to-nearest with its
// quantizer, exactly; with correlated inputs and outlier channels it beats
// round-to-nearest on the layer's output error, as the paper reports; act-
// order keeps its g_idx consistent; dead inputs and bad statistics are handled.
#include <cmath>
#include <string>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "harness/error.h"
#include "runners/quant/gptq.h"
#include "runners/quant/quantized_weight.h"

using namespace embeval;

namespace {

// GPTQ's quantizer applied without any error feedback (the expected result
// for a diagonal H), written out per row and group in float64.
at::Tensor rtn_codes_gptq_quantizer(const at::Tensor& w, int bits, int64_t gs) {
  const int64_t rows = w.size(0), cols = w.size(1), maxq = (1 << bits) - 1;
  at::Tensor codes = at::empty({rows, cols}, at::kLong);
  auto wa = w.accessor<double, 2>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g0 = 0; g0 < cols; g0 += gs) {
      double mn = 0, mx = 0;  // the range always includes 0
      for (int64_t c = g0; c < g0 + gs; ++c) mn = std::min(mn, wa[r][c]), mx = std::max(mx, wa[r][c]);
      const double s = round_to_fp16(at::tensor({(mx - mn) / maxq}, at::kDouble)).item<double>();
      const double z = std::nearbyint(-mn / s);
      for (int64_t c = g0; c < g0 + gs; ++c)
        codes[r][c] = static_cast<int64_t>(std::min<double>(maxq, std::max(0.0, std::nearbyint(wa[r][c] / s) + z)));
    }
  return codes;
}

// Inputs with correlated channels (16 directions shared by every draw) and
// two outlier channels; `seed` draws the samples.
at::Tensor correlated_inputs(int64_t n, int64_t in, uint64_t seed) {
  at::manual_seed(1000 + in);
  at::Tensor basis = at::randn({16, in}, at::kDouble);
  at::manual_seed(seed);
  at::Tensor x = at::mm(at::randn({n, 16}, at::kDouble), basis) + 0.1 * at::randn({n, in}, at::kDouble);
  x.select(1, 5).mul_(20);
  x.select(1, 17).mul_(10);
  return x;
}

double output_error(const at::Tensor& x, const at::Tensor& w, const at::Tensor& wq) {
  return at::mm(x, (w - wq).t()).pow(2).mean().item<double>();
}

}  // namespace

TEST(Gptq, DiagonalHessianIsRoundToNearest) {
  at::manual_seed(1);
  at::Tensor w = at::randn({24, 128}, at::kDouble) * 0.05;
  for (int64_t gs : {int64_t{0}, int64_t{32}}) {
    GptqOptions o;
    o.bits = 4;
    o.group_size = gs;
    o.block_size = 48;  // groups start mid-block too
    QuantizedWeight q = gptq_quantize(w, at::eye(128, at::kDouble) * 3.0, o, "l");
    EXPECT_TRUE(q.codes.to(at::kLong).equal(rtn_codes_gptq_quantizer(w, 4, gs > 0 ? gs : 128))) << gs;
  }
}

TEST(Gptq, BeatsRoundToNearestOnCorrelatedInputs) {
  const int64_t in = 128, out = 32;
  at::manual_seed(2);
  at::Tensor w = at::randn({out, in}, at::kDouble) * 0.05;
  at::Tensor x = correlated_inputs(512, in, 3), test = correlated_inputs(256, in, 4);
  at::Tensor h = at::mm(x.t(), x);
  for (bool act_order : {false, true}) {
    GptqOptions o;
    o.bits = 4;
    o.group_size = 32;
    o.act_order = act_order;
    QuantizedWeight g = gptq_quantize(w, h, o, "l");
    EXPECT_EQ(g.g_idx.defined(), act_order);
    QuantizedWeight r = quantize_rtn(w, 4, 32, false, "l");
    const double eg = output_error(test, w, g.dequantize().to(at::kDouble));
    const double er = output_error(test, w, r.dequantize().to(at::kDouble));
    EXPECT_LT(eg, 0.7 * er) << "act-order " << act_order << ": gptq " << eg << ", rtn " << er;
  }
}

TEST(Gptq, ActOrderGroupsFollowTheHessianDiagonal) {
  const int64_t in = 64;
  at::manual_seed(5);
  at::Tensor w = at::randn({8, in}, at::kDouble) * 0.05;
  at::Tensor x = correlated_inputs(256, in, 6);
  GptqOptions o;
  o.bits = 4;
  o.group_size = 16;
  o.act_order = true;
  QuantizedWeight g = gptq_quantize(w, at::mm(x.t(), x), o, "l");
  ASSERT_TRUE(g.g_idx.defined());
  // Channel 5 has the largest H_jj: first in the order, so group 0; every group holds 16 columns.
  EXPECT_EQ(g.g_idx[5].item<int>(), 0);
  EXPECT_TRUE(at::bincount(g.g_idx.to(at::kLong)).equal(at::full({4}, 16, at::kLong)));
  // The codes and g_idx describe a weight close to w (4 bits, groups of 16).
  EXPECT_LT((g.dequantize().to(at::kDouble) - w).abs().max().item<double>(), 0.05);
}

TEST(Gptq, DeadInputsAndBadStatistics) {
  at::manual_seed(7);
  at::Tensor w = at::randn({8, 32}, at::kDouble);
  at::Tensor x = at::randn({64, 32}, at::kDouble);
  x.select(1, 3).zero_();  // never active: dead
  GptqOptions o;
  o.group_size = 16;
  QuantizedWeight q = gptq_quantize(w, at::mm(x.t(), x), o, "l");
  EXPECT_TRUE((q.dequantize().select(1, 3) == 0).all().item<bool>());
  EXPECT_THROW(gptq_quantize(w, at::eye(16, at::kDouble), o, "enc.q"), UserError);
  at::Tensor bad = at::eye(32, at::kDouble);
  bad[2][2] = NAN;
  try {
    gptq_quantize(w, bad, o, "enc.q.weight");
    ADD_FAILURE();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("enc.q.weight: the calibration statistics have NaN"), std::string::npos);
  }
}
