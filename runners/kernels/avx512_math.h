#pragma once
// Element functions in AVX-512 intrinsics for the AMX kernels' own loops
// (amx_attention.cpp, amx_s8_gemm.cpp): vec_math.h's macros 16 lanes at a
// time, where the kernels need them between intrinsics. Include only
// inside an EMBEVAL_AMX_BUILD block (amx_tiles.h).
#include <immintrin.h>

#define EMBEVAL_AVX512_MATH_TARGET __attribute__((target("avx512f,avx512dq")))

namespace embeval {

// exp(x) for x <= 0 in 16 lanes, EMBEVAL_EXP_NONPOSITIVE's Cephes reduction
// and polynomial (runners/kernels/vec_math.h), 2^k applied by VSCALEFPS; 0
// below -87, where the result would go subnormal (letting VSCALEFPS
// underflow by itself made the attention kernel 3x slower on padded rows:
// subnormal results take microcode assists). NaN stays NaN.
EMBEVAL_AVX512_MATH_TARGET inline __m512 exp_nonpositive16(__m512 x) {
  const __m512 xc = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fmadd_ps(k, _mm512_set1_ps(2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_fmadd_ps(_mm512_mul_ps(y, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512 e = _mm512_scalef_ps(y, k);  // y * 2^k
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_NLT_UQ), e);
}

// x/2 (1 + erf(x / sqrt 2)) in 16 lanes: EMBEVAL_GELU_ERF's steps
// (Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7; for x < 0 the factor is
// erfc(|z|) straight from the polynomial). NaN stays NaN, +inf gives +inf.
EMBEVAL_AVX512_MATH_TARGET inline __m512 gelu_erf16(__m512 x) {
  const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
  const __m512 a = _mm512_abs_ps(z);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(a, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  const __m512 e = exp_nonpositive16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a)));
  const __m512 c = _mm512_mul_ps(_mm512_mul_ps(p, t), e);  // erfc(|z|)
  const __mmask16 negative = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 one_plus_erf = _mm512_mask_blend_ps(negative, _mm512_sub_ps(_mm512_set1_ps(2.0f), c), c);
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), one_plus_erf);
}

}  // namespace embeval
