#pragma once
// Weight-only int4 / int8 codes with a scale and zero per (output row,
// group of input columns) times an fp32 input, fp32-grade, on AVX512-VNNI:
//   y[m][o] = act(sum_g scale[o][g] * sum_{i in g} x[m][i] (code[o][i] - zero[o][g]) + b[o])
// Each row of x is written as three int8 limbs (int8_limbs.h); a limb times
// the uint8 codes is an exact int32 sum per group (VPDPBUSD: codes as the
// unsigned operand, limbs as the signed one), the zero point comes off as
// zero times the limb's group sum (exact), and only the per-group
// combination, scale and sum over groups are rounded, in fp32, as an fp32
// GEMM rounds its sums.
//
// Why: on a CPU with VNNI but no AMX (AMD Zen 4, Intel Ice Lake / Cascade
// Lake) the int8 product runs at ~4x the fp32 one and bf16 at ~2x, so
// bf16x3 (three bf16 products, weight_only_linear.h) is slower than the fp32
// GEMM, and dequantised fp32 tiles cannot beat the product they feed. Three
// limb products cost 3/4 of one fp32 product; oneDNN 2.6 has no group-wise
// scale, so the per-group epilogue needs a kernel of its own.
//
// Blocking: 8 rows x 16 outputs a microkernel, 24 int32 accumulators (8 rows
// x 3 limbs) in zmm registers over one group; at the group's end they are
// made float, the zero taken off, the limbs combined and scaled into the
// block's fp32 sums (in L1). Codes are packed per 16 outputs as the
// unsigned operand reads them: int4 two K-steps (8 inputs) a 64-byte load,
// low nibbles the first, high the second; int8 one K-step a load. The limbs
// of 8 rows are interleaved so one K-step's 24 broadcasts read 96
// contiguous bytes. A call takes rows in chunks of 64 (their limbs stay in
// L2) per thread when there are enough rows, else splits the outputs.
//
// The 8-row group loop is assembly (vnni_group_gemm.cpp says why): one
// VPDPBUSD a cycle, the core's peak, in a side program. AMD EPYC (Zen 4),
// 2 threads, bert-base shapes at 4,096 rows (BM_linear kind 4 against kind
// 0, one process): int4 g128 230-256 G(FL)OP/s against the fp32 GEMM's
// 200-206 (1.14-1.24x; the limbs' int8 products at ~80% of VNNI's peak);
// the intrinsics version before it 180-187 (0.87x). Few rows: one row
// 768 -> 768 in 11 us against fp32's 21 and the register kernel's 34;
// 16 to 64 rows 0.74-0.97x fp32's time, 0.35-0.43x the paths it replaces.
//
// Applies where group_size is a multiple of 8 with group_size x (2^bits -
// 1) x 127 < 2^24 (each group's sums exact in fp32: int8 groups up to 512,
// int4 up to 8,800, so per-channel int4 too), groups contiguous (no g_idx).
// Tests: tests/test_vnni_group_gemm.cpp (against a float64 product of the
// dequantised weights; codes read back exactly). Benchmark:
// tests/bench/bench_kern_quant.cpp's BM_linear kind 4 (WeightOnlyLinear
// int4 g128 takes this kernel where it applies; EMBEVAL_NO_VNNI_GROUP=1
// for the paths it replaces).
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "runners/kernels/linear.h"

namespace embeval {

class VnniGroupGemm {
 public:
  // Whether the CPU has AVX512-F/BW/VL and VNNI (and EMBEVAL_NO_VNNI_GROUP
  // is not 1), and whether a layer of this configuration fits the kernel.
  static bool available();
  static bool fits(int bits, int64_t in, int64_t group_size);

  // codes uint8 [out, in] (one a byte, < 2^bits); scales and zeros float
  // [out, in / group_size], contiguous (zeros integers in [0, 2^bits)); bias
  // float [out] or undefined. The scales, zeros and bias are kept by
  // reference (the caller's tensors, not copies): only the codes are repacked.
  VnniGroupGemm(const at::Tensor& codes, int bits, const at::Tensor& scales, const at::Tensor& zeros,
                const at::Tensor& bias, int64_t group_size, LinearActivation activation);

  // y [rows, out] = act((x / divisor) W^T + b) for x [rows, in] fp32
  // (contiguous), on all ATen threads (or the calling thread inside a
  // parallel region). divisor float [in], or null for none: AWQ's
  // per-input-channel scale (WeightOnlyLinear's input divisor), divided out
  // of each row as its limbs are made: the same IEEE quotients as dividing x
  // first, without a tensor of its own (the bundled model's awq-int4-g64
  // single-text time went from 0.94-1.08x fp32's to 0.97-0.99x).
  void run(const float* x, int64_t rows, float* y, const float* divisor = nullptr) const;
  // Rows [o0, o1) of the codes back into codes (uint8 [o1 - o0, in], one a byte).
  void unpack_codes(uint8_t* codes, int64_t o0, int64_t o1) const;
  int64_t packed_bytes() const { return static_cast<int64_t>(packed_.size()); }

 private:
  void run_rows(const float* x, int64_t rows, float* y, int64_t nb0, int64_t nb1, const float* divisor) const;
  int bits_;
  int64_t out_, in_, group_size_, groups_, blocks_;
  LinearActivation activation_;
  std::vector<uint8_t> packed_;  // [out / 16][codes of 16 outputs in load order]
  at::Tensor scales_, zeros_, bias_;  // float [out, groups] x 2, [out] (zeros where none)
};

}  // namespace embeval
