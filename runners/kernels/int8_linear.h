#pragma once
// W8A8: y = act((Q(x / smooth) . Wq^T) * sx[row] * sw[out] + b) with int8
// symmetric per-output-channel weights Wq (scales sw) and int8 symmetric
// per-token dynamic activations (SmoothQuant's fake_quant W8A8:
// sx = max(max_k |x[row][k] / smooth[k]|, 1e-5) / 127, codes round(x / sx),
// ties to even). smooth is SmoothQuant's per-input-channel divisor (undefined:
// none): applied inside the quantization step, because in a post-LayerNorm
// BERT the LayerNorm output also feeds the residual and cannot absorb it.
//
// The integer GEMM runs on embeval's AMX kernel where the CPU has AMX-INT8
// (runners/kernels/amx_s8_gemm.h: the per-token epilogue fused, no s32
// matrix in memory; EMBEVAL_NO_AMX_INT8=1 turns it off), else on oneDNN
// (s8 x s8 -> s32; VNNI or AMX where the CPU has them, weights packed
// once). Both give the same bits (tested). oneDNN's int8 kernels for CPUs without
// VNNI add pairs of u8 x s8 products in 16 bits, which can saturate; a probe
// at first use multiplies extreme values through the same primitive and, if
// the sum is not exact, the layer multiplies the same int8 values in an fp32
// GEMM instead (exact to fp32 rounding of the sums; no speed-up, but the
// same numbers), and implementation() says so.
#include <memory>
#include <string>
#include <utility>

#include <ATen/core/Tensor.h>

#include "runners/kernels/packed_linear.h"

namespace embeval {

class Int8Linear : public Linear {
 public:
  Int8Linear();
  // weight int8 [out, in] (signed codes), weight_scales float [out], bias
  // [out] or undefined, smooth float [in] or undefined; on the CPU.
  Int8Linear(const at::Tensor& weight, const at::Tensor& weight_scales, const at::Tensor& bias,
             LinearActivation activation, const at::Tensor& smooth = at::Tensor());
  ~Int8Linear() override;
  Int8Linear(Int8Linear&&) noexcept;
  Int8Linear& operator=(Int8Linear&&) noexcept;

  // x: float32 [..., in] -> float32 [..., out], or bfloat16 -> bfloat16 (the
  // same integer product; the input widened exactly, the output rounded once).
  at::Tensor operator()(const at::Tensor& x) const override;

  // next(this(x)) when next is an Int8Linear too (BERT's FFN): each thread
  // takes its own rows through both products a block at a time, so the
  // intermediate (4x the hidden width) is quantized per token straight from
  // this layer's epilogue and never leaves the thread's cache. In a bf16
  // model it is rounded to bf16 first, as the two calls hand it over, so
  // the result is the same. Undefined where the per-thread path does not run
  // (one thread, few rows, no exact int8 GEMM, oneDNN 3).
  at::Tensor fused_with(const Linear& next, const at::Tensor& x) const override;
  // On the AMX kernel (float or bf16 x): each block quantized and
  // multiplied on its thread.
  bool map_row_blocks(const at::Tensor& x, int64_t block_rows, const RowBlockUse& use) const override;

  // "amx:embeval s8s8s32", "onednn:<kernel> s8s8s32", or "fp32-emulated
  // (...)" and why.
  std::string implementation() const override;
  // Bytes of weights held (int8 codes + fp32 scales).
  int64_t weight_bytes() const override;

 private:
  void run_amx(const at::Tensor& x2, at::Tensor& y) const;
  // fused_with on the AMX kernel: x2 [rows, in] contiguous, checked by
  // fused_with; returns [rows, next's out].
  at::Tensor fused_amx(const Int8Linear& next, const at::Tensor& x2) const;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The activation step alone: codes int8 [rows, in] and scales float [rows]
// for x float32 [rows, in] (smooth as above). Exposed for tests and benchmarks.
std::pair<at::Tensor, at::Tensor> quantize_per_token(const at::Tensor& x, const at::Tensor& smooth);

// Whether this CPU's oneDNN int8 GEMM adds products exactly (the probe above).
bool onednn_int8_gemm_is_exact();

}  // namespace embeval
