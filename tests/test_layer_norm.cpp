// runners/kernels/layer_norm.h against a float64 reference written here from
// the definition: v = x + residual, y = (v - mean(v)) / sqrt(var(v) + eps) *
// w + b, variance biased (divided by h), per row.
// bf16 tolerance: the result is rounded to bf16 once (relative error <= 2^-8)
// after fp32 arithmetic (relative ~1e-6 on O(1) outputs): |y - ref| <=
// 2^-8 |ref| + 1e-4.
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "runners/kernels/layer_norm.h"

using namespace embeval;

namespace {

at::Tensor reference(const at::Tensor& x, const at::Tensor& r, const at::Tensor& w, const at::Tensor& b, double eps) {
  const int64_t h = x.size(-1);
  at::Tensor v = (x.to(at::kDouble) + r.to(at::kDouble)).reshape({-1, h});
  at::Tensor wd = w.to(at::kDouble), bd = b.to(at::kDouble);
  at::Tensor y = at::empty_like(v);
  auto V = v.accessor<double, 2>();
  auto Y = y.accessor<double, 2>();
  for (int64_t row = 0; row < v.size(0); ++row) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < h; ++i) mean += V[row][i];
    mean /= double(h);
    for (int64_t i = 0; i < h; ++i) var += (V[row][i] - mean) * (V[row][i] - mean);
    var /= double(h);
    for (int64_t i = 0; i < h; ++i)
      Y[row][i] = (V[row][i] - mean) / std::sqrt(var + eps) * wd[i].item<double>() + bd[i].item<double>();
  }
  return y.view(x.sizes());
}

}  // namespace

TEST(AddLayerNorm, Bf16IsTheFloat64ReferenceRoundedOnce) {
  at::manual_seed(11);
  // Both forms where the CPU has the AVX512-BF16 one (widths a multiple of
  // 16; EMBEVAL_NO_AVX512_LAYER_NORM=1 the other): 768; 80 (a block of 64,
  // 16 left); 48 (16s only); 100 (a block of 64 and a tail); 13 (only a
  // tail); 1 (variance 0).
  for (const char* off : {"0", "1"}) {
    setenv("EMBEVAL_NO_AVX512_LAYER_NORM", off, 1);
    for (int64_t h : {768, 80, 48, 100, 13, 1}) {
      at::Tensor x = (at::randn({3, 5, h}) * 2 + 0.5).to(at::kBFloat16);
      at::Tensor r = at::randn({3, 5, h}).to(at::kBFloat16);
      at::Tensor w = (at::rand({h}) + 0.5).to(at::kBFloat16), b = at::randn({h}).to(at::kBFloat16);
      const at::Tensor want = reference(x, r, w, b, 1e-12);
      at::Tensor y = add_layer_norm(x.clone(), r, w, b, 1e-12);
      ASSERT_EQ(y.scalar_type(), at::kBFloat16);
      ASSERT_EQ(y.sizes(), x.sizes());
      const at::Tensor err = (y.to(at::kDouble) - want).abs() - (want.abs() * std::ldexp(1.0, -8) + 1e-4);
      EXPECT_LE(err.max().item<double>(), 0.0) << "h " << h << " EMBEVAL_NO_AVX512_LAYER_NORM=" << off;
    }
    unsetenv("EMBEVAL_NO_AVX512_LAYER_NORM");
  }
}

TEST(AddLayerNorm, Bf16WritesOverXLeavesTheResidualAndPropagatesNan) {
  for (const char* off : {"0", "1"}) {  // both forms (see above)
    setenv("EMBEVAL_NO_AVX512_LAYER_NORM", off, 1);
    at::manual_seed(12);
    at::Tensor x = at::randn({4, 64}).to(at::kBFloat16), r = at::randn({4, 64}).to(at::kBFloat16);
    at::Tensor w = at::ones({64}, at::kBFloat16), b = at::zeros({64}, at::kBFloat16);
    const at::Tensor r0 = r.clone();
    x[2][5] = std::numeric_limits<float>::quiet_NaN();
    const at::Tensor want = add_layer_norm(x.clone(), r, w, b, 1e-12);
    at::Tensor y = add_layer_norm(x, r, w, b, 1e-12);
    EXPECT_EQ(y.data_ptr(), x.data_ptr());  // in place, as the header allows
    EXPECT_TRUE(y.narrow(0, 0, 2).equal(want.narrow(0, 0, 2)) && y[3].equal(want[3]));  // row 2 is NaN
    EXPECT_TRUE(at::isnan(y[2]).all().item<bool>());  // NaN in, NaN out for its row ...
    EXPECT_FALSE(at::isnan(y[0]).any().item<bool>());  // ... and only its row
    EXPECT_TRUE(r.equal(r0));
    // The residual may be x itself: each row is read whole before it is written.
    at::Tensor z = at::randn({4, 64}).to(at::kBFloat16);
    const at::Tensor twice = add_layer_norm(z.clone(), z.clone(), w, b, 1e-12);
    EXPECT_TRUE(add_layer_norm(z, z, w, b, 1e-12).equal(twice));
    unsetenv("EMBEVAL_NO_AVX512_LAYER_NORM");
  }
}

TEST(AddLayerNorm, OtherDtypesAreAtensOwn) {
  at::manual_seed(13);
  at::Tensor x = at::randn({6, 40}), r = at::randn({6, 40}), w = at::rand({40}), b = at::randn({40});
  const at::Tensor want = at::layer_norm(x + r, {40}, w, b, 1e-5);
  EXPECT_TRUE(add_layer_norm(x.clone(), r, w, b, 1e-5).equal(want));  // bit for bit: the same ATen calls
  EXPECT_LT((add_layer_norm(x.clone(), r, w, b, 1e-5).to(at::kDouble) - reference(x, r, w, b, 1e-5)).abs().max().item<double>(),
            1e-5);
  // Non-contiguous bf16 input falls back to ATen too and still normalises.
  at::Tensor xt = at::randn({40, 6}).to(at::kBFloat16).t(), rt = at::randn({6, 40}).to(at::kBFloat16);
  const at::Tensor wb = w.to(at::kBFloat16), bb = b.to(at::kBFloat16);
  EXPECT_LT((add_layer_norm(xt.clone(), rt, wb, bb, 1e-5).to(at::kDouble) - reference(xt, rt, wb, bb, 1e-5))
                .abs()
                .max()
                .item<double>(),
            0.1);
}

// The embeddings' gather + add + LayerNorm in one pass: the bits of ATen's
// three steps (at::embedding, the bf16 add_, add_layer_norm) on both
// LayerNorm forms, rows of any id and position; an id or position outside
// its table is a one-line error naming where it is.
TEST(EmbedLayerNorm, GivesTheBitsOfTheThreeSteps) {
  at::manual_seed(14);
  for (const char* off : {"0", "1"}) {
    setenv("EMBEVAL_NO_AVX512_LAYER_NORM", off, 1);
    for (int64_t h : {768, 48, 13}) {
      const at::Tensor word = at::randn({50, h}).to(at::kBFloat16), pos = at::randn({20, h}).to(at::kBFloat16);
      const at::Tensor type = (at::randn({h}) * 0.1).to(at::kBFloat16);
      const at::Tensor w = (at::rand({h}) + 0.5).to(at::kBFloat16), b = at::randn({h}).to(at::kBFloat16);
      const at::Tensor ids = at::randint(0, 50, {3, 17}, at::kLong), positions = at::randint(0, 20, {3, 17}, at::kLong);
      const at::Tensor got = embed_layer_norm(word, type, pos, ids, positions, w, b, 1e-12);
      ASSERT_TRUE(got.defined());
      const at::Tensor want =
          add_layer_norm(at::embedding(pos, positions), at::embedding(word, ids).add_(type), w, b, 1e-12);
      EXPECT_TRUE(at::equal(got, want)) << "h " << h << " EMBEVAL_NO_AVX512_LAYER_NORM=" << off;
    }
    unsetenv("EMBEVAL_NO_AVX512_LAYER_NORM");
  }
  const at::Tensor word = at::randn({50, 16}).to(at::kBFloat16), pos = at::randn({20, 16}).to(at::kBFloat16);
  const at::Tensor type = at::zeros({16}, at::kBFloat16), w = at::ones({16}), b = at::zeros({16});
  at::Tensor ids = at::zeros({2, 5}, at::kLong), positions = at::zeros({2, 5}, at::kLong);
  auto error = [&] {  // the call's error message ("" where it ran)
    try {
      embed_layer_norm(word, type, pos, ids, positions, w, b, 1e-12);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  ids[1][3] = 50;
  EXPECT_NE(error().find("token id 50 at [1, 3] is outside the vocabulary [0, 50)"), std::string::npos) << error();
  ids[1][3] = 0;
  positions[0][2] = 20;
  EXPECT_NE(error().find("position 20 at [0, 2] is outside the model's 20 positions"), std::string::npos) << error();
  positions[0][2] = 19;
  EXPECT_EQ(error(), "");
  // A LayerNorm whose weight does not match the rows: a one-line error, on
  // the embeddings' path and on add_layer_norm's, not a read past the weights.
  const at::Tensor short_w = at::ones({8});
  try {
    embed_layer_norm(word, type, pos, ids, positions, short_w, b, 1e-12);
    ADD_FAILURE() << "no error for an 8-value weight on 16-wide rows";
  } catch (const std::exception& e) {
    EXPECT_STREQ(e.what(), "LayerNorm: weight has 8 and bias 16 values for rows 16 wide");
  }
  const at::Tensor rows = at::randn({4, 16}).to(at::kBFloat16);
  EXPECT_THROW(add_layer_norm(rows.clone(), rows, w, short_w, 1e-12), std::exception);
  // fp32 is not its case: undefined (the caller runs ATen's steps).
  EXPECT_FALSE(embed_layer_norm(word.to(at::kFloat), type, pos, ids, positions, w, b, 1e-12).defined());
}
