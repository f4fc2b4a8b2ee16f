#pragma once
// Eight rows x 32 outputs of a product whose left operand is read one
// dword a step straight from its rows (broadcast), the right one as two
// zmm a step: the inner loop of embeval's attention without AMX
// (cpu_attention.h: Q K^T and P V) and of the bf16 GEMM's VDPBF16PS form
// (amx_bf16_gemm.h). Assembly: 16 accumulators (zmm0-15), the left operand
// as embedded broadcasts, rows 0-7 addressed from three bases and the row
// stride; written with intrinsics, GCC 12 kept the eight row pointers in
// xmm registers and broadcast each separately (a VMOVQ and a VPBROADCASTD
// per two products; BM_attention_bf16 seq 512: 65.7 ms against 57-61).
//
// Only in an x86-64 build with the AVX-512 intrinsics (amx_tiles.h's
// EMBEVAL_AMX_BUILD); vdp_8x32 needs a CPU with AVX512-BF16, fma_8x32 one
// with AVX-512F. Tests: through their callers (tests/test_encoder_kernels.cpp,
// tests/test_amx_bf16_gemm.cpp) against float64 products.
#include <cstdint>

#include "runners/kernels/amx_tiles.h"

namespace embeval {

#ifdef EMBEVAL_AMX_BUILD
// o[r][j] (r < 8, j < 32; rows ldo bytes apart) = the sum over steps c <
// `steps` (>= 0; none: zeros) of
//   vdp_8x32: the pairwise products (VDPBF16PS) of the two bf16 at byte
//             a + r * lda + 4c with lane j % 16's two bf16 of the zmm at
//             b + c * ldb (j < 16) or b + half + c * ldb (j >= 16);
//   fma_8x32: the fp32 at a + r * lda + 4c times lane j % 16's fp32 of
//             the same zmm (VFMADD231PS).
// Eight rows are always read: a caller with fewer pads them.
void vdp_8x32(const void* a, int64_t lda, const void* b, int64_t half, int64_t ldb, int64_t steps, float* o,
              int64_t ldo);
void fma_8x32(const void* a, int64_t lda, const void* b, int64_t half, int64_t ldb, int64_t steps, float* o,
              int64_t ldo);
#endif

}  // namespace embeval
