// blocked_bert_layer (runners/bert/bert_layer_blocks.h): one BERT layer a
// block of texts at a time on each thread gives the bits of the layer's
// steps called one after another over the whole batch.
#include <cmath>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include "runners/bert/bert_layer_blocks.h"
#include "runners/kernels/cpu_attention.h"
#include "runners/kernels/layer_norm.h"
#include "runners/kernels/packed_linear.h"

namespace embeval {
namespace {

PackedLinear bf16_linear(int64_t out, int64_t in, LinearActivation act) {
  return PackedLinear((at::randn({out, in}) / std::sqrt(static_cast<double>(in))).to(at::kBFloat16),
                      at::randn({out}).div_(4).to(at::kBFloat16), act);
}

// The attention over a whole batch by the bf16 kernel itself.
at::Tensor attention(const at::Tensor& qkv, const at::Tensor& mask, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), h = qkv.size(2) / 3;
  at::Tensor ctx = at::empty({b, t, h}, at::kBFloat16);
  const at::Tensor m = mask.to(at::kFloat).reshape({b, t}).contiguous();
  EXPECT_TRUE(bf16_attention(reinterpret_cast<const uint16_t*>(qkv.data_ptr<at::BFloat16>()), m.data_ptr<float>(), b,
                             t, heads, h / heads, reinterpret_cast<uint16_t*>(ctx.data_ptr<at::BFloat16>())));
  return ctx;
}

// Texts padded to different lengths (one with a single token): 9 texts of
// 128 in blocks of 2 (a last block of one text), 50 of 40 in blocks of 6
// (240 rows; a last block of 2 texts).
TEST(BertLayerBlocks, GivesTheStepByStepBits) {
  if (bf16_attention_products() == Bf16AttentionProducts::none) GTEST_SKIP() << "no bf16 attention kernel on this CPU";
  at::manual_seed(21);
  const int64_t heads = 4, d = 32, h = heads * d, ffn = 4 * h;
  const PackedLinear qkv = bf16_linear(3 * h, h, LinearActivation::none), attn_out = bf16_linear(h, h, LinearActivation::none),
                     ffn_in = bf16_linear(ffn, h, LinearActivation::gelu_erf),
                     ffn_out = bf16_linear(h, ffn, LinearActivation::none);
  if (!qkv.runs_rows()) GTEST_SKIP() << "no AMX bf16 GEMM for the Linear layers here";
  const at::Tensor w1 = (1 + at::randn({h}) / 10).to(at::kBFloat16), b1 = (at::randn({h}) / 10).to(at::kBFloat16),
                   w2 = (1 + at::randn({h}) / 10).to(at::kBFloat16), b2 = (at::randn({h}) / 10).to(at::kBFloat16);
  const double eps = 1e-12;
  const LayerBlockParts parts{qkv, attn_out, ffn_in, ffn_out, w1, b1, w2, b2, eps, heads, ffn};
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  for (const auto& [b, t] : {std::pair<int64_t, int64_t>{9, 128}, {50, 40}}) {
    SCOPED_TRACE(testing::Message() << b << " texts of " << t);
    const at::Tensor x = at::randn({b, t, h}).to(at::kBFloat16);
    at::Tensor keep = at::ones({b, t});
    for (int64_t r = 1; r < b; ++r) keep[r].narrow(0, 1 + (r * 7) % (t - 1), t - 1 - (r * 7) % (t - 1)).zero_();
    keep[b - 1].narrow(0, 1, t - 1).zero_();  // one token
    const at::Tensor mask = (1.0 - keep).mul_(-3.3895313892515355e38).view({b, 1, 1, t}).to(at::kBFloat16);
    c10::InferenceMode inference;  // as the model runs it: the worker threads are not in it
    const at::Tensor got = blocked_bert_layer(parts, x, mask);
    ASSERT_TRUE(got.defined());
    const at::Tensor y = add_layer_norm(attn_out(attention(qkv(x), mask, heads)), x, w1, b1, eps);
    const at::Tensor want = add_layer_norm(ffn_out(ffn_in(y)), y, w2, b2, eps);
    EXPECT_TRUE(at::equal(got, want)) << "max difference " << (got.to(at::kFloat) - want.to(at::kFloat)).abs().max().item<float>();
    // Fewer than two blocks a thread, or switched off: not run.
    EXPECT_FALSE(blocked_bert_layer(parts, x.narrow(0, 0, 2), mask.narrow(0, 0, 2)).defined());
    setenv("EMBEVAL_NO_LAYER_BLOCKS", "1", 1);
    EXPECT_FALSE(blocked_bert_layer(parts, x, mask).defined());
    unsetenv("EMBEVAL_NO_LAYER_BLOCKS");
  }
  at::set_num_threads(threads);
}

// A Linear with no single-thread row form says so, and calling it anyway
// is an error, not a silent no-op; the layer then runs step by step.
TEST(BertLayerBlocks, NeedsEveryLinearsRowForm) {
  at::manual_seed(22);
  const int64_t heads = 2, h = 64, ffn = 128;
  const PackedLinear fp32_layer(at::randn({h, h}), at::randn({h}), LinearActivation::none);
  EXPECT_FALSE(fp32_layer.runs_rows());
  uint16_t x[64] = {}, y[64] = {};
  try {
    fp32_layer.run_rows(x, 1, y);
    ADD_FAILURE() << "no error from run_rows on " << fp32_layer.implementation();
  } catch (const std::exception& e) {
    EXPECT_EQ(std::string(e.what()), "Linear::run_rows: " + fp32_layer.implementation() +
                                         " has no single-thread row form (check runs_rows() first)");
  }
  const PackedLinear qkv = bf16_linear(3 * h, h, LinearActivation::none), out = bf16_linear(h, h, LinearActivation::none),
                     in = bf16_linear(ffn, h, LinearActivation::gelu_erf);
  const at::Tensor w = at::ones({h}, at::kBFloat16), b = at::zeros({h}, at::kBFloat16);
  const LayerBlockParts parts{qkv, out, in, fp32_layer, w, b, w, b, 1e-12, heads, ffn};
  const at::Tensor xs = at::randn({8, 128, h}).to(at::kBFloat16), mask = at::zeros({8, 1, 1, 128}, at::kBFloat16);
  EXPECT_FALSE(blocked_bert_layer(parts, xs, mask).defined());
}

}  // namespace
}  // namespace embeval
