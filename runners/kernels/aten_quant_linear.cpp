#include "runners/kernels/aten_quant_linear.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/version.h>

#include "harness/error.h"

// at::_int_mm (int8 x int8 -> int32 through cuBLASLt) arrived in libtorch 2.1.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define EMBEVAL_HAVE_INT_MM 1
#endif

namespace embeval {

namespace {

// Rows dequantised together: the float32 transient stays at 4 MiB or less.
int64_t block_rows(int64_t in) { return std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, in)); }

const char* dtype_name(at::ScalarType t) {
  return t == at::kBFloat16 ? "bf16" : t == at::kHalf ? "fp16" : t == at::kFloat ? "fp32" : "?";
}

}  // namespace

AtenWeightOnlyLinear::AtenWeightOnlyLinear(const at::Tensor& codes, int bits, const at::Tensor& scales,
                                           const at::Tensor& zeros, int64_t group_size, const at::Tensor& g_idx,
                                           const at::Tensor& bias, LinearActivation activation,
                                           const at::Tensor& divisor, at::ScalarType dtype, c10::Device device)
    : bits_(bits),
      in_(codes.size(1)),
      out_(codes.size(0)),
      group_size_(group_size <= 0 || group_size >= codes.size(1) ? codes.size(1) : group_size),
      dtype_(dtype),
      activation_(activation) {
  EMBEVAL_ASSERT(codes.dim() == 2 && codes.scalar_type() == at::kByte && (bits == 4 || bits == 8));
  EMBEVAL_ASSERT(scales.dim() == 2 && scales.size(0) == out_ && zeros.sizes() == scales.sizes());
  EMBEVAL_ASSERT(g_idx.defined() || in_ % group_size_ == 0);
  EMBEVAL_ASSERT(dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf);
  const auto on = at::TensorOptions().device(device);
  at::Tensor c = codes.contiguous();
  if (bits == 4 && in_ % 2 == 0) {
    const at::Tensor pairs = c.view({out_, in_ / 2, 2});
    c = pairs.select(2, 0).bitwise_or(pairs.select(2, 1).bitwise_left_shift(4)).contiguous();
  }
  packed_ = c.to(on);
  scales_ = scales.to(at::kFloat).contiguous().to(on);
  zeros_ = zeros.to(at::kFloat).contiguous().to(on);
  if (g_idx.defined()) col_groups_ = g_idx.to(at::kLong).to(on);
  if (divisor.defined()) divisor_ = divisor.to(at::kFloat).to(on);
  if (bias.defined()) bias_ = bias.to(on.dtype(dtype));
}

at::Tensor AtenWeightOnlyLinear::dequantized_weight() const {
  at::Tensor w = at::empty({out_, in_}, packed_.options().dtype(dtype_));
  const int64_t step = block_rows(in_);
  const int64_t groups = scales_.size(1);
  for (int64_t r0 = 0; r0 < out_; r0 += step) {
    const int64_t n = std::min(step, out_ - r0);
    at::Tensor p = packed_.narrow(0, r0, n);
    at::Tensor c = p.size(1) == in_ ? p : at::stack({p.bitwise_and(15), p.bitwise_right_shift(4)}, 2).view({n, in_});
    at::Tensor s = scales_.narrow(0, r0, n), z = zeros_.narrow(0, r0, n);
    at::Tensor f;
    if (col_groups_.defined()) {
      f = s.index_select(1, col_groups_) * (c.to(at::kFloat) - z.index_select(1, col_groups_));
    } else {
      f = (s.unsqueeze(2) * (c.to(at::kFloat).view({n, groups, group_size_}) - z.unsqueeze(2))).view({n, in_});
    }
    if (divisor_.defined()) f = f / divisor_.unsqueeze(0);
    w.narrow(0, r0, n).copy_(f);
  }
  return w;
}

at::Tensor AtenWeightOnlyLinear::operator()(const at::Tensor& x) const {
  EMBEVAL_ASSERT(x.size(-1) == in_ && x.scalar_type() == dtype_);
  return apply_activation(at::linear(x, dequantized_weight(), bias_), activation_);
}

std::string AtenWeightOnlyLinear::implementation() const {
  return fmt::format("aten: int{} dequantised per call to a {} weight, {} GEMM on {}", bits_, dtype_name(dtype_),
                     dtype_name(dtype_), packed_.device().str());
}

int64_t AtenWeightOnlyLinear::weight_bytes() const {
  int64_t bytes = static_cast<int64_t>(packed_.nbytes() + scales_.nbytes() + zeros_.nbytes());
  for (const at::Tensor* t : {&col_groups_, &divisor_})
    if (t->defined()) bytes += static_cast<int64_t>(t->nbytes());
  return bytes;
}

std::pair<at::Tensor, at::Tensor> aten_quantize_per_token(const at::Tensor& x_in, const at::Tensor& smooth) {
  EMBEVAL_ASSERT(x_in.dim() == 2);
  at::Tensor x = x_in.to(at::kFloat);
  if (smooth.defined()) x = x / smooth.to(x.options());
  // amax propagates NaN: a NaN row keeps a NaN scale, so its output is NaN.
  const at::Tensor scales = x.abs().amax(1, true).clamp_min(1e-5) / 127.0;
  const at::Tensor codes = at::round(x / scales).nan_to_num_(0).clamp_(-127, 127).to(at::kChar);
  return {codes, scales.view({-1})};
}

bool AtenInt8Linear::int_mm_available(c10::Device device) {
#ifdef EMBEVAL_HAVE_INT_MM
  return device.is_cuda();
#else
  (void)device;
  return false;
#endif
}

AtenInt8Linear::AtenInt8Linear(const at::Tensor& weight, const at::Tensor& weight_scales, const at::Tensor& bias,
                               LinearActivation activation, const at::Tensor& smooth, at::ScalarType dtype,
                               c10::Device device)
    : in_(weight.size(1)), out_(weight.size(0)), dtype_(dtype), activation_(activation) {
  EMBEVAL_ASSERT(weight.dim() == 2 && weight.scalar_type() == at::kChar && weight_scales.numel() == out_);
  EMBEVAL_ASSERT(dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf);
  const auto on = at::TensorOptions().device(device);
  weight_ = weight.contiguous().to(on);
  weight_scales_ = weight_scales.to(at::kFloat).reshape({-1}).to(on);
  if (bias.defined()) bias_ = bias.to(at::kFloat).to(on);
  if (smooth.defined()) smooth_ = smooth.to(at::kFloat).to(on);
  // cuBLASLt's int8 GEMM wants both widths in multiples of 8.
  int_mm_ = int_mm_available(device) && in_ % 8 == 0 && out_ % 8 == 0;
}

at::Tensor AtenInt8Linear::operator()(const at::Tensor& x) const {
  EMBEVAL_ASSERT(x.size(-1) == in_ && x.scalar_type() == dtype_);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out_;
  auto [codes, sx] = aten_quantize_per_token(x.reshape({-1, in_}), smooth_);
  [[maybe_unused]] const int64_t rows = codes.size(0);
  at::Tensor acc;
#ifdef EMBEVAL_HAVE_INT_MM
  if (int_mm_) {
    // _int_mm wants more than 16 rows: zero rows add zero products.
    at::Tensor a = rows > 16 ? codes : at::constant_pad_nd(codes, {0, 0, 0, 17 - rows}, 0);
    acc = at::_int_mm(a, weight_.t()).narrow(0, 0, rows).to(at::kFloat);
  }
#endif
  if (!acc.defined()) acc = at::matmul(codes.to(at::kFloat), weight_.to(at::kFloat).t());
  at::Tensor y = acc.mul_(weight_scales_).mul_(sx.unsqueeze(1));
  if (bias_.defined()) y.add_(bias_);
  return apply_activation(y, activation_).to(dtype_).view(shape);
}

std::string AtenInt8Linear::implementation() const {
  const std::string on = weight_.device().str();
  if (int_mm_) return fmt::format("aten:_int_mm s8s8s32 (cuBLASLt) on {}, {} in and out", on, dtype_name(dtype_));
  const char* why = !int_mm_available(weight_.device())
                        ? (weight_.device().is_cuda() ? "libtorch < 2.1 has no _int_mm" : "_int_mm is CUDA-only here")
                        : "widths not multiples of 8";
  return fmt::format("aten fp32 GEMM of the int8 values on {} ({}), {} in and out", on, why, dtype_name(dtype_));
}

int64_t AtenInt8Linear::weight_bytes() const { return in_ * out_ + out_ * 4; }

}  // namespace embeval
