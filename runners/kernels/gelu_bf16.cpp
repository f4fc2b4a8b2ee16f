#include "runners/kernels/gelu_bf16.h"

#include "harness/error.h"
#include "runners/kernels/amx_tiles.h"

#ifdef EMBEVAL_AMX_BUILD
// GCC 12's "may be used uninitialized" on the _mm512_undefined_* inside
// AVX-512 intrinsics once inlined (GCC bug 105593): not this code's.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "runners/kernels/avx512_math.h"
#endif

namespace embeval {

#ifdef EMBEVAL_AMX_BUILD
namespace {

EMBEVAL_AVX512_BF16_TARGET void gelu_rows(const float* __restrict__ x, int64_t ldx, int64_t rows, int64_t cols,
                                          uint16_t* __restrict__ y, int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    uint16_t* yr = y + r * ldy;
    int64_t j = 0;
    // Two vectors a step: the erf's divide and Horner chains are latency-bound.
    for (; j + 32 <= cols; j += 32) {
      const __m512 v0 = gelu_erf16(_mm512_loadu_ps(xr + j));
      const __m512 v1 = gelu_erf16(_mm512_loadu_ps(xr + j + 16));
      _mm512_storeu_si512(yr + j, (__m512i)_mm512_cvtne2ps_pbh(v1, v0));
    }
    for (; j < cols; j += 16) {
      const __mmask16 m = first_lanes16(cols - j);
      _mm256_mask_storeu_epi16(yr + j, m, (__m256i)_mm512_cvtneps_pbh(gelu_erf16(_mm512_maskz_loadu_ps(m, xr + j))));
    }
  }
}

}  // namespace
#endif

bool gelu_erf_bf16_available() {
#ifdef EMBEVAL_AMX_BUILD
  return cpu_has_avx512_bf16();
#else
  return false;
#endif
}

void gelu_erf_to_bf16(const float* x, int64_t ldx, int64_t rows, int64_t cols, uint16_t* y, int64_t ldy) {
  if (!gelu_erf_bf16_available()) fail("gelu_erf_to_bf16: this build or CPU has no AVX-512 GELU");
#ifdef EMBEVAL_AMX_BUILD
  gelu_rows(x, ldx, rows, cols, y, ldy);
#else
  (void)x, (void)ldx, (void)rows, (void)cols, (void)y, (void)ldy;
#endif
}

}  // namespace embeval
