#pragma once
// The quantized Linears for a model that runs off the CPU (CUDA), written on
// ATen operators only, so they run wherever libtorch does and compute in the
// model's dtype (fp32, bf16 or fp16). The CPU has its own kernels
// (weight_only_linear.h, int8_linear.h); these are what `--device cuda` gets.
//
// AtenWeightOnlyLinear: the integers stay on the device packed (int4 two to a
// byte, low nibble the even column; int8 one a byte) with their group scales
// and zeros. Each call dequantises the layer into one transient weight in
// the compute dtype, a block of rows at a time through float32 (the fp32
// transient is a block, never the matrix), and runs the dtype's GEMM
// (cuBLAS). The memory saving is real at rest; the speed is the float GEMM's
// plus the dequantisation: no custom int4 GEMM is written here.
//
// AtenInt8Linear (W8A8): per-token int8 activations exactly as Int8Linear
// makes them (sx = max(max_k |x_k / smooth_k|, 1e-5) / 127, codes
// round-half-even(x / sx)), then the int8 x int8 -> int32 GEMM
// `at::_int_mm` (cuBLASLt; libtorch >= 2.1, CUDA) when the shape allows it
// (inner and output widths multiples of 8; fewer than 17 rows are padded
// with zero rows, whose products are zero), else the same int8 values
// multiplied in an fp32 GEMM (exact while the sums stay below 2^24 in
// magnitude, fp32-rounded beyond). The epilogue acc * sw * sx + b and the
// activation run in float32, the result is rounded once to the dtype.
#include <cstdint>
#include <string>
#include <utility>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "runners/kernels/linear.h"

namespace embeval {

class AtenWeightOnlyLinear : public Linear {
 public:
  // codes uint8 [out, in] in 0 .. 2^bits - 1, scales float [out, groups],
  // zeros int [out, groups], group_size (0: the row), g_idx int [in] or
  // undefined, bias float [out] or undefined, divisor float [in] or
  // undefined (the layer computes (x / divisor) W^T); all on the CPU. W =
  // scales * (codes - zeros) as QuantizedWeight's. Held on `device`,
  // computing in `dtype`.
  AtenWeightOnlyLinear(const at::Tensor& codes, int bits, const at::Tensor& scales, const at::Tensor& zeros,
                       int64_t group_size, const at::Tensor& g_idx, const at::Tensor& bias, LinearActivation activation,
                       const at::Tensor& divisor, at::ScalarType dtype, c10::Device device);

  // x: [..., in] in the compute dtype on the device -> [..., out].
  at::Tensor operator()(const at::Tensor& x) const override;
  // The weight one call multiplies by: [out, in] in the compute dtype, the
  // divisor folded into its columns (Q(W) / d, rounded once).
  at::Tensor dequantized_weight() const;
  std::string implementation() const override;
  // Bytes held on the device, as WeightOnlyLinear counts them: the packed
  // codes, float scales and zeros, g_idx and the divisor (not the bias).
  int64_t weight_bytes() const override;

 private:
  int bits_;
  int64_t in_, out_, group_size_;
  at::ScalarType dtype_;
  LinearActivation activation_;
  at::Tensor packed_;      // uint8 [out, in / 2] (int4) or [out, in]
  at::Tensor scales_;      // float [out, groups]
  at::Tensor zeros_;       // float [out, groups] (small integers, exact)
  at::Tensor col_groups_;  // int64 [in] with act-order (g_idx); undefined for contiguous groups
  at::Tensor divisor_;     // float [in] or undefined
  at::Tensor bias_;        // compute dtype [out] or undefined
};

class AtenInt8Linear : public Linear {
 public:
  // weight int8 [out, in] (signed codes), weight_scales float [out], bias
  // float [out] or undefined, smooth float [in] or undefined; on the CPU.
  // Held on `device`, taking and giving `dtype`.
  AtenInt8Linear(const at::Tensor& weight, const at::Tensor& weight_scales, const at::Tensor& bias,
                 LinearActivation activation, const at::Tensor& smooth, at::ScalarType dtype, c10::Device device);

  at::Tensor operator()(const at::Tensor& x) const override;
  // "aten:_int_mm s8s8s32 (cuBLASLt)" or "aten fp32 GEMM of the int8 values (why)".
  std::string implementation() const override;
  int64_t weight_bytes() const override;

  // Whether this build's libtorch has at::_int_mm on this device.
  static bool int_mm_available(c10::Device device);

 private:
  int64_t in_, out_;
  at::ScalarType dtype_;
  LinearActivation activation_;
  at::Tensor weight_;         // int8 [out, in]
  at::Tensor weight_scales_;  // float [out]
  at::Tensor bias_;           // float [out] or undefined
  at::Tensor smooth_;         // float [in] or undefined
  bool int_mm_ = false;
};

// The activation step of AtenInt8Linear alone, in ATen: codes int8 [rows, in]
// and scales float [rows] for x [rows, in] in any float dtype (smooth as
// above), on x's device. NaN rows get a NaN scale (and zero codes).
std::pair<at::Tensor, at::Tensor> aten_quantize_per_token(const at::Tensor& x, const at::Tensor& smooth);

}  // namespace embeval
