#pragma once
// y = act(x W^T + b) for the encoder's Linear layers, with W packed once at
// load time for oneDNN's matmul (CPU, fp32 or bf16; the bias is added and
// the activation applied inside the GEMM, in fp32, before rounding).
//
// Why not at::linear: on the CPU it calls whatever BLAS libblas.so.3 is, and
// OpenBLAS 0.3.21 (Debian 12) does not know newer CPUs: on an Emerald Rapids
// Xeon it falls back to its generic "Prescott" kernel, ~30 GFLOP/s per core
// against ~150 for oneDNN's AVX-512 GEMM on the same core. oneDNN (libdnnl,
// which Debian's libtorch itself links) picks its kernel from the CPU's
// instruction sets, not its model number.
//
// bf16 on AMX without an activation or with BERT's GELU runs embeval's own
// kernel instead (amx_bf16_gemm.h: the GELU between the tile instructions,
// K summed whole in the tiles); EMBEVAL_NO_AMX_BF16_GEMM=1 (read when a
// layer is made) keeps oneDNN's. (The choice follows oneDNN's probe of the
// CPU, so a build without oneDNN runs at::linear there too.) bert-base bf16 forward, batch 32 x 128, 2
// threads, three alternating runs: 411 / 417 / 416 ms against 498 / 489 /
// 485 with oneDNN's. On a CPU with AVX512-BF16 and no AMX, that kernel's
// VDPBF16PS form, the same way (Zen 4: 1,726-1,747 ms against oneDNN's
// 1,818-1,845; amx_bf16_gemm.h).
//
// bf16 where oneDNN has no bf16 kernel (AVX2-only CPUs) runs the fp32 GEMM
// on the widened input with the weights held widened, rounded once: ATen's
// bf16 GEMM there is ~80x slower than fp32 and rounds before the activation.
//
// Built without oneDNN (EMBEVAL_HAVE_DNNL unset: e.g. against a CUDA
// libtorch that bundles its own copy), and for tensors on a GPU, the same
// class runs at::linear plus the activation, so callers never branch.
#include <memory>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include "runners/kernels/linear.h"

namespace embeval {

class PackedLinear : public Linear {
 public:
  PackedLinear();
  // weight [out, in] and bias [out] (or undefined), already on their device
  // in `dtype`. On the CPU with oneDNN, fp32 and bf16 are packed; other
  // dtypes (fp16) keep at::linear.
  PackedLinear(const at::Tensor& weight, const at::Tensor& bias, LinearActivation activation);
  ~PackedLinear() override;
  PackedLinear(PackedLinear&&) noexcept;
  PackedLinear& operator=(PackedLinear&&) noexcept;

  // x: [..., in], contiguous or not, in the weight's dtype and device;
  // returns a new contiguous [..., out].
  at::Tensor operator()(const at::Tensor& x) const override;

  // next(this(x)) for a bf16 pair on AMX (BERT's FFN), with the same
  // numbers as the two calls. On embeval's kernel: any such pair whose
  // widths meet. On oneDNN's: a pair whose middle width is cut into slices
  // (onednn_util.h's SLICE_ABOVE says why): this layer writes its outputs
  // slice by slice, dense, and next multiplies them there. With rows for at
  // least two blocks of 256 a thread, each thread takes its own blocks
  // through both layers, the middle (and oneDNN's fp32 sums) in its cache
  // (bert-base bf16 forward, batch 32: ~6-12% faster with oneDNN's
  // kernels; packed_linear.cpp). Undefined elsewhere.
  at::Tensor fused_with(const Linear& next, const at::Tensor& x) const override;
  // bf16 on AMX (BERT's QKV and attention output): embeval's kernel per
  // block, or oneDNN's product with a scratchpad per thread where it has at
  // most SLICE_ABOVE inputs and no GELU pass of embeval's own. False elsewhere.
  bool map_row_blocks(const at::Tensor& x, int64_t block_rows, const RowBlockUse& use) const override;
  // bf16 on embeval's AMX kernel (amx_bf16_gemm.h) only.
  bool runs_rows() const override;
  void run_rows(const uint16_t* x, int64_t rows, uint16_t* y) const override;

  // Which path runs: "amx:bf16[ + GELU]" (embeval's kernel on tiles),
  // "avx512_bf16:embeval bf16[ + GELU]" (its VDPBF16PS form),
  // "onednn:<kernel name>", "aten: fp32 GEMM of the widened bf16 input..."
  // (bf16 where oneDNN has no bf16 kernel: AVX2-only CPUs) or "aten".
  std::string implementation() const override;
  int64_t weight_bytes() const override;

  // Whether this build links oneDNN at all.
  static bool have_onednn();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embeval
