#pragma once
// The W8A8 product on AMX tiles with its epilogue fused:
//   y[r][c] = act(float(codes[r] . w[c]) * sw[c] * sx[r] + b[c])
// int8 codes (per-token quantized activations, scales sx) times int8
// weights (per-output-channel scales sw), int32 sums in tile registers,
// turned into float (or bf16) outputs block by block while they are still in
// L1: no int32 or fp32 product matrix is ever written to memory.
//
// Why not oneDNN: oneDNN 2.6 (Debian's libtorch) has no per-row scale in its
// fast int8 kernels, so the W8A8 layer wrote its whole s32/f32 product and
// read it back for the per-token scale (the isolated layer ran at ~2 TOP/s
// against ~3.9 for quantized::linear, whose activation scale is one number).
// A TDPBSSD on this Xeon does 16x16x64 multiply-adds in ~5 ns (6.4-6.8 TOP/s a
// core with its operands in L1, measured in a side program), so the whole
// question is keeping the operands in cache.
//
// Blocking: each 32 x 32 block of outputs accumulates in four tiles (two
// row tiles of the codes times two column tiles of weights); weights are
// packed once as 1 KB tiles [n / 16][k / 64][16 rows of 4-byte k quads x 16
// columns], the layout TDPBSSD's B operand reads. A call walks the columns in
// chunks of 128 (the chunk's weights, k x 128 bytes, stay in L2) and within
// a chunk the rows in blocks of 32 (their codes, 32 x k bytes, stay in L1).
// Measured in the side program (2 threads, 256 rows a call, bert-base shapes,
// bf16 out): 768 -> 2304 3.0-3.3 ms, 768 -> 3072 4.1-4.7 ms, 3072 -> 768
// 3.7-4.1 ms for 4,096 rows (4.5-5.2 TOP/s); unaligned codes (16-byte
// malloc) halved that, hence the alignment rules below. Each block's
// epilogue runs between the next block's tile instructions (amx_s8_gemm.cpp
// says what that gained).
//
// Without AMX, on a CPU with AVX512-VNNI (AMD Zen 4), the same packing,
// quantization, blocks and epilogue run with VPDPBUSD products: a zmm of
// weights is one row of a B tile (16 columns x 4 k), so each 32 x 32 block is
// four 8-row runs of 16 VPDPBUSD a k quad (assembly, the codes as embedded
// broadcasts), the weights stored as w + 128 (VPDPBUSD's first operand is
// unsigned) and 128 x each row's code sum taken off: the same exact int32
// sums, so the same bits as the AMX and oneDNN forms.
//
// Tests: tests/test_amx_s8_gemm.cpp (exact integer products and epilogue,
// the activation step against quantize_per_token, GELU's bound, oneDNN's
// bits through Int8Linear). Benchmark: tests/bench/bench_kern_quant.cpp's
// BM_linear kinds 2, 5, 7, 8 (Int8Linear), EMBEVAL_NO_AMX_INT8=1 for
// oneDNN's kernel in the same shapes.
#include <cstdint>

#include <ATen/core/Tensor.h>

#include "runners/kernels/linear.h"

namespace embeval {

class AmxS8Gemm {
 public:
  // True on a CPU with AMX-INT8, AVX-512 (F, BW, VL, DQ) and AVX512-BF16 whose
  // kernel grants the tile state, or with AVX-512 (F, BW, VL, DQ), VNNI and
  // BF16 (AMD Zen 4: the products by VPDPBUSD, below), in a build with the
  // intrinsics (GCC >= 11, x86-64 Linux), unless EMBEVAL_NO_AMX_INT8=1 (to
  // compare with oneDNN). uses_tiles(): the AMX form.
  static bool available();
  static bool uses_tiles();

  // weight int8 [n, k]; column_scales float [n]; bias float [n] or
  // undefined; smooth float [k] (SmoothQuant's input divisor) or undefined.
  // Call only where available().
  AmxS8Gemm(const at::Tensor& weight, const at::Tensor& column_scales, const at::Tensor& bias,
            LinearActivation activation, const at::Tensor& smooth = at::Tensor());

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  // Row stride of the codes run() reads: k rounded up to 64. The codes'
  // buffer must be 64-byte aligned and hold rows_padded(rows) rows of it;
  // what lies past k in a row, or past `rows`, is read but never counts.
  int64_t lda() const { return lda_; }
  static int64_t rows_padded(int64_t rows) { return (rows + 31) / 32 * 32; }

  // y rows [0, rows), columns [c0, c1) (c0 a multiple of 32, c1 <= n), row
  // stride ldy, float or bf16 bits (rounded to nearest even; bf16 results
  // below 1.2e-38 flushed to zero, amx_s8_gemm.cpp says why). Runs on the
  // calling thread (from inside a parallel region too).
  void run(const int8_t* codes, int64_t rows, const float* sx, float* y, int64_t ldy, int64_t c0, int64_t c1) const;
  void run(const int8_t* codes, int64_t rows, const float* sx, uint16_t* y, int64_t ldy, int64_t c0, int64_t c1) const;

  // The W8A8 activation step into this kernel's codes (int8_linear.h's
  // definition): rows of x (float32 or bf16 bits, row stride k) divided by
  // smooth, amax = max |.| per row, scale = max(amax, 1e-5) / 127, codes
  // round-half-even(x / scale) clamped to +-127; a row holding NaN or an
  // infinity gets codes 0 and scale NaN. Codes into `codes` (row stride
  // lda()), scales into `scales`. The same codes and scales as
  // quantize_per_token (tested): each quotient a / b is taken as q = a * y,
  // y = 1 / b rounded, then q + (a - b q) y with the residual exact in one
  // FMA (Markstein's correction), which is the rounded quotient itself
  // unless the residual underflows: never for a >= 1e-20 and b in [1e-8,
  // 1e8] (1.4e8 random pairs checked), and a smaller a changes no code or
  // scale (its codes round to 0 and the 1e-5 floor sets the scale).
  // Smoothing factors outside [1e-8, 1e8] are divided by. A division
  // costs ~10 cycles a vector, the correction 3 FMA-port operations: a
  // bert-base W8A8 layer at batch 32 quantizes 4,096 x (3 x 768 + 3,072)
  // values (forward 357-362 ms against 368-369 with divisions). The absmax
  // runs on the bit patterns (integer maxima, bf16 32 lanes a vector) and
  // 64 codes go out in one store: bf16 rows of 768 / 3,072 (256 rows, one
  // thread, a temporary side-by-side benchmark) 4.1 / 4.2 G values/s
  // before, 6.7-6.8 / 6.0 with the integer absmax, 8.6-8.8 / 7.0-7.6 with
  // the packed stores.
  void quantize(const float* x, int64_t rows, int8_t* codes, float* scales) const;
  void quantize(const uint16_t* x, int64_t rows, int8_t* codes, float* scales) const;

  int64_t packed_bytes() const { return packed_.numel(); }

 private:
  template <typename OutT>
  void run_any(const int8_t* codes, int64_t rows, const float* sx, OutT* y, int64_t ldy, int64_t c0, int64_t c1) const;

  at::Tensor packed_;        // int8 [np / 16][lda / 64][16][64], zeros past n and k (VNNI: + 128, unsigned)
  bool tiles_ = true;        // AMX, else VPDPBUSD
  template <typename T>
  void quantize_any(const T* x, int64_t rows, int8_t* codes, float* scales) const;

  at::Tensor scales_, bias_;  // float [np], zeros past n (np: n rounded up to 32)
  at::Tensor smooth_, smooth_recip_;  // float [k] or undefined; 1 / smooth rounded, where all in [1e-8, 1e8]
  LinearActivation activation_ = LinearActivation::none;
  int64_t k_ = 0, n_ = 0, lda_ = 0;
};

}  // namespace embeval
