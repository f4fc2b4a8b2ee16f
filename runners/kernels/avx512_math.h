#pragma once
// Element functions in AVX-512 intrinsics for the AMX kernels' own loops
// (cpu_attention.cpp, amx_s8_gemm.cpp): vec_math.h's macros 16 lanes at a
// time, where the kernels need them between intrinsics. Include only
// inside an EMBEVAL_AMX_BUILD block (amx_tiles.h).
#include <immintrin.h>

#include <cstdint>

#define EMBEVAL_AVX512_MATH_TARGET __attribute__((target("avx512f,avx512dq")))

// The vector loops outside the AMX kernels that round by VCVTNE2PS2BF16
// (gelu_bf16.cpp, layer_norm.cpp): their target, and whether the CPU runs it.
#define EMBEVAL_AVX512_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

namespace embeval {

inline bool cpu_has_avx512_bf16() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bf16");
  return has;
}

// The first n of 16 lanes (none for n <= 0, all for n >= 16).
inline __mmask16 first_lanes16(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// 16 floats -> bf16 bits, nearest even, NaN -> 0x7fc0: EMBEVAL_ROUND_BF16
// (vec_math.h) in AVX-512, so a kernel's bf16 outputs are c10::BFloat16's
// (VCVTNEPS2BF16 would flush denormals to zero).
EMBEVAL_AVX512_MATH_TARGET inline __m256i round_bf16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd), 16);
  r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7fc0));
  return _mm512_cvtepi32_epi16(r);
}

// exp(x) for x <= 0 in 16 lanes, EMBEVAL_EXP_NONPOSITIVE's Cephes reduction
// and polynomial (runners/kernels/vec_math.h), 2^k applied by VSCALEFPS; 0
// below -87, where the result would go subnormal (letting VSCALEFPS
// underflow by itself made the attention kernel 3x slower on padded rows:
// subnormal results take microcode assists). NaN stays NaN: VMAXPS returns
// its second operand when either is NaN, so x goes second in the clamp (the
// other order turned a NaN score into exp(-87), and a NaN query into finite,
// uniform attention).
EMBEVAL_AVX512_MATH_TARGET inline __m512 exp_nonpositive16(__m512 x) {
  const __m512 xc = _mm512_max_ps(_mm512_set1_ps(-87.0f), x);
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

// 2^t in 16 lanes for values rounded to bf16 next (relative step 2^-9):
// to 3e-6 relative, not exp_nonpositive16's 1e-7, in 11 operations where
// that takes 17. t's fraction f = t - round(t) in [-1/2, 1/2] through a
// degree-4 polynomial fitted to 2^f by reweighted least squares on
// Chebyshev points (maximum relative error 2.7e-6 in exact arithmetic with
// these float coefficients; float evaluation adds ~2e-7), 2^round(t) by
// VSCALEFPS. 0 below -125, so no result is subnormal (exp_nonpositive16's
// note: subnormal results take microcode assists), -inf included; NaN
// stays NaN. Meant for t <= 0 (up to a rounding above): the attention's
// softmax (cpu_attention.cpp). Test: tests/test_avx512_math.cpp.
EMBEVAL_AVX512_MATH_TARGET inline __m512 exp2_for_bf16_16(__m512 t) {
  const __m512 k = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, k);
  __m512 p = _mm512_set1_ps(9.578992612659931e-3f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5918727070093155e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.2402452677488327f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931216716766357f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.9999993443489075f));
  return _mm512_maskz_scalef_ps(_mm512_cmp_ps_mask(t, _mm512_set1_ps(-125.0f), _CMP_NLT_UQ), p, k);
}

// x/2 (1 + erf(x / sqrt 2)) in 16 lanes, erf as a rational function of z =
// x / sqrt 2 clamped to +-3.8325 (odd degree 13 over even degree 8: the
// coefficients of Eigen's generic_fast_erf_float, the clamp of its later
// versions, beyond which erf rounds to +-1 in float): 18 operations where
// vec_math.h's EMBEVAL_GELU_ERF (Abramowitz & Stegun with an exp) takes ~33,
// and within the same stated bound: |error| <= (0.5 * 1.5e-7 + 1e-7) |x| +
// 4 ulp of the result, 0.91 of it at worst over [-12, 12] in steps of 1e-5
// (float, FMA Horner; tests/test_amx_s8_gemm.cpp checks the bound). In the
// W8A8 FFN-in GELU cost ~3.3 of the kernel's ~7.5 ms with the exp form.
// The last step is x/2 + (x/2) erf in one FMA. NaN stays NaN; +inf gives
// +inf and -inf NaN, as torch.nn.functional.gelu.
EMBEVAL_AVX512_MATH_TARGET inline __m512 gelu_erf16(__m512 x) {
  const __m512 z = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)),
                                               _mm512_set1_ps(-3.832506856900711f)),
                                 _mm512_set1_ps(3.832506856900711f));
  const __m512 z2 = _mm512_mul_ps(z, z);
  __m512 p = _mm512_set1_ps(-2.72614225801306e-10f);
  p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(2.77068142495902e-08f));
  p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-2.10102402082508e-06f));
  p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-5.69250639462346e-05f));
  p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-7.34990630326855e-04f));
  p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-2.95459980854025e-03f));
  p = _mm512_fmadd_ps(p, z2, _mm512_set1_ps(-1.60960333262415e-02f));
  __m512 q = _mm512_set1_ps(-1.45660718464996e-05f);
  q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(-2.13374055278905e-04f));
  q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(-1.68282697438203e-03f));
  q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(-7.37332916720468e-03f));
  q = _mm512_fmadd_ps(q, z2, _mm512_set1_ps(-1.42647390514189e-02f));
  // (RCP14 + a Newton step + a Markstein correction gives the same bits for
  // every float x, checked once over all of [-12, 12], and measured no
  // faster in gelu_bf16.h's pass: the vector ports bound it, not VDIVPS.)
  const __m512 erf = _mm512_div_ps(_mm512_mul_ps(p, z), q);
  const __m512 half_x = _mm512_mul_ps(_mm512_set1_ps(0.5f), x);
  return _mm512_fmadd_ps(half_x, erf, half_x);
}

// The 16 x 16 dwords of r transposed in place (r[j] becomes column j):
// pairs of rows interleaved by dwords, then by qwords, then 128-bit lanes
// crossed twice: 64 shuffles for what took 16 gathers (cpu_attention.cpp's
// K transposes, BM_attention_bf16, seq 128, alternating binaries: the
// kernel 2.66-2.77 ms against 2.86-2.88); amx_bf16_gemm.cpp's packing.
EMBEVAL_AVX512_MATH_TARGET inline void transpose16x16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + 4 + j], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0xdd);
  }
}

}  // namespace embeval
