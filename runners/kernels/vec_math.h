#pragma once
// Element functions for the kernels' own loops (softmax, the W8A8 epilogue),
// as macros, not functions: GCC 12 lowers a helper inlined into a
// target_clones function for the default target, and the loop around it
// would not vectorise (runners/kernels/cpu_dispatch.h). Branch-free, so a
// plain loop over them vectorises in each clone. Arguments are evaluated
// once; the locals end in an underscore and a prefix of their own, so one
// macro may use another. Each conditional picks between values already
// computed (an arithmetic operation inside a branch of ?: can trap, which
// can keep the branch). The files that use them build at -O3 (CMakeLists.txt).
#include <cstdint>
#include <cstring>

// OUT = exp(X) for X <= 0 (softmax after subtracting the row maximum, e^-z^2):
// Cephes' expf reduction and polynomial (relative error ~1e-7), 0 below -87
// where the float would go subnormal; NaN stays NaN. 2^k's exponent comes
// from the rounding sum's low bits in unsigned arithmetic: converting k to
// int and shifting it was undefined for a NaN input (UBSan: a left shift
// of a negative number).
#define EMBEVAL_EXP_NONPOSITIVE(X, OUT)                                                   \
  do {                                                                                    \
    const float x_ = (X);                                                                 \
    const float xc_ = x_ < -87.0f ? -87.0f : x_;                                          \
    const float t_ = xc_ * 1.44269504088896341f + 12582912.f; /* 1.5 x 2^23 + k */        \
    const float k_ = t_ - 12582912.f;                                                     \
    const float r_ = (xc_ - k_ * 0.693359375f) + k_ * 2.12194440e-4f;                     \
    float y_ = 1.9875691500e-4f;                                                          \
    y_ = y_ * r_ + 1.3981999507e-3f;                                                      \
    y_ = y_ * r_ + 8.3334519073e-3f;                                                      \
    y_ = y_ * r_ + 4.1665795894e-2f;                                                      \
    y_ = y_ * r_ + 1.6666665459e-1f;                                                      \
    y_ = y_ * r_ + 5.0000001201e-1f;                                                      \
    y_ = y_ * r_ * r_ + r_ + 1.0f;                                                        \
    uint32_t t_bits_; /* k from t_'s low bits: no float-to-int conversion (NaN's is UB) */ \
    std::memcpy(&t_bits_, &t_, 4);                                                        \
    const uint32_t bits_ = (t_bits_ - 0x4B400000u + 127u) << 23;                          \
    float two_k_;                                                                         \
    std::memcpy(&two_k_, &bits_, 4);                                                      \
    const float e_ = y_ * two_k_;                                                         \
    (OUT) = x_ < -87.0f ? 0.0f : e_;                                                      \
  } while (0)

// OUT = x/2 (1 + erf(x / sqrt 2)), BERT's GELU. erf by Abramowitz & Stegun
// 7.1.26 (|error| <= 1.5e-7), the approximation oneDNN's fused gelu_erf
// uses, so the oneDNN int8 and bf16 paths apply the same function (the AMX
// int8 kernel uses a cheaper rational erf within the same bound:
// avx512_math.h's gelu_erf16). For x < 0 the
// factor 1 + erf(z) = erfc(|z|) comes straight from the polynomial, without
// the cancellation of 1 - erf(|z|). NaN stays NaN.
#define EMBEVAL_GELU_ERF(X, OUT)                                                                  \
  do {                                                                                            \
    const float gx_ = (X);                                                                        \
    const float gz_ = gx_ * 0.70710678118654752f;                                                 \
    const float ga_ = __builtin_fabsf(gz_);                                                       \
    const float gt_ = 1.0f / (1.0f + 0.3275911f * ga_);                                           \
    float gp_ = 1.061405429f;                                                                     \
    gp_ = gp_ * gt_ - 1.453152027f;                                                               \
    gp_ = gp_ * gt_ + 1.421413741f;                                                               \
    gp_ = gp_ * gt_ - 0.284496736f;                                                               \
    gp_ = gp_ * gt_ + 0.254829592f;                                                               \
    float ge_;                                                                                    \
    EMBEVAL_EXP_NONPOSITIVE(-(ga_ * ga_), ge_);                                                   \
    const float gc_ = gp_ * gt_ * ge_; /* erfc(|z|) */                                            \
    const float g1_ = 2.0f - gc_;                                                                 \
    (OUT) = 0.5f * gx_ * (gz_ < 0.0f ? gc_ : g1_);                                                \
  } while (0)

// OUT = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tanh form
// ("gelu_new"). 1 + tanh(u) = 2 / (1 + e^-2u), from e^-2|u| for either sign.
#define EMBEVAL_GELU_TANH(X, OUT)                                                                 \
  do {                                                                                            \
    const float hx_ = (X);                                                                        \
    const float hu_ = 0.7978845608028654f * (hx_ + 0.044715f * hx_ * hx_ * hx_);                  \
    const float ha_ = __builtin_fabsf(hu_);                                                       \
    float he_;                                                                                    \
    EMBEVAL_EXP_NONPOSITIVE(-2.0f * ha_, he_);                                                    \
    /* 1 + tanh(u): 2 / (1 + e^-2u) for u >= 0, 2 e^2u / (1 + e^2u) for u < 0 */                  \
    const float hd_ = 2.0f / (1.0f + he_);                                                        \
    const float hn_ = he_ * hd_;                                                                  \
    const float hs_ = hu_ < 0.0f ? hn_ : hd_;                                                     \
    (OUT) = 0.5f * hx_ * hs_;                                                                     \
  } while (0)

// 16 floats in one GCC vector (a zmm register in the v4 clone): written
// this way, not as eight scalar "lanes", reductions vectorise (the scalar
// form came out scalar in softmax, LayerNorm and per-token quantization).
typedef float EmbevalFloats16 __attribute__((vector_size(64)));
typedef float EmbevalFloats8 __attribute__((vector_size(32)));
typedef float EmbevalFloats4 __attribute__((vector_size(16)));

// The sum and the largest of a vector's 16 lanes, halving it four times (a
// tree of 4 dependent steps): written as `for (l) total += v[l]` it came out
// as a chain of 15 dependent scalar adds, which in softmax over rows of 128
// cost about as much as the rest of the row (perf on bert-base bf16). The
// sum's order differs from a left-to-right one; callers compare with a
// tolerance. (Inline, so it compiles inside each EMBEVAL_CLONES clone.)
inline float embeval_hsum16(const EmbevalFloats16& v) {
  EmbevalFloats8 a, b;
  __builtin_memcpy(&a, &v, 32);
  __builtin_memcpy(&b, reinterpret_cast<const char*>(&v) + 32, 32);
  a += b;
  EmbevalFloats4 c, d;
  __builtin_memcpy(&c, &a, 16);
  __builtin_memcpy(&d, reinterpret_cast<const char*>(&a) + 16, 16);
  c += d;
  return (c[0] + c[2]) + (c[1] + c[3]);
}
inline float embeval_hmax16(const EmbevalFloats16& v) {
  EmbevalFloats8 a, b;
  __builtin_memcpy(&a, &v, 32);
  __builtin_memcpy(&b, reinterpret_cast<const char*>(&v) + 32, 32);
  a = a > b ? a : b;
  EmbevalFloats4 c, d;
  __builtin_memcpy(&c, &a, 16);
  __builtin_memcpy(&d, reinterpret_cast<const char*>(&a) + 16, 16);
  c = c > d ? c : d;
  const float e = c[0] > c[2] ? c[0] : c[2], f = c[1] > c[3] ? c[1] : c[3];
  return e > f ? e : f;
}

// OUT (uint16_t bf16 bits) = X rounded to nearest even, as c10::BFloat16;
// NaN stays a quiet NaN (the rounding add would carry some NaN payloads
// into infinity).
#define EMBEVAL_ROUND_BF16(X, OUT)                                                   \
  do {                                                                               \
    const float rx_ = (X);                                                           \
    uint32_t ru_;                                                                    \
    std::memcpy(&ru_, &rx_, 4);                                                      \
    const uint32_t rr_ = (ru_ + 0x7fffu + ((ru_ >> 16) & 1u)) >> 16;                 \
    (OUT) = static_cast<uint16_t>(rx_ != rx_ ? 0x7fc0u : rr_); /* NaN test that vectorises */ \
  } while (0)

// V = act(V) for ACT, a LinearActivation (runners/kernels/linear.h, visible
// where this expands) fixed at compile time, so an element loop around it
// has no branch.
#define EMBEVAL_ACTIVATE(ACT, V)                                                              \
  do {                                                                                        \
    if constexpr ((ACT) == static_cast<int>(::embeval::LinearActivation::gelu_erf)) {         \
      EMBEVAL_GELU_ERF(V, V);                                                                 \
    } else if constexpr ((ACT) == static_cast<int>(::embeval::LinearActivation::gelu_tanh)) { \
      EMBEVAL_GELU_TANH(V, V);                                                                \
    } else if constexpr ((ACT) == static_cast<int>(::embeval::LinearActivation::relu)) {      \
      V = V < 0.0f ? 0.0f : V;                                                                \
    }                                                                                         \
  } while (0)
