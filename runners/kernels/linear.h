#pragma once
// One small interface for the encoder's Linear layers, many kernels behind
// it (faiss's habit): PackedLinear (fp32 / bf16, oneDNN or ATen),
// Int8Linear (W8A8), WeightOnlyLinear (int8 / int4 weights). The model holds
// its layers through this, so quantization swaps a kernel without the
// model knowing which.
#include <cstdint>
#include <functional>
#include <string>

#include <ATen/core/Tensor.h>

namespace embeval {

// The activation a Linear applies to its output (BERT's FFN input layer).
enum class LinearActivation { none, gelu_erf, gelu_tanh, relu };

// y with the activation applied by ATen (the kernels that cannot fuse it).
at::Tensor apply_activation(at::Tensor y, LinearActivation activation);
// y[0 .. n) = activation(y) in place, with the element functions the W8A8
// epilogue inlines (runners/kernels/vec_math.h: exp to ~1e-7 relative, erf
// to 1.5e-7 absolute, the approximation oneDNN's fused GELU uses); their
// accuracy test and benchmark go through this. libtorch 1.13's at::gelu_
// took 11-12 ms of the 21 ms W8A8 FFN-in layer of bert-base (batch 32 x 128,
// 2 threads).
void apply_activation_in_place(float* y, int64_t n, LinearActivation activation);

// out[i] = x[i] rounded to bf16 (nearest even, as c10::BFloat16; NaN stays
// NaN), as raw bits: the kernels that compute in fp32 and hand bf16 on.
void round_to_bf16(const float* x, int64_t n, uint16_t* out);
// x[i] ~ hi[i] + lo[i]: hi = x rounded to bf16, lo = (x - hi) rounded to
// bf16, so the pair holds 16 significant bits (relative error <= 2^-17);
// the products hi.hi' + hi.lo' + lo.hi' of two such pairs give an fp32
// product to ~2^-16 on bf16 hardware (XLA's BF16_BF16_F32_X3 dot
// algorithm; CUTLASS's 3xTF32 does the same with tf32 halves).
void split_to_bf16(const float* x, int64_t n, uint16_t* hi, uint16_t* lo);

class Linear {
 public:
  virtual ~Linear() = default;
  // x: [..., in] -> [..., out], activation applied.
  virtual at::Tensor operator()(const at::Tensor& x) const = 0;
  // What runs, e.g. "onednn:gemm:jit" or "int4 tiles of 384 -> onednn:gemm:jit".
  virtual std::string implementation() const = 0;
  // Bytes the layer's weights occupy in memory (packed form, scales included).
  virtual int64_t weight_bytes() const = 0;
  // next(this(x)) in one pass where the pair has a fused kernel, with the
  // same numbers as the two calls; undefined where it has none (the caller
  // then makes the two calls).
  virtual at::Tensor fused_with(const Linear& next, const at::Tensor& x) const {
    (void)next;
    (void)x;
    return at::Tensor();
  }
  // this(x) `block_rows` rows at a time (the last block may be shorter),
  // each thread its own blocks, each block's output handed to use(r0, y)
  // while it is still in that thread's cache: y [rows of the block, out],
  // contiguous, x's dtype, valid during the call only (use may write over
  // it: it is the kernel's scratch); use runs on the worker thread, inside
  // the parallel region (what it calls runs on that thread alone; the
  // caller's InferenceMode does not reach it). The caller's next step then reads its input from cache
  // instead of memory (BertModel: QKV, then attention over the block's
  // texts). The same numbers as operator(). False (use never called) where
  // the kernel has no such form or there are fewer than two blocks a thread.
  using RowBlockUse = std::function<void(int64_t r0, const at::Tensor& y)>;
  virtual bool map_row_blocks(const at::Tensor& x, int64_t block_rows, const RowBlockUse& use) const {
    (void)x;
    (void)block_rows;
    (void)use;
    return false;
  }
  // bf16 rows on the calling thread alone, from raw memory: y [rows, out]
  // (row stride out) = this(x [rows, in], row stride in), the same numbers
  // as operator(); for a caller that runs each thread's own blocks of rows
  // through several steps inside one parallel region (BertModel's layer
  // blocks: runners/bert/bert_layer_blocks.h). Only where runs_rows() is
  // true; it starts no threads and makes no tensors (the worker threads
  // are outside the caller's InferenceMode).
  virtual bool runs_rows() const { return false; }
  virtual void run_rows(const uint16_t* x, int64_t rows, uint16_t* y) const;  // fails where runs_rows() is false
};

}  // namespace embeval
