// The encoder's CPU kernels (runners/kernels/packed_linear.h, runners/kernels/attention.h,
// runners/kernels/cpu_attention.h)
// against float64 references computed here with plain loops from the
// definitions: y = act(x W^T + b) with GELU(x) = x/2 (1 + erf(x/sqrt 2)) or
// its tanh form; attention = softmax(q k^T / sqrt(d) + mask) v per head.
// Tolerances: fp32 1e-4 absolute on O(1) outputs (K <= 96 terms, float
// rounding ~1e-6 each); bf16 3e-2 (inputs rounded to 8 significant bits).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/version.h>

#include "harness/system_info.h"
#include "runners/kernels/attention.h"
#include "runners/kernels/cpu_attention.h"
#include "runners/kernels/int8_linear.h"
#include "runners/kernels/packed_linear.h"
#include "runners/torch_runtime.h"

using namespace embeval;

namespace {

double act(double v, LinearActivation a) {
  switch (a) {
    case LinearActivation::none: return v;
    case LinearActivation::relu: return v > 0 ? v : 0;
    case LinearActivation::gelu_erf: return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    case LinearActivation::gelu_tanh:
      return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  }
  return v;
}

// x [rows, in], w [out, in], b [out] (float64, CPU) -> [rows, out].
std::vector<double> linear_reference(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, LinearActivation a) {
  const int64_t rows = x.size(0), in = x.size(1), out = w.size(0);
  auto X = x.accessor<double, 2>();
  auto W = w.accessor<double, 2>();
  std::vector<double> y(rows * out);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = b.defined() ? b[o].item<double>() : 0.0;
      for (int64_t i = 0; i < in; ++i) s += X[r][i] * W[o][i];
      y[r * out + o] = act(s, a);
    }
  return y;
}

double max_diff(const at::Tensor& got, const std::vector<double>& want) {
  at::Tensor g = got.to(at::kDouble).contiguous().view({-1});
  EXPECT_EQ(g.numel(), static_cast<int64_t>(want.size()));
  double worst = 0;
  auto G = g.accessor<double, 1>();
  for (int64_t i = 0; i < g.numel(); ++i) worst = std::max(worst, std::abs(G[i] - want[i]));
  return worst;
}

}  // namespace

TEST(PackedLinear, MatchesFloat64ReferenceForEveryActivationAndRowCount) {
  at::manual_seed(3);
  const int64_t in = 96, out = 40;
  // Rounded to the kernel dtype first so both sides multiply the same numbers.
  for (at::ScalarType type : {at::kFloat, at::kBFloat16}) {
    at::Tensor w = (at::randn({out, in}, at::kDouble) / std::sqrt(double(in))).to(type);
    at::Tensor b = at::randn({out}, at::kDouble).to(type);
    const double tol = type == at::kFloat ? 1e-4 : 3e-2;
    for (LinearActivation a : {LinearActivation::none, LinearActivation::gelu_erf, LinearActivation::gelu_tanh,
                               LinearActivation::relu}) {
      PackedLinear layer(w, b, a);
      // fp32 always has a oneDNN kernel; bf16 only where the CPU has bf16
      // instructions (AVX512_BF16, AMX) or AVX-512 to emulate them: on an
      // AVX2-only CPU oneDNN offers only its reference kernel and the layer
      // runs at::linear instead. The numbers must match either way.
      if (PackedLinear::have_onednn() && type == at::kFloat) {
        EXPECT_EQ(layer.implementation().rfind("onednn:", 0), 0u) << layer.implementation();
      }
      for (int64_t rows : {1, 7, 64, 203, 512, 7}) {  // 512: the probe's primitive; 7 again: a cached one
        at::Tensor x = at::randn({rows, in}, at::kDouble).to(type);
        at::Tensor y = layer(x);
        ASSERT_EQ(y.scalar_type(), type);
        ASSERT_EQ(y.sizes(), (std::vector<int64_t>{rows, out}));
        EXPECT_LT(max_diff(y, linear_reference(x.to(at::kDouble), w.to(at::kDouble), b.to(at::kDouble), a)), tol)
            << "dtype " << at::toString(type) << " activation " << static_cast<int>(a) << " rows " << rows;
      }
    }
  }
}

TEST(PackedLinear, KeepsLeadingDimensionsAndTakesStridedInput) {
  at::manual_seed(4);
  at::Tensor w = at::randn({12, 8}), b = at::randn({12});
  PackedLinear layer(w, b, LinearActivation::none);
  at::Tensor x = at::randn({3, 5, 16}).narrow(2, 4, 8);  // not contiguous
  ASSERT_FALSE(x.is_contiguous());
  at::Tensor y = layer(x);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 5, 12}));
  std::vector<double> want = linear_reference(x.reshape({15, 8}).to(at::kDouble), w.to(at::kDouble),
                                              b.to(at::kDouble), LinearActivation::none);
  EXPECT_LT(max_diff(y, want), 1e-5);
  EXPECT_EQ(layer(at::empty({0, 8})).sizes(), (std::vector<int64_t>{0, 12}));
}

TEST(PackedLinear, WithoutBiasAndWrongWidthIsAnError) {
  at::Tensor w = at::randn({4, 6});
  PackedLinear layer(w, at::Tensor(), LinearActivation::none);
  at::Tensor x = at::randn({2, 6});
  EXPECT_LT(max_diff(layer(x), linear_reference(x.to(at::kDouble), w.to(at::kDouble), at::Tensor(),
                                                LinearActivation::none)),
            1e-5);
  EXPECT_ANY_THROW(layer(at::randn({2, 5})));
  if (PackedLinear::have_onednn()) {
    EXPECT_ANY_THROW(layer(at::randn({2, 6}).to(at::kBFloat16)));  // packed for fp32
  }
}

// A bf16 layer with more than 1024 inputs on AMX: embeval's kernel
// (amx_bf16_gemm.h) sums all of K in its tiles; oneDNN's form
// (EMBEVAL_NO_AMX_BF16_GEMM=1) multiplies slices of the inputs and sums the
// products in fp32 (onednn_util.h's SLICE_ABOVE), rounding once. Both within
// half a bf16 step of the float64 product (|y| 2^-8), plus fp32 summation
// error (~K 2^-24 |x||w| terms: 1e-3 here), for slices that are multiples
// of 64 wide (3072) and not (1100: 512 + 588), with GELU on the output.
TEST(PackedLinear, Bf16WideInputsMatchFloat64) {
  for (const char* no_own : {"0", "1"}) {
    setenv("EMBEVAL_NO_AMX_BF16_GEMM", no_own, 1);
    at::manual_seed(5);
    const std::string kernel =
        PackedLinear(at::randn({64, 96}).to(at::kBFloat16), at::Tensor(), LinearActivation::none).implementation();
    // oneDNN's AMX kernel with EMBEVAL_NO_AMX_BF16_GEMM=1, or where embeval's is unavailable.
    const bool onednn_amx = kernel.rfind("onednn:", 0) == 0 && kernel.find("amx") != std::string::npos;
    for (int64_t in : {3072, 1100}) {
      const int64_t out = 40;
      at::Tensor w = (at::randn({out, in}, at::kDouble) / std::sqrt(double(in))).to(at::kBFloat16);
      at::Tensor b = at::randn({out}, at::kDouble).to(at::kBFloat16);
      for (LinearActivation a : {LinearActivation::none, LinearActivation::gelu_erf}) {
        PackedLinear layer(w, b, a);
        if (onednn_amx) {
          EXPECT_NE(layer.implementation().find("slices"), std::string::npos) << layer.implementation();
        }
        for (int64_t rows : {1, 7, 64, 203, 512}) {
          at::Tensor x = at::randn({rows, in}, at::kDouble).to(at::kBFloat16);
          at::Tensor y = layer(x);
          ASSERT_EQ(y.scalar_type(), at::kBFloat16);
          const std::vector<double> want =
              linear_reference(x.to(at::kDouble), w.to(at::kDouble), b.to(at::kDouble), a);
          at::Tensor g = y.to(at::kDouble).view({-1});
          double worst = 0;
          for (int64_t i = 0; i < g.numel(); ++i)
            worst = std::max(worst, std::abs(g[i].item<double>() - want[i]) - std::abs(want[i]) * std::ldexp(1.0, -8));
          EXPECT_LT(worst, 1e-3) << layer.implementation() << ": in " << in << " activation "
                                 << static_cast<int>(a) << " rows " << rows;
        }
      }
    }
  }
  unsetenv("EMBEVAL_NO_AMX_BF16_GEMM");
}

// BERT's FFN in bf16 on AMX or AVX512-BF16 (fused_with): the same bits as the two calls,
// which check against float64 above and in the tests before. On embeval's
// kernel (amx_bf16_gemm.h) the middle is one [rows, 3072] block; on
// oneDNN's (EMBEVAL_NO_AMX_BF16_GEMM=1) the first layer writes its 3072
// outputs slice by slice and the second multiplies them there. From 4
// blocks of 256 rows a thread on (2 x 700 and 2 x 1024 rows here with 2
// threads; 2 x 700 ends in a block of 120), each thread takes its own
// blocks through both layers: the same bits again.
TEST(PackedLinear, Bf16FusedFfnGivesTheTwoCallsBits) {
  for (const char* no_own : {"0", "1"}) {
    setenv("EMBEVAL_NO_AMX_BF16_GEMM", no_own, 1);
    at::manual_seed(6);
    const int64_t hidden = 96, mid = 3072;
    at::Tensor w1 = (at::randn({mid, hidden}) / std::sqrt(double(hidden))).to(at::kBFloat16);
    at::Tensor w2 = (at::randn({hidden, mid}) / std::sqrt(double(mid))).to(at::kBFloat16);
    const PackedLinear a(w1, at::randn({mid}).to(at::kBFloat16), LinearActivation::gelu_erf);
    const PackedLinear b(w2, at::randn({hidden}).to(at::kBFloat16), LinearActivation::none);
    // embeval's kernel ("amx:" on tiles, "avx512_bf16:" its VDPBF16PS form) or oneDNN's AMX one fuse.
    const auto own_kernel = [](const std::string& name) {
      return name.rfind("amx:", 0) == 0 || name.rfind("avx512_bf16:", 0) == 0;
    };
    const bool own = own_kernel(a.implementation());
    const bool amx = own || a.implementation().find("amx") != std::string::npos;
    EXPECT_EQ(own, own_kernel(b.implementation())) << b.implementation();
    const int before = at::get_num_threads();
    at::set_num_threads(2);
    for (int64_t rows : {1, 5, 128, 300, 700, 1024}) {
      at::Tensor x = at::randn({2, rows, hidden}).to(at::kBFloat16);
      at::Tensor fused = a.fused_with(b, x);
      if (!amx) {
        EXPECT_FALSE(fused.defined());
        continue;
      }
      ASSERT_TRUE(fused.defined()) << "rows " << rows;
      EXPECT_EQ(fused.sizes(), (std::vector<int64_t>{2, rows, hidden}));
      EXPECT_TRUE(at::equal(fused, b(a(x)))) << a.implementation() << ": rows " << rows << ": max diff "
                                             << (fused.to(at::kFloat) - b(a(x)).to(at::kFloat)).abs().max().item<float>();
      setenv("EMBEVAL_NO_ROW_BLOCKS", "1", 1);
      EXPECT_TRUE(at::equal(fused, a.fused_with(b, x))) << a.implementation() << ": rows " << rows << " in whole rows";
      unsetenv("EMBEVAL_NO_ROW_BLOCKS");
    }
    at::set_num_threads(before);
    // Not a pair it fuses: fp32, or layers whose widths do not meet; on
    // oneDNN's kernel also a first layer whose outputs are not in slices.
    const PackedLinear f1(w1.to(at::kFloat), at::Tensor(), LinearActivation::none);
    const PackedLinear f2(w2.to(at::kFloat), at::Tensor(), LinearActivation::none);
    EXPECT_FALSE(f1.fused_with(f2, at::randn({3, hidden})).defined());
    EXPECT_FALSE(a.fused_with(a, at::randn({3, hidden}).to(at::kBFloat16)).defined());
    const at::Tensor xm = at::randn({3, mid}).to(at::kBFloat16);
    at::Tensor back = b.fused_with(a, xm);
    EXPECT_EQ(back.defined(), own);
    if (back.defined()) {
      EXPECT_TRUE(at::equal(back, a(b(xm))));
    }
  }
  unsetenv("EMBEVAL_NO_AMX_BF16_GEMM");
}

namespace {

// qkv [b, t, 3h] float64, mask [b, t] of 0/1 -> context [b, t, h] by loops.
std::vector<double> attention_reference(const at::Tensor& qkv, const at::Tensor& keep, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), h = qkv.size(2) / 3, d = h / heads;
  auto Q = qkv.accessor<double, 3>();
  auto M = keep.accessor<int64_t, 2>();
  std::vector<double> ctx(b * t * h, 0.0);
  for (int64_t n = 0; n < b; ++n)
    for (int64_t hh = 0; hh < heads; ++hh)
      for (int64_t i = 0; i < t; ++i) {
        std::vector<double> s(t);
        double top = -INFINITY;
        for (int64_t j = 0; j < t; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += Q[n][i][hh * d + e] * Q[n][j][h + hh * d + e];
          s[j] = M[n][j] ? dot / std::sqrt(double(d)) : -INFINITY;
          top = std::max(top, s[j]);
        }
        double z = 0;
        for (double& v : s) z += (v = std::exp(v - top));
        for (int64_t j = 0; j < t; ++j)
          for (int64_t e = 0; e < d; ++e) ctx[(n * t + i) * h + hh * d + e] += s[j] / z * Q[n][j][2 * h + hh * d + e];
      }
  return ctx;
}

struct AttentionCase {
  int64_t b, t, heads, d;
};

// [b, t] of 1 (token) and 0 (padding): row 1 ends in 2 padding positions,
// row 2 has 1 token (where the batch and the length have them).
at::Tensor padded_keep(int64_t b, int64_t t) {
  at::Tensor keep = at::ones({b, t}, at::kLong);
  if (b > 1 && t > 2) keep[1].narrow(0, t - 2, 2).zero_();
  if (b > 2 && t > 1) keep[2].narrow(0, 1, t - 1).zero_();
  return keep;
}

}  // namespace

TEST(FusedQkvAttention, MatchesFloat64ReferenceWithPadding) {
  at::manual_seed(5);
  // (batch, seq, heads): one tile; at seq 400 tiles of 3 batch rows and a
  // remainder of 2 (the kernel bounds a tile's fp32 scores to ~4 MB); at seq
  // 1100 one row's scores are over that, so tiles of one row x 476 query rows
  // and a remainder of 148; with 4 heads at seq 1300, 4 MB would be 201 rows,
  // so the 256-row minimum: 5 blocks of 256 and a remainder of 20. With
  // bert-base's 12 heads of 64 at seq 200, bf16 on an AMX CPU takes the dense
  // per-head path (tiles of 2 batch rows and a remainder of 1; its own
  // softmax): the same reference holds it. On a CPU with AMX or
  // AVX512-BF16, bf16 runs embeval's kernel (cpu_attention.h) where no
  // oneDNN form above applies first, and fp32 its FMA kernel before any of
  // them; with EMBEVAL_NO_BF16_ATTENTION=1 / EMBEVAL_NO_FP32_ATTENTION=1
  // they never do, and with EMBEVAL_NO_AMX_ATTENTION=1 an AMX CPU runs
  // the bf16 kernel's VDPBF16PS products.
  for (AttentionCase cs : {AttentionCase{3, 7, 2, 4}, AttentionCase{5, 400, 2, 4}, AttentionCase{3, 1100, 2, 4},
                           AttentionCase{3, 1300, 4, 4}, AttentionCase{5, 200, 12, 64}}) {
    const int64_t b = cs.b, t = cs.t, heads = cs.heads, d = cs.d, h = heads * d;
    const at::Tensor keep = padded_keep(b, t);
    for (at::ScalarType type : {at::kFloat, at::kBFloat16}) {
      at::Tensor qkv = at::randn({b, t, 3 * h}, at::kDouble).to(type);
      const double lowest = type == at::kFloat ? -3.4028234663852886e38 : -3.3895313892515355e38;
      at::Tensor mask = (1.0 - keep.to(type)).mul_(lowest).view({b, 1, 1, t});
      const std::vector<double> want = attention_reference(qkv.to(at::kDouble), keep, heads);
      // The kernel (with and without embeval's own kernel for the dtype,
      // and with its VDPBF16PS products on an AMX CPU), and its ATen fallback with
      // blocks of 100 query rows (libtorch 1.x; 2.x runs SDPA whatever the
      // budget).
      const Bf16AttentionProducts kernel = bf16_attention_products();
      const bool own = type == at::kBFloat16 ? kernel != Bf16AttentionProducts::none : fp32_attention_available();
      for (int form : {0, 1, 2, 3}) {
        if (form == 1 && !own) continue;
        if (form == 3 && (type != at::kBFloat16 || kernel != Bf16AttentionProducts::amx ||
                          !bf16_attention_runs(Bf16AttentionProducts::avx512_bf16)))
          continue;
        const char* env = form == 3                 ? "EMBEVAL_NO_AMX_ATTENTION"
                          : type == at::kBFloat16 ? "EMBEVAL_NO_BF16_ATTENTION"
                                                  : "EMBEVAL_NO_FP32_ATTENTION";
        if (form == 1 || form == 3) setenv(env, "1", 1);
        at::Tensor ctx = form == 2 ? aten_qkv_attention(qkv, mask, heads, b * heads * t * 4 * 100)
                                   : fused_qkv_attention(qkv, mask, heads);
        unsetenv(env);
        ASSERT_EQ(ctx.sizes(), (std::vector<int64_t>{b, t, h}));
        ASSERT_EQ(ctx.scalar_type(), type);
        EXPECT_LT(max_diff(ctx, want), type == at::kFloat ? 1e-5 : 3e-2)
            << at::toString(type) << " batch " << b << " seq " << t << " form " << form;
      }
#if TORCH_VERSION_MAJOR < 2
      // The ATen path on a CPU without bf16 instructions (what
      // EMBEVAL_NO_NATIVE_BF16=1 says this one is): fp32 products on the
      // widened values, the context rounded once, so each value within half
      // a bf16 step (<= 2^-8 of it) of the float64 attention plus fp32 sums.
      if (type == at::kBFloat16) {
        setenv("EMBEVAL_NO_NATIVE_BF16", "1", 1);
        const at::Tensor ctx = aten_qkv_attention(qkv, mask, heads, b * heads * t * 4 * 100);
        unsetenv("EMBEVAL_NO_NATIVE_BF16");
        at::Tensor g = ctx.to(at::kDouble).contiguous().view({-1});
        const at::Tensor w = at::tensor(want, at::kDouble);
        const double excess = ((g - w).abs() - w.abs() * std::ldexp(1.0, -8)).max().item<double>();
        EXPECT_LT(excess, 1e-5) << "batch " << b << " seq " << t << ": widened bf16";
      }
#endif
    }
  }
}

// embeval's bf16 kernel called directly (fused_qkv_attention prefers
// oneDNN's row-wise form where that applies on AMX), with each set of
// products this CPU runs (AMX tiles, VDPBF16PS): head widths that are and
// are not multiples of 32 (2, 4, 48, 64, 96: the tiles pad them with
// zeros), lengths around the blocks of 8, 16 and 32 (1, 7, 33, 40, 130),
// rows ending in padding, a row of one token, a row whose first key is
// masked (a mask inside the live keys: the kernel adds it to the scaled
// scores, where right padding alone lets it skip the add) and a row with
// every key masked. Against the float64 loops (bf16 tolerance, as above;
// the all-masked row, where the reference is 0/0, against the softmax of
// equal scores: the mean of the values), against the oneDNN forms, which
// compute the same thing in another order (fp32 scores and softmax, bf16
// probabilities), and the two sets of products against each other where
// both run: at most one bf16 step apart on these O(1) outputs.
at::Tensor kernel_call(const at::Tensor& qkv, const at::Tensor& mask, int64_t heads,
                       Bf16AttentionProducts products = bf16_attention_products()) {
  const int64_t b = qkv.size(0), t = qkv.size(1), h = qkv.size(2) / 3;
  at::Tensor ctx = at::empty({b, t, h}, at::kBFloat16);
  const at::Tensor m = mask.to(at::kFloat).reshape({b, t}).contiguous();
  const bool ran = bf16_attention(reinterpret_cast<const uint16_t*>(qkv.data_ptr<at::BFloat16>()), m.data_ptr<float>(), b,
                                  t, heads, h / heads, reinterpret_cast<uint16_t*>(ctx.data_ptr<at::BFloat16>()), products);
  EXPECT_TRUE(ran) << bf16_attention_name(products);
  return ctx;
}

// The kernels' cases: head widths that are and are not multiples of 32,
// lengths around the blocks of 8, 16 and 32; rows ending in padding
// (padded_keep), a hole before live keys in row 0 and every key masked in
// row 3. qkv random in `type`, the mask that type's lowest where masked.
const std::vector<AttentionCase> KERNEL_CASES = {AttentionCase{1, 1, 1, 2}, AttentionCase{3, 7, 2, 4},
                                                 AttentionCase{4, 33, 3, 48}, AttentionCase{4, 130, 12, 64},
                                                 AttentionCase{3, 40, 2, 96}};
std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_case(const AttentionCase& cs, at::ScalarType type) {
  const int64_t b = cs.b, t = cs.t, h = cs.heads * cs.d;
  at::Tensor keep = padded_keep(b, t);
  if (b > 3) keep[3].zero_();          // every key masked
  if (b > 2 && t > 2) keep[0][0] = 0;  // a hole before live keys
  const double lowest = type == at::kFloat ? -3.4028234663852886e38 : -3.3895313892515355e38;
  at::Tensor qkv = at::randn({b, t, 3 * h}, at::kDouble).to(type);
  at::Tensor mask = (1.0 - keep.to(type)).mul_(lowest).view({b, 1, 1, t});
  return {qkv, keep, mask};
}

// The sets of products this CPU runs.
std::vector<Bf16AttentionProducts> products_here() {
  std::vector<Bf16AttentionProducts> out;
  for (auto p : {Bf16AttentionProducts::avx512_bf16, Bf16AttentionProducts::amx})
    if (bf16_attention_runs(p)) out.push_back(p);
  return out;
}

TEST(Bf16Attention, MatchesReferenceAndOneDnnForms) {
  const std::vector<Bf16AttentionProducts> kinds = products_here();
  if (kinds.empty()) GTEST_SKIP() << "no AVX512-BF16 or AMX-BF16 on this CPU";
  at::manual_seed(11);
  for (AttentionCase cs : KERNEL_CASES) {
    const int64_t b = cs.b, t = cs.t, heads = cs.heads, d = cs.d, h = heads * d;
    const auto [qkv, keep, mask] = kernel_case(cs, at::kBFloat16);
    setenv("EMBEVAL_NO_BF16_ATTENTION", "1", 1);
    const at::Tensor other = fused_qkv_attention(qkv, mask, heads);
    unsetenv("EMBEVAL_NO_BF16_ATTENTION");
    const int64_t live = std::min<int64_t>(b, 3);  // rows with a key left
    const std::vector<double> want =
        attention_reference(qkv.narrow(0, 0, live).to(at::kDouble), keep.narrow(0, 0, live), heads);
    std::vector<at::Tensor> got;
    for (Bf16AttentionProducts kind : kinds) {
      const at::Tensor ctx = kernel_call(qkv, mask, heads, kind);
      const std::string what = fmt::format("{} batch {} seq {} d {}", bf16_attention_name(kind), b, t, d);
      EXPECT_LT(max_diff(ctx.narrow(0, 0, live), want), 3e-2) << what;
      const at::Tensor gap = (ctx.to(at::kFloat) - other.to(at::kFloat)).abs();
      EXPECT_LE(gap.max().item<float>(), 1.6e-2f) << what;
      if (b > 3) {
        const at::Tensor mean_v = qkv[3].to(at::kFloat).narrow(1, 2 * h, h).mean(0);  // uniform weights
        EXPECT_LT((ctx[3].to(at::kFloat) - mean_v).abs().max().item<float>(), 3e-2) << what;
      }
      got.push_back(ctx);
    }
    if (got.size() == 2) {
      EXPECT_LE((got[0].to(at::kFloat) - got[1].to(at::kFloat)).abs().max().item<float>(), 1.6e-2f)
          << "AMX against VDPBF16PS, batch " << b << " seq " << t << " d " << d;
    }
  }
  // And fused_qkv_attention runs it where the row-wise form does not apply (one batch row).
  at::Tensor qkv = at::randn({1, 50, 3 * 128}).to(at::kBFloat16);
  at::Tensor mask = at::zeros({1, 1, 1, 50}, at::kBFloat16);
  EXPECT_TRUE(at::equal(fused_qkv_attention(qkv, mask, 2), kernel_call(qkv, mask, 2)));
  // An odd head width (K and V are read as pairs) is declined, ctx untouched.
  uint16_t ctx[3] = {1, 2, 3};
  const uint16_t in[9] = {};
  const float m[1] = {0};
  for (Bf16AttentionProducts kind : kinds) EXPECT_FALSE(bf16_attention(in, m, 1, 1, 1, 3, ctx, kind));
  EXPECT_FALSE(bf16_attention(in, m, 1, 1, 1, 2, ctx, Bf16AttentionProducts::none));
  EXPECT_EQ(ctx[0] + ctx[1] + ctx[2], 6);
}

// Keys masked at the end of a row are skipped, not computed as zeros: the
// rows of a padded text come out bit for bit as the same text alone.
TEST(Bf16Attention, PaddingChangesNoBit) {
  const std::vector<Bf16AttentionProducts> kinds = products_here();
  if (kinds.empty()) GTEST_SKIP() << "no AVX512-BF16 or AMX-BF16 on this CPU";
  at::manual_seed(12);
  const int64_t heads = 4, d = 64, h = heads * d;
  for (Bf16AttentionProducts kind : kinds)
    for (int64_t len : {1, 20, 31, 32, 33, 95}) {
      const int64_t t = 96;
      at::Tensor qkv = at::randn({2, t, 3 * h}).to(at::kBFloat16);
      at::Tensor keep = at::ones({2, t});
      keep[1].narrow(0, len, t - len).zero_();
      at::Tensor mask = (1.0 - keep).mul_(-3.3895313892515355e38).view({2, 1, 1, t}).to(at::kBFloat16);
      const at::Tensor padded = kernel_call(qkv, mask, heads, kind)[1].narrow(0, 0, len);
      const at::Tensor alone = kernel_call(qkv[1].narrow(0, 0, len).unsqueeze(0).contiguous(),
                                           at::zeros({1, 1, 1, len}, at::kBFloat16), heads, kind)[0];
      EXPECT_TRUE(at::equal(padded, alone)) << bf16_attention_name(kind) << " length " << len;
    }
}

// The fp32 kernel called directly, on the shapes of the bf16 kernel's test
// above (head widths 2-96: V copied and padded unless a multiple of 32;
// lengths around the blocks of 8 and 32; a hole in the mask, an all-masked
// row), against the float64 loops at fp32's tolerance and against the
// oneDNN forms (EMBEVAL_NO_FP32_ATTENTION=1); a padded text gives the bits
// of the text alone.
at::Tensor fp32_call(const at::Tensor& qkv, const at::Tensor& mask, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), h = qkv.size(2) / 3;
  at::Tensor ctx = at::empty({b, t, h});
  const at::Tensor m = mask.to(at::kFloat).reshape({b, t}).contiguous();
  EXPECT_TRUE(fp32_attention(qkv.data_ptr<float>(), m.data_ptr<float>(), b, t, heads, h / heads, ctx.data_ptr<float>()));
  return ctx;
}

TEST(Fp32Attention, MatchesReferenceAndOneDnnForms) {
  if (!fp32_attention_available()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  at::manual_seed(15);
  for (AttentionCase cs : KERNEL_CASES) {
    const int64_t b = cs.b, t = cs.t, heads = cs.heads, d = cs.d, h = heads * d;
    const auto [qkv, keep, mask] = kernel_case(cs, at::kFloat);
    const at::Tensor ctx = fp32_call(qkv, mask, heads);
    setenv("EMBEVAL_NO_FP32_ATTENTION", "1", 1);
    const at::Tensor other = fused_qkv_attention(qkv, mask, heads);
    unsetenv("EMBEVAL_NO_FP32_ATTENTION");
    const int64_t live = std::min<int64_t>(b, 3);
    const std::vector<double> want =
        attention_reference(qkv.narrow(0, 0, live).to(at::kDouble), keep.narrow(0, 0, live), heads);
    const std::string what = fmt::format("batch {} seq {} d {}", b, t, d);
    EXPECT_LT(max_diff(ctx.narrow(0, 0, live), want), 1e-5) << what;
    EXPECT_LE((ctx - other).abs().max().item<float>(), 2e-5f) << what;
    if (b > 3) {
      const at::Tensor mean_v = qkv[3].narrow(1, 2 * h, h).mean(0);  // uniform weights
      EXPECT_LT((ctx[3] - mean_v).abs().max().item<float>(), 1e-5) << what;
    }
  }
  float ctx[2] = {1, 2};
  const float in[6] = {}, m[1] = {0};
  EXPECT_FALSE(fp32_attention(in, m, 1, 1, 0, 2, ctx));  // no heads: declined, ctx untouched
  EXPECT_EQ(ctx[0] + ctx[1], 3.0f);
}

TEST(Fp32Attention, PaddingChangesNoBit) {
  if (!fp32_attention_available()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  at::manual_seed(16);
  const int64_t heads = 4, d = 64, h = heads * d, t = 96;
  for (int64_t len : {1, 7, 8, 20, 31, 32, 33, 95}) {
    at::Tensor qkv = at::randn({2, t, 3 * h});
    at::Tensor keep = at::ones({2, t});
    keep[1].narrow(0, len, t - len).zero_();
    at::Tensor mask = (1.0 - keep).mul_(-3.4028234663852886e38).view({2, 1, 1, t});
    const at::Tensor padded = fp32_call(qkv, mask, heads)[1].narrow(0, 0, len);
    const at::Tensor alone =
        fp32_call(qkv[1].narrow(0, 0, len).unsqueeze(0).contiguous(), at::zeros({1, 1, 1, len}), heads)[0];
    EXPECT_TRUE(at::equal(padded, alone)) << "length " << len;
  }
}

// A NaN in one text's query reaches that text's context (every row, for a
// NaN in a K or V row too) and no other text's: the softmax's exponential
// keeps NaN (it once clamped NaN scores to exp(-87), so a NaN query gave
// finite, uniform attention and a damaged model finite vectors).
TEST(Fp32Attention, NanReachesItsOwnTextOnly) {
  if (!fp32_attention_available()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  at::manual_seed(17);
  const int64_t heads = 2, d = 32, h = heads * d, t = 40;
  for (int64_t part : {0, 1, 2}) {  // Q, K, V
    at::Tensor qkv = at::randn({3, t, 3 * h});
    qkv[1][5][part * h + 3] = NAN;  // text 1, row 5, head 0
    const at::Tensor ctx = fp32_call(qkv, at::zeros({3, 1, 1, t}), heads);
    const at::Tensor head0 = ctx[1].narrow(1, 0, d);
    if (part == 0) {
      EXPECT_TRUE(at::isnan(head0[5]).all().item<bool>()) << "Q";
      EXPECT_TRUE(at::isfinite(head0.narrow(0, 0, 5)).all().item<bool>()) << "Q: other rows";
    } else if (part == 1) {
      EXPECT_TRUE(at::isnan(head0).all().item<bool>()) << "K: every row sees the NaN key";
    } else {
      EXPECT_TRUE(at::isnan(head0.narrow(1, 3, 1)).all().item<bool>()) << "V: its column";
    }
    EXPECT_TRUE(at::isfinite(ctx[1].narrow(1, d, d)).all().item<bool>()) << part << ": head 1";
    EXPECT_TRUE(at::isfinite(ctx[0]).all().item<bool>() && at::isfinite(ctx[2]).all().item<bool>()) << part;
  }
}

TEST(Bf16Attention, NanReachesItsOwnText) {
  const std::vector<Bf16AttentionProducts> kinds = products_here();
  if (kinds.empty()) GTEST_SKIP() << "no AVX512-BF16 or AMX-BF16 on this CPU";
  at::manual_seed(18);
  const int64_t heads = 2, d = 32, h = heads * d, t = 40;
  for (Bf16AttentionProducts kind : kinds) {
    at::Tensor qkv = at::randn({3, t, 3 * h});
    qkv[1][5][3] = NAN;  // text 1's query row 5, head 0
    const at::Tensor ctx = kernel_call(qkv.to(at::kBFloat16), at::zeros({3, 1, 1, t}, at::kBFloat16), heads, kind)
                               .to(at::kFloat);
    EXPECT_TRUE(at::isnan(ctx[1][5].narrow(0, 0, d)).all().item<bool>()) << bf16_attention_name(kind);
    EXPECT_TRUE(at::isfinite(ctx[0]).all().item<bool>() && at::isfinite(ctx[2]).all().item<bool>())
        << bf16_attention_name(kind);
  }
}

// Linear::map_row_blocks hands out every row once, in blocks of the asked
// height, with the bits of the plain call (PackedLinear bf16; Int8Linear on
// its AMX or VNNI kernel, bf16 and float).
TEST(MapRowBlocks, EveryRowOnceWithThePlainCallsBits) {
  at::manual_seed(13);
  const int64_t rows = 1000, in = 96, out = 160, block = 96;
  at::Tensor w = at::randn({out, in}) / 10, b = at::randn({out});
  std::vector<std::pair<std::string, std::unique_ptr<Linear>>> layers;
  layers.emplace_back("bf16", std::make_unique<PackedLinear>(w.to(at::kBFloat16), b.to(at::kBFloat16), LinearActivation::none));
  const at::Tensor sw = w.abs().amax(1) / 127;
  const at::Tensor wq = (w / sw.unsqueeze(1)).round().to(at::kChar);
  auto int8 = std::make_unique<Int8Linear>(wq, sw, b, LinearActivation::none);
  // embeval's own int8 kernel (AMX tiles, or VPDPBUSD on a CPU with VNNI and no AMX) has the form.
  const std::string kernel = int8->implementation();
  if (kernel.rfind("amx:", 0) == 0 || kernel.rfind("avx512_vnni:", 0) == 0) layers.emplace_back("int8", std::move(int8));
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  for (auto& [name, layer] : layers)
    for (at::ScalarType type : {at::kBFloat16, at::kFloat}) {
      if (name == "bf16" && type == at::kFloat) continue;
      const at::Tensor x = at::randn({rows, in}).to(type);
      at::Tensor got = at::full({rows, out}, NAN, type);
      std::vector<int> seen(rows, 0);
      const bool ran = layer->map_row_blocks(x, block, [&](int64_t r0, const at::Tensor& y) {
        EXPECT_EQ(y.size(0), std::min(block, rows - r0)) << name << " at row " << r0;
        for (int64_t r = r0; r < r0 + y.size(0); ++r) ++seen[static_cast<size_t>(r)];
        got.narrow(0, r0, y.size(0)).copy_(y);
      });
      if (name == "bf16" && !ran) continue;  // no oneDNN AMX kernel here: nothing to check
      ASSERT_TRUE(ran) << name;
      EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; })) << name;
      EXPECT_TRUE(at::equal(got, (*layer)(x))) << name << " " << c10::toString(type);
      // Fewer than two blocks a thread: declined.
      EXPECT_FALSE(layer->map_row_blocks(x.narrow(0, 0, 3 * block), block, [](int64_t, const at::Tensor&) {}));
    }
  at::set_num_threads(threads);
}

// blocked_qkv_attention gives the bits of the projection then the bf16
// kernel over the whole batch (each text's attention is its own), texts
// padded to different lengths, a last block of one text.
TEST(BlockedQkvAttention, GivesTheTwoCallsBits) {
  if (bf16_attention_products() == Bf16AttentionProducts::none) GTEST_SKIP() << "no bf16 attention kernel on this CPU";
  at::manual_seed(14);
  const int64_t b = 9, t = 128, heads = 4, d = 32, h = heads * d;
  at::Tensor w = at::randn({3 * h, h}) / 10, bias = at::randn({3 * h});
  // The projection in bf16 (oneDNN's AMX product) and in W8A8 (embeval's
  // AMX or VNNI int8 kernel): each where it has the row-block form.
  std::vector<std::unique_ptr<Linear>> projections;
  projections.push_back(
      std::make_unique<PackedLinear>(w.to(at::kBFloat16), bias.to(at::kBFloat16), LinearActivation::none));
  const at::Tensor sw = w.abs().amax(1) / 127;
  projections.push_back(std::make_unique<Int8Linear>((w / sw.unsqueeze(1)).round().to(at::kChar), sw, bias,
                                                     LinearActivation::none));
  const at::Tensor x = at::randn({b, t, h}).to(at::kBFloat16);
  at::Tensor keep = at::ones({b, t});
  for (int64_t r = 1; r < b; ++r) keep[r].narrow(0, t - 9 * r, 9 * r).zero_();
  const at::Tensor mask = (1.0 - keep).mul_(-3.3895313892515355e38).view({b, 1, 1, t}).to(at::kBFloat16);
  int ran = 0;
  for (const auto& qkv : projections) {
    const int threads = at::get_num_threads();
    at::set_num_threads(2);
    at::Tensor got;
    {
      c10::InferenceMode inference;  // as the model runs it: the worker threads are not in it
      got = blocked_qkv_attention(*qkv, x, mask, heads);
    }
    at::set_num_threads(threads);
    if (!got.defined()) continue;  // no row-block form for this projection here
    ++ran;
    EXPECT_TRUE(at::equal(got, kernel_call((*qkv)(x), mask, heads))) << qkv->implementation();
    setenv("EMBEVAL_NO_LAYER_BLOCKS", "1", 1);
    EXPECT_FALSE(blocked_qkv_attention(*qkv, x, mask, heads).defined());
    unsetenv("EMBEVAL_NO_LAYER_BLOCKS");
  }
  if (ran == 0) GTEST_SKIP() << "no projection here has the row-block form";
}

// The BLAS libtorch loaded (OpenBLAS here) is named with the kernel family it
// chose, and the generic-kernel warning fires exactly for the generic families.
TEST(SystemInfo, NamesOpenBlasCoreAndWarnsOnlyForGenericKernels) {
  at::mm(at::ones({2, 2}), at::ones({2, 2}));  // libtorch has loaded its BLAS by now
  const std::string libs = blas_library(), core = openblas_core();
  if (libs.find("openblas") == std::string::npos) GTEST_SKIP() << "no OpenBLAS loaded: " << libs;
  ASSERT_FALSE(core.empty());
  EXPECT_NE(libs.find("(OpenBLAS core " + core + ")"), std::string::npos) << libs;
  const bool generic = core == "Prescott" || core == "Core2" || core == "Nehalem" || core == "Atom" ||
                       core == "Penryn" || core == "Dunnington" || core == "Katmai" || core == "Coppermine" ||
                       core == "Northwood" || core == "Banias";
  if (!generic) {
    EXPECT_EQ(blas_warning(), "");
  }
  if (generic && !blas_warning().empty()) {
    EXPECT_NE(blas_warning().find("OPENBLAS_CORETYPE="), std::string::npos);
  }
}

// --threads 0 means every CPU the process may use, not libtorch's own
// default (which can count 1 physical core on a 2-vCPU VM).
TEST(TorchRuntime, ZeroThreadsMeansEveryAllowedCpu) {
  const int before = torch_threads();
  set_torch_threads(0);
  EXPECT_EQ(torch_threads(), available_cpus());
  EXPECT_GE(available_cpus(), 1);
  set_torch_threads(1);
  EXPECT_EQ(torch_threads(), 1);
  set_torch_threads(before);
}

// embeval's own loops (softmax, LayerNorm, W8A8 quantization and epilogue,
// weight-only dequantisation) run on every intra-op thread: at::parallel_for
// is a header template whose OpenMP body is compiled only with -fopenmp, so
// this fails if the build loses that flag (it had, up to session 14).
TEST(TorchRuntime, ParallelForUsesEveryThread) {
  const int before = torch_threads();
  set_torch_threads(2);
  EXPECT_EQ(parallel_for_threads(), 2);
  set_torch_threads(1);
  EXPECT_EQ(parallel_for_threads(), 1);
  set_torch_threads(before);
}
