// W8A8 Linear (runners/kernels/int8_linear.h) against a float64 reference
// of the same quantized computation: SmoothQuant's per-token absmax
// activation codes, integer products summed exactly, then the two scales,
// bias and activation.
#include <cmath>
#include <string>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "runners/kernels/amx_s8_gemm.h"
#include "runners/kernels/int8_linear.h"
#include "runners/kernels/packed_linear.h"

using namespace embeval;

namespace {

// SmoothQuant's quantize_activation_per_token_absmax, on ATen ops.
std::pair<at::Tensor, at::Tensor> reference_codes(const at::Tensor& x, const at::Tensor& smooth) {
  at::Tensor v = smooth.defined() ? x / smooth : x;
  at::Tensor scale = v.abs().amax(1).clamp_min(1e-5) / 127;
  return {at::round(v / scale.unsqueeze(1)).clamp(-127, 127), scale};
}

at::Tensor reference(const at::Tensor& x, const at::Tensor& wq, const at::Tensor& sw, const at::Tensor& b,
                     LinearActivation a, const at::Tensor& smooth = at::Tensor()) {
  auto [codes, sx] = reference_codes(x, smooth);
  at::Tensor y = at::mm(codes.to(at::kDouble), wq.to(at::kDouble).t()) * sx.to(at::kDouble).unsqueeze(1) *
                 sw.to(at::kDouble).unsqueeze(0);
  if (b.defined()) y = y + b.to(at::kDouble);
  switch (a) {
    case LinearActivation::none: break;
    case LinearActivation::gelu_erf: y = 0.5 * y * (1 + at::erf(y / std::sqrt(2.0))); break;
    case LinearActivation::gelu_tanh: y = at::gelu(y, "tanh"); break;
    case LinearActivation::relu: y = y.relu(); break;
  }
  return y;
}

double rel_err(const at::Tensor& got, const at::Tensor& want) {
  return ((got.to(at::kDouble) - want).abs().max() / (want.abs().max() + 1e-12)).item<double>();
}

}  // namespace

TEST(Int8Linear, PerTokenCodesAreSmoothQuantsAbsmax) {
  at::manual_seed(5);
  // 96: whole 16-lane vectors only; 100 and 7: a scalar tail after them, or only one.
  for (int64_t width : {96, 100, 7}) {
    at::Tensor x = at::randn({37, width}) * at::rand({37, 1}) * 10;
    x[4].zero_();  // an all-zero row: the 1e-5 floor, codes 0
    x[9][width - 1] = 40;  // the row's maximum in the tail
    at::Tensor smooth = at::rand({width}) + 0.5;
    for (bool use_smooth : {false, true}) {
      at::Tensor s = use_smooth ? smooth : at::Tensor();
      auto [codes, scales] = quantize_per_token(x, s);
      auto [ref_codes, ref_scales] = reference_codes(x, s);
      EXPECT_TRUE(codes.to(at::kFloat).equal(ref_codes)) << use_smooth << " width " << width;
      EXPECT_TRUE(scales.equal(ref_scales)) << use_smooth << " width " << width;
      // bf16 rows are quantized as their exact fp32 widening.
      const at::Tensor x16 = x.to(at::kBFloat16);
      auto [codes16, scales16] = quantize_per_token(x16, s);
      auto [codes_w, scales_w] = quantize_per_token(x16.to(at::kFloat), s);
      EXPECT_TRUE(codes16.equal(codes_w)) << use_smooth << " width " << width;
      EXPECT_TRUE(scales16.equal(scales_w)) << use_smooth << " width " << width;
    }
  }
  at::Tensor x = at::randn({37, 96});
  x[4].zero_();
  EXPECT_EQ(std::get<1>(quantize_per_token(x, at::Tensor()))[4].item<float>(), 1e-5f / 127.f);
}

TEST(Int8Linear, MatchesTheQuantizedReferenceForEveryActivationAndRowCount) {
  at::manual_seed(6);
  const int64_t in = 160, out = 48;
  at::Tensor wq = at::randint(-127, 128, {out, in}, at::kLong).to(at::kChar);
  at::Tensor sw = at::rand({out}) * 0.01 + 1e-3;
  at::Tensor b = at::randn({out});
  for (LinearActivation a : {LinearActivation::none, LinearActivation::gelu_erf, LinearActivation::gelu_tanh,
                             LinearActivation::relu}) {
    Int8Linear layer(wq, sw, b, a);
    EXPECT_FALSE(layer.implementation().empty());
    if (AmxS8Gemm::available()) {
      EXPECT_EQ(layer.implementation().rfind(AmxS8Gemm::uses_tiles() ? "amx:" : "avx512_vnni:", 0), 0u)
          << layer.implementation();
    } else if (onednn_int8_gemm_is_exact()) {
      EXPECT_EQ(layer.implementation().rfind("onednn:", 0), 0u) << layer.implementation();
    }
    for (int64_t rows : {1, 7, 64, 203, 512, 7, 600}) {  // 512: the probe's primitive; 7 again: a cached one; 600: blocks of 256
      at::Tensor x = at::randn({rows, in}) * 3;
      at::Tensor y = layer(x);
      ASSERT_EQ(y.sizes(), (std::vector<int64_t>{rows, out}));
      EXPECT_LT(rel_err(y, reference(x, wq, sw, b, a)), 1e-5) << static_cast<int>(a) << " rows " << rows;
    }
  }
  // Leading dimensions are kept; zero rows are fine.
  Int8Linear layer(wq, sw, at::Tensor(), LinearActivation::none);
  EXPECT_EQ(layer(at::randn({2, 3, in})).sizes(), (std::vector<int64_t>{2, 3, out}));
  EXPECT_EQ(layer(at::randn({0, in})).size(0), 0);
  EXPECT_EQ(layer.weight_bytes(), in * out + out * 4);
}

TEST(Int8Linear, Bf16InputsGiveTheFp32ResultRoundedOnce) {
  // bf16 in: the same integer codes as the widened input in fp32, the same
  // fp32 epilogue, so the output is the fp32 layer's on that input, rounded
  // once to bf16.
  at::manual_seed(8);
  const int64_t in = 160, out = 48;
  at::Tensor wq = at::randint(-127, 128, {out, in}, at::kLong).to(at::kChar);
  at::Tensor sw = at::rand({out}) * 0.01 + 1e-3, b = at::randn({out}), smooth = at::rand({in}) + 0.5;
  for (LinearActivation a : {LinearActivation::none, LinearActivation::gelu_erf})
    for (bool use_smooth : {false, true}) {
      Int8Linear layer(wq, sw, b, a, use_smooth ? smooth : at::Tensor());
      for (int64_t rows : {1, 7, 203, 600}) {  // 600: blocks of 256 and a partial one
        at::Tensor x = (at::randn({rows, in}) * 3).to(at::kBFloat16);
        at::Tensor y = layer(x);
        ASSERT_EQ(y.scalar_type(), at::kBFloat16);
        EXPECT_TRUE(y.equal(layer(x.to(at::kFloat)).to(at::kBFloat16)))
            << static_cast<int>(a) << " rows " << rows << " smooth " << use_smooth;
      }
    }
  Int8Linear layer(wq, sw, at::Tensor(), LinearActivation::none);
  EXPECT_EQ(layer(at::randn({2, 3, in}).to(at::kBFloat16)).sizes(), (std::vector<int64_t>{2, 3, out}));
  EXPECT_THROW(layer(at::randn({2, in}).to(at::kHalf)), std::exception);
}

TEST(Int8Linear, EachThreadsOwnRowsAndTheFusedFfnGiveTheSameNumbers) {
  // With two threads and enough rows each thread takes its own rows through
  // quantization, product and epilogue; fused_with runs BERT's FFN-in (GELU)
  // and FFN-out (smoothed) that way with the intermediate kept per thread.
  // Integer sums are exact and every row's arithmetic is the same, so both
  // must equal the one-thread calls bit for bit, in fp32 and in bf16.
  at::manual_seed(12);
  const int64_t in = 96, mid = 384, out = 80;
  const auto w = [](int64_t o, int64_t i) { return at::randint(-127, 128, {o, i}, at::kLong).to(at::kChar); };
  Int8Linear ffn_in(w(mid, in), at::rand({mid}) * 0.01 + 1e-3, at::randn({mid}), LinearActivation::gelu_erf);
  Int8Linear ffn_out(w(out, mid), at::rand({out}) * 0.01 + 1e-3, at::randn({out}), LinearActivation::none,
                     at::rand({mid}) + 0.5);
  const int threads = at::get_num_threads();
  // Where the int8 GEMM is fp32-emulated (no VNNI: the calls multiply the
  // same int8 values in fp32), there is no fused form: the two calls run.
  const bool int8_gemm = ffn_in.implementation().rfind("fp32-emulated", 0) != 0;
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16})
    for (int64_t rows : {7, 600}) {
      const at::Tensor x = (at::randn({rows, in}) * 3).to(dtype);
      at::set_num_threads(1);
      const at::Tensor h1 = ffn_in(x), y1 = ffn_out(h1);
      EXPECT_FALSE(ffn_in.fused_with(ffn_out, x).defined()) << "one thread";
      at::set_num_threads(std::max(threads, 2));
      EXPECT_TRUE(ffn_in(x).equal(h1)) << rows;
      const at::Tensor fused = ffn_in.fused_with(ffn_out, x);
      if (rows < 128 || !int8_gemm) {
        EXPECT_FALSE(fused.defined()) << rows << " rows: too few to split, or " << ffn_in.implementation();
        continue;
      }
      ASSERT_TRUE(fused.defined());
      EXPECT_EQ(fused.scalar_type(), dtype);
      EXPECT_TRUE(fused.equal(y1)) << c10::toString(dtype) << " rows " << rows;
      EXPECT_TRUE(ffn_out(ffn_in(x)).equal(y1));
    }
  // FFN-out without smoothing too, and a NaN row: the fused call gives the
  // two calls' numbers on the other rows and NaN on that one.
  Int8Linear plain_out(w(out, mid), at::rand({out}) * 0.01 + 1e-3, at::randn({out}), LinearActivation::none);
  at::set_num_threads(std::max(threads, 2));
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16})
    for (const Int8Linear* second : {&plain_out, &ffn_out}) {
      at::Tensor x = (at::randn({600, in}) * 3).to(dtype);
      x[5][3] = NAN;
      const at::Tensor fused = ffn_in.fused_with(*second, x), calls = (*second)(ffn_in(x));
      EXPECT_TRUE(at::isnan(calls[5]).all().item<bool>());
      if (!int8_gemm) {
        EXPECT_FALSE(fused.defined());
        continue;
      }
      ASSERT_TRUE(fused.defined());
      EXPECT_TRUE(at::isnan(fused[5]).all().item<bool>());
      const at::Tensor rest = at::cat({at::arange(0, 5), at::arange(6, 600)});
      EXPECT_TRUE(fused.index_select(0, rest).equal(calls.index_select(0, rest))) << c10::toString(dtype);
    }
  at::set_num_threads(threads);
  // Only a pair of Int8Linears fuses.
  const PackedLinear dense(at::randn({out, mid}), at::Tensor(), LinearActivation::none);
  EXPECT_FALSE(ffn_in.fused_with(dense, at::randn({600, in})).defined());
  EXPECT_FALSE(ffn_out.fused_with(ffn_in, at::randn({600, mid})).defined());  // 80 outputs feed 96 inputs
}

TEST(Int8Linear, ExtremeCodesSumExactlyOnEveryCpu) {
  // Every code at +-127 with one sign per row: a kernel that adds u8 x s8
  // pairs in 16 bits would saturate here. Whatever this CPU's oneDNN does,
  // the layer's sums must be exact.
  const int64_t in = 1024, out = 16;
  at::Tensor wq = at::full({out, in}, 127, at::kChar);
  wq.narrow(0, 0, 8).fill_(-127);
  at::Tensor sw = at::ones({out});
  at::Tensor x = at::ones({4, in});
  x[1].fill_(-1);
  x[2].copy_(at::where(at::arange(in) % 2 == 0, at::ones({in}), -at::ones({in})));
  x[3].fill_(0.5);
  Int8Linear layer(wq, sw, at::Tensor(), LinearActivation::none);
  at::Tensor y = layer(x);
  // Row 0: codes 127, scale 1/127 -> each output 127 * 127 * 1024 / 127 = +-127 * 1024.
  EXPECT_EQ(y[0][0].item<float>(), -127.f * 1024);
  EXPECT_EQ(y[0][8].item<float>(), 127.f * 1024);
  EXPECT_EQ(y[1][8].item<float>(), -127.f * 1024);
  EXPECT_EQ(y[2][8].item<float>(), 0.f);
  EXPECT_LT(rel_err(y, reference(x, wq, sw, at::Tensor(), LinearActivation::none)), 1e-6) << layer.implementation();
}

TEST(Int8Linear, SmoothingIsAppliedBeforeQuantizationAndNanPropagates) {
  at::manual_seed(7);
  const int64_t in = 64, out = 32;
  at::Tensor wq = at::randint(-127, 128, {out, in}, at::kLong).to(at::kChar);
  at::Tensor sw = at::rand({out}) * 0.01 + 1e-3, smooth = at::rand({in}) * 4 + 0.25;
  Int8Linear layer(wq, sw, at::Tensor(), LinearActivation::none, smooth);
  at::Tensor x = at::randn({9, in});
  x.select(1, 5).mul_(50);  // an outlier channel
  EXPECT_LT(rel_err(layer(x), reference(x, wq, sw, at::Tensor(), LinearActivation::none, smooth)), 1e-5);
  x[3][7] = NAN;
  x[5][60] = INFINITY;  // in the last 16-lane vector
  at::Tensor y = layer(x);
  EXPECT_TRUE(at::isnan(y[3]).all().item<bool>());
  EXPECT_TRUE(at::isnan(y[5]).all().item<bool>());
  EXPECT_TRUE(at::isfinite(y[2]).all().item<bool>());
  // A NaN in a scalar tail (width 70 = four vectors and 6 more).
  at::Tensor x70 = at::randn({3, 70});
  x70[1][68] = NAN;
  auto [codes, scales] = quantize_per_token(x70, at::Tensor());
  EXPECT_TRUE(std::isnan(scales[1].item<float>()));
  EXPECT_TRUE(std::isfinite(scales[0].item<float>()) && std::isfinite(scales[2].item<float>()));
}

TEST(Int8Linear, BadShapesAreOneLineErrors) {
  at::Tensor wq = at::zeros({4, 8}, at::kChar);
  EXPECT_THROW(Int8Linear(wq.to(at::kFloat), at::ones({4}), at::Tensor(), LinearActivation::none), std::exception);
  EXPECT_THROW(Int8Linear(wq, at::ones({3}), at::Tensor(), LinearActivation::none), std::exception);
  Int8Linear layer(wq, at::ones({4}), at::Tensor(), LinearActivation::none);
  EXPECT_THROW(layer(at::randn({2, 9})), std::exception);
  EXPECT_THROW(layer(at::randn({2, 8}, at::kDouble)), std::exception);
}

// The epilogue's own activations against float64: erf's stated error
// (Abramowitz & Stegun 7.1.26, 1.5e-7 absolute, so |x|/2 * 1.5e-7 on GELU),
// exp's ~1e-7 relative, and a few float roundings of the result.
TEST(Int8Linear, EpilogueActivationsMatchFloat64WithinTheirStatedError) {
  at::Tensor x = at::cat({at::linspace(-12, 12, 4001), at::randn({1003}) * 3, at::randn({7}) * 1e-3}).to(at::kFloat);
  const at::Tensor xd = x.to(at::kDouble);
  const double bound_x[] = {0, 0.5 * 1.5e-7 + 1e-7, 2.5e-7, 0};  // none, gelu_erf, gelu_tanh, relu
  for (LinearActivation a : {LinearActivation::gelu_erf, LinearActivation::gelu_tanh, LinearActivation::relu}) {
    at::Tensor got = x.clone();
    apply_activation_in_place(got.data_ptr<float>(), got.numel(), a);
    at::Tensor want = a == LinearActivation::gelu_erf    ? 0.5 * xd * (1 + at::erf(xd / std::sqrt(2.0)))
                      : a == LinearActivation::gelu_tanh ? 0.5 * xd * (1 + at::tanh(std::sqrt(2 / M_PI) * (xd + 0.044715 * xd.pow(3))))
                                                         : xd.relu();
    at::Tensor err = (got.to(at::kDouble) - want).abs();
    at::Tensor allowed = bound_x[static_cast<int>(a)] * xd.abs() + 4 * std::ldexp(1.0, -24) * want.abs() + 1e-38;
    EXPECT_TRUE((err <= allowed).all().item<bool>())
        << static_cast<int>(a) << ": worst excess " << (err - allowed).max().item<double>() << " at x = "
        << x[(err - allowed).argmax()].item<float>();
  }
  // NaN stays NaN; +inf maps to +inf.
  for (LinearActivation a : {LinearActivation::gelu_erf, LinearActivation::gelu_tanh, LinearActivation::relu}) {
    float v[3] = {NAN, INFINITY, -3.0f};
    apply_activation_in_place(v, 3, a);
    EXPECT_TRUE(std::isnan(v[0])) << static_cast<int>(a);
    EXPECT_EQ(v[1], INFINITY) << static_cast<int>(a);
  }
}
