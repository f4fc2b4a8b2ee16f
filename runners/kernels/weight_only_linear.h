#pragma once
// Weight-only quantized Linear: y = act(x W^T + b) with W held as int8 or
// int4 codes (two per byte) plus per-group scales and zeros,
//   W[o][i] = scale[o][g] * (code[o][i] - zero[o][g]),  g = group of column i,
// and x, y in float32. The fp32 weight matrix is never materialised.
//
// Up to 16 input rows (a short text) the codes are widened in registers
// and multiplied in fp32, reading 1 or 0.5 byte a weight; up to 512 rows
// the threads dequantise fp32 tiles (~2 MB) and the fp32 GEMM multiplies
// each, or, where bf16 is native, bf16x3 (below) runs a tile of 128 output
// rows at a time, each thread its own tiles split in its cache. With more rows the product is compute-bound, and such tiles can
// only be slower than the fp32 model (0.92x at best, bert-base batch 32,
// 2 threads). So there, where the CPU multiplies bf16 in hardware (AMX,
// AVX512-BF16: 5-7x its fp32 GEMM) the layer runs "bf16x3": x and the
// dequantised W are each split into bf16 high and low parts, and
// x_hi.W_hi + x_hi.W_lo + x_lo.W_hi is one bf16 GEMM of depth 3 in with
// fp32 sums, accurate to ~2^-16 relative (an fp32 result, not a bf16 one:
// rounding x or W once to bf16 cost 0.9987 cosine against the fp32 product
// on a model with outlier channels). W is dequantised a call into scratch
// the calling thread keeps between calls, outside malloc's heap (the
// largest layer's: about 47 MB for bert-base's bf16x3, 9.4 MB for its bf16
// input path). Elsewhere the fp32 tiles serve every row count.
//
// int8 codes with one group a row (wo-int8: per output channel), on a CPU
// whose oneDNN adds int8 products exactly (VNNI, AMX), take none of the
// paths above for an fp32 input: each row of x is written as three int8
// "limbs" over its step max|x| / 127, x = step (a1 + a2/254 + a3/254^2) to
// within 3e-8 of the row's largest element, and the codes less 128 times
// the three limbs are three exact int32 products on the int8 GEMM (AMX),
// combined in fp32: an fp32-grade result at every row count, from the int8
// GEMM's packed copy of the codes (the only one the layer then keeps). A
// bf16 input of up to 512 rows is widened and takes the limbs too (its
// exact product rounded once); with more, the layer is dequantised to bf16
// from codes read back from that copy. bert-base, 2 threads, AMX Xeon, in
// one session: batch 1 x 128 tokens 37-47 ms against fp32's 93-96 ms and
// the tiles' 119 (in a bf16 model 38 ms against 54-58 from dequantised
// bf16); batch 32 26-32 sentences/s against bf16x3's 18 and fp32's 12.4.
// EMBEVAL_NO_INT8_LIMBS=1 (read when a layer is made) keeps the other
// paths, for comparing.
//
// Group-wise codes (int4 g128 and the like) on a CPU with AVX512-VNNI but
// no AMX (AMD Zen 4, Intel Ice Lake): an fp32 input of any row count takes
// the same three limbs on vnni_group_gemm.h's kernel, which applies each
// group's scale and zero in its own epilogue (oneDNN 2.6 has no group-wise
// scale), from its packed copy of the codes (the only one then kept). There
// bf16 runs at only ~2x fp32, so bf16x3 loses to the fp32 model (0.66x at
// bert-base batch 32) and the limbs win (1.14-1.24x a layer). A bf16 input
// of up to 512 rows is widened and takes it too. EMBEVAL_NO_VNNI_GROUP=1
// (read when a layer is made) keeps the other paths.
//
// Groups are runs of `group_size` input columns, or any assignment through
// g_idx (GPTQ act-order); the dequantisation loops are compiled for AVX-512,
// AVX2 and plain x86-64 and the CPU picks one at load time.
#include <cstdint>
#include <memory>
#include <string>

#include <ATen/core/Tensor.h>

#include "runners/kernels/packed_linear.h"

namespace embeval {

class WeightOnlyLinear : public Linear {
 public:
  WeightOnlyLinear();
  // codes uint8 [out, in] with values < 2^bits; scales float [out, groups];
  // zeros int32 [out, groups]; group_size 0 = one group a row; g_idx int32
  // [in] or undefined; bits 4 or 8; bias [out] or undefined.
  // input_divisor float [in] or undefined: the layer computes
  // act((x / input_divisor) W^T + b), the per-input-channel scale AWQ puts
  // where it cannot be folded into the layer before (BERT's LayerNorms also
  // feed the residual; GELU is not linear).
  WeightOnlyLinear(const at::Tensor& codes, int bits, const at::Tensor& scales, const at::Tensor& zeros,
                   int64_t group_size, const at::Tensor& g_idx, const at::Tensor& bias, LinearActivation activation,
                   const at::Tensor& input_divisor = at::Tensor());
  ~WeightOnlyLinear() override;
  WeightOnlyLinear(WeightOnlyLinear&&) noexcept;
  WeightOnlyLinear& operator=(WeightOnlyLinear&&) noexcept;

  // x: float32 [..., in] -> float32 [..., out]; or bfloat16 -> bfloat16,
  // where the layer's weights are dequantised in fp32, rounded once to bf16
  // and multiplied by oneDNN's bf16 GEMM (AMX where the CPU has it) from
  // the thread's scratch of the layer's size (bf16, never fp32), bias and
  // activation fused; without a bf16 kernel, or on the int8 limbs (up to
  // 512 rows, above), the fp32 path rounded once.
  at::Tensor operator()(const at::Tensor& x) const override;
  // The dequantised weight [out, in] float32 (for tests and the fake-quant
  // path), without the input divisor.
  at::Tensor dequantized_weight() const;
  const at::Tensor& input_divisor() const;  // undefined when none

  std::string implementation() const override;  // "int4 tiles of N rows -> onednn:<kernel>" and so on
  std::string bf16_implementation() const;      // what a bf16 input runs: "int8 -> bf16 -> onednn:<kernel>" or the fallback
  int64_t weight_bytes() const override;        // packed codes + fp32 scales and zeros (+ g_idx, divisor)

 private:
  at::Tensor forward_bf16(const at::Tensor& x) const;
  void prepare_bf16() const;  // makes the bf16 primitives once
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embeval
