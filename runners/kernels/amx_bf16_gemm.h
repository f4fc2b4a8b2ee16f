#pragma once
// The bf16 product on AMX tiles with its epilogue fused:
//   y[r][c] = bf16(act(sum_k x[r][k] w[c][k] + b[c]))
// (rounded to nearest even; results below 1.2e-38 flushed to zero)
// bf16 inputs and weights, fp32 sums in tile registers (TDPBF16PS), bias,
// BERT's GELU and the rounding to bf16 applied to each 32 x 32 block while
// the next block's tile instructions run (amx_s8_gemm.h's blocking and
// software pipelining, with bf16 operands: K steps of 32, weight tiles of
// 16 k pairs x 16 columns).
//
// Why not oneDNN: oneDNN 2.6's (Debian's libtorch) bf16 AMX product has no
// fast GELU: its fused post-op was slower than writing fp32 and applying
// gelu_bf16.h's pass afterwards, and that pass (the fp32 product written
// and read back, ~18 vector operations a 16 values) ran while the tile
// unit sat idle. Here the GELU runs on the vector ports between tile
// instructions, and the plain products come out faster too (K summed in
// the tiles whole, where oneDNN's wide-K products went in slices:
// onednn_util.h's SLICE_ABOVE). bert-base shapes, 4,096 rows, 2 threads,
// bench_kern_quant BM_linear kinds 1 and 9, two alternating rounds (ms):
//   768 -> 768          2.05 / 2.07 against oneDNN's 2.33 / 2.20
//   768 -> 3072         9.05 / 9.06             11.1 / 11.2
//   768 -> 3072 + GELU  9.92 / 9.41             14.3 / 14.0 (its product + the pass)
//   3072 -> 768         10.3 / 9.93             15.1 / 14.6 (in slices)
// PackedLinear uses it for every bf16 layer on AMX without an activation
// or with BERT's GELU (the forward's numbers: packed_linear.h).
//
// On a CPU with AVX512-BF16 and no AMX (Zen 4) the same packing, blocks and
// epilogue run as VDPBF16PS (uses_tiles() false: avx512_row_kernels.h's
// vdp_8x32, a zmm of a packed tile row being one k pair of 16 columns).
// Zen 4, 2 threads, 4,096 rows, four alternating rounds against oneDNN's
// gemm:jit (EMBEVAL_NO_AMX_BF16_GEMM=1), ms:
//   768 -> 768          11.5-11.9 against 12.4-13.3
//   768 -> 3072         46.2-48.2             49.6-51.3 (418 GFLOP/s at
//                                             best: 89% of VDPBF16PS's rate)
//   768 -> 3072 + GELU  46.1-48.8             50.1-57.6
//   3072 -> 768         43.8-44.6             46.2-48.5
// bert-base bf16 forward, batch 32 (BM_quant_forward, three rounds):
// 1,726-1,747 ms (one round 2,168, a disturbed one) against 1,818-1,845;
// its whole layers then run in row blocks (bert_layer_blocks.h: PackedLinear
// has the row form), which measured the same as without (1,725-1,792).
//
// The inputs are read in place: rows of x (bf16 bits, row stride ldx
// elements, k a multiple of 32) go straight to TILELOADD, 32 rows at a
// time; a last partial block of rows, or an input width that is not a
// multiple of 32, is copied into a zero-padded buffer first (what lies
// past k must be zero, not whatever follows in memory: 0 x NaN is NaN).
//
// Tests: tests/test_amx_bf16_gemm.cpp (against an fp64 product of the same
// bf16 values and the same epilogue; partial rows and columns; strided
// inputs; within the bound's GELU mostly the exact value's rounding).
// PackedLinear's tests run through it and, with EMBEVAL_NO_AMX_BF16_GEMM=1,
// through oneDNN. Benchmark: bench_kern_quant BM_linear kinds 1 and 9
// (PackedLinear bf16, + GELU); EMBEVAL_NO_AMX_BF16_GEMM=1 for oneDNN's
// kernels (+ the GELU pass) in the same shapes.
#include <cstdint>

#include <ATen/core/Tensor.h>

#include "runners/kernels/linear.h"

namespace embeval {

class AmxBf16Gemm {
 public:
  // True on a CPU with AVX-512 (F, BW, VL, DQ) and AVX512-BF16, in a build
  // with the intrinsics (GCC >= 11, x86-64 Linux), unless
  // EMBEVAL_NO_AMX_BF16_GEMM=1 (to compare with oneDNN).
  static bool available();
  // Whether the products run on AMX tiles (AMX-BF16, and the kernel grants
  // the tile state); elsewhere available() means the VDPBF16PS form: the
  // same packing, blocks and epilogue, each 32 x 32 block as four 8-row
  // runs of avx512_row_kernels.h's vdp_8x32.
  static bool uses_tiles();
  // The activations run() fuses: none and BERT's erf GELU.
  static bool fuses(LinearActivation activation) {
    return activation == LinearActivation::none || activation == LinearActivation::gelu_erf;
  }

  // weight [n, k] (any floating type; rounded to bf16 as at::Tensor::to
  // does); bias [n] or undefined. Call only where available() and fuses(activation).
  AmxBf16Gemm(const at::Tensor& weight, const at::Tensor& bias, LinearActivation activation);

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }

  // y rows [0, rows), columns [c0, c1) of the product (c0 a multiple of 32,
  // c1 <= n), written from y (column c0 of row 0) with row stride ldy, bf16
  // bits rounded to nearest even. x: rows of k bf16 values, row stride ldx
  // (>= k). Runs on the calling thread (from inside a parallel region too).
  void run(const uint16_t* x, int64_t rows, int64_t ldx, uint16_t* y, int64_t ldy, int64_t c0, int64_t c1) const;

  int64_t packed_bytes() const { return packed_.numel() * 2; }

  // The same product with weights packed by the caller, per call
  // (WeightOnlyLinear's bf16x3 tiles, dequantised as they are used): the
  // uint16 elements packing n x k weights takes; w [n, k] bf16 bits (row
  // stride ldw) into `packed` (zeros past n and k; 64-byte aligned is
  // fastest); y [rows, n] float (row stride ldy) = act(x w^T + bias) with x
  // as in run() and bias [n] floats or null. Call only where available()
  // and fuses(activation); they run on the calling thread.
  static int64_t packed_elements(int64_t n, int64_t k);
  static void pack(const uint16_t* w, int64_t n, int64_t k, int64_t ldw, uint16_t* packed);
  static void run_packed(const uint16_t* packed, int64_t n, int64_t k, const float* bias, LinearActivation activation,
                         const uint16_t* x, int64_t rows, int64_t ldx, float* y, int64_t ldy);

 private:
  at::Tensor packed_;  // bf16 bits [np / 16][lda / 32][16 k pairs][16 columns x 2], zeros past n and k
  at::Tensor bias_;    // float [np], zeros past n (np: n rounded up to 32)
  LinearActivation activation_ = LinearActivation::none;
  int64_t k_ = 0, n_ = 0, lda_ = 0;
};

}  // namespace embeval
