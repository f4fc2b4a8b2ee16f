#include "runners/kernels/vnni_group_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "harness/error.h"
#include "runners/kernels/cpu_dispatch.h"
#include "runners/kernels/int8_limbs.h"
#include "runners/kernels/vec_math.h"
#include "runners/kernels/vnni_asm.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define EMBEVAL_VNNI_KERNEL 1
#define EMBEVAL_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma")))
#endif

namespace embeval {
namespace {

constexpr int MR = 8;                    // rows a microkernel
constexpr int NR = 16;                   // outputs a microkernel (one zmm of int32)
constexpr int LIMBS = 3;
constexpr int64_t STEP_BYTES = MR * LIMBS * 4;  // one K-step (4 inputs) of a row block's limbs
// Rows a chunk: their limbs (64 x in x 3 bytes: 590 KB at in = 3072) stay
// in a core's L2 while every block of outputs passes over them.
constexpr int64_t CHUNK_ROWS = 64;
// Rows each thread needs before the threads take rows of their own (each
// then reads every weight) rather than outputs of their own.
constexpr int64_t ROWS_PER_THREAD_MIN = 32;

// A thread's scratch, grown and kept.
struct Scratch {
  std::vector<int8_t> limbs, rows;  // [blocks][in / 4][MR][LIMBS][4]; 3 rows of `in` limbs
  std::vector<float> quotient;      // one row of x / divisor
  std::vector<float> sums, steps;   // [blocks][groups][MR][LIMBS]; [CHUNK_ROWS]
  std::vector<float> scales, zeros; // [groups][NR] of the current output block
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// The limbs of rows [0, rows) of x / divisor (rows <= CHUNK_ROWS; divisor
// null for none) in the microkernel's interleaved layout, their group sums
// and steps. Rows past `rows` in the last block are zero (step 0). A row
// that is not finite gets zero limbs and a NaN step: its outputs come out
// NaN, never a silently finite vector.
void pack_limbs(const float* x, int64_t rows, int64_t in, int64_t group_size, const float* divisor, Scratch& s) {
  const int64_t blocks = (rows + MR - 1) / MR, groups = in / group_size, steps_k = in / 4;
  // Every row slot is written below (limbs, or zeros for a non-finite row
  // and the padding rows), so the buffer is not cleared first.
  s.limbs.resize(static_cast<size_t>(blocks * steps_k * STEP_BYTES));
  s.sums.assign(static_cast<size_t>(blocks * groups * MR * LIMBS), 0.f);
  s.steps.assign(static_cast<size_t>(blocks * MR), 0.f);
  s.rows.resize(static_cast<size_t>(3 * in));
  if (divisor) s.quotient.resize(static_cast<size_t>(in));
  int8_t* a[3] = {s.rows.data(), s.rows.data() + in, s.rows.data() + 2 * in};
  for (int64_t r = 0; r < blocks * MR; ++r) {
    int8_t* dst = s.limbs.data() + (r / MR) * steps_k * STEP_BYTES + (r % MR) * LIMBS * 4;
    const float* xr = x + r * in;
    if (divisor && r < rows) {
      float* q = s.quotient.data();
      for (int64_t i = 0; i < in; ++i) q[i] = xr[i] / divisor[i];
      xr = q;
    }
    const float amax = r < rows ? limb_row_absmax(xr, in) : NAN;
    const float step = std::isnan(amax) ? NAN : amax > 0 ? amax / 127.0f : 1.0f;
    if (r < rows) s.steps[static_cast<size_t>(r)] = step;
    if (std::isnan(step)) {  // zero limbs and sums
      for (int64_t k = 0; k < steps_k; ++k) std::memset(dst + k * STEP_BYTES, 0, LIMBS * 4);
      continue;
    }
    int32_t total[3];
    split_limbs(xr, in, step, a[0], a[1], a[2], total);
    const int64_t b = r / MR, rr = r % MR;
    for (int64_t k = 0; k < steps_k; ++k)
      for (int l = 0; l < LIMBS; ++l) std::memcpy(dst + k * STEP_BYTES + l * 4, a[l] + 4 * k, 4);
    float* sums = s.sums.data() + b * groups * MR * LIMBS + rr * LIMBS;
    for (int64_t g = 0; g < groups; ++g)
      for (int l = 0; l < LIMBS; ++l) {
        int32_t t = 0;
        for (int64_t i = g * group_size; i < (g + 1) * group_size; ++i) t += a[l][i];
        sums[g * MR * LIMBS + l] = static_cast<float>(t);
      }
  }
}

template <int ACT>
EMBEVAL_CLONES void activate_span(float* __restrict__ y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float v = y[i];
    EMBEVAL_ACTIVATE(ACT, v);
    y[i] = v;
  }
}

void activate(LinearActivation act, float* y, int64_t n) {
  switch (act) {
    case LinearActivation::none: break;
    case LinearActivation::gelu_erf: activate_span<1>(y, n); break;
    case LinearActivation::gelu_tanh: activate_span<2>(y, n); break;
    case LinearActivation::relu: activate_span<3>(y, n); break;
  }
}

#ifdef EMBEVAL_VNNI_KERNEL
// _mm512_cvtepi32_ps passes _mm512_undefined_ps() as its unused merge
// source, which GCC 12 reports as maybe-uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// One group of the 8-row microkernel in assembly: GCC 12 allocated the 24
// accumulators, the codes and the broadcasts of the intrinsics version with
// register copies and spilled constants in the inner loop (0.40-0.46 ns a
// VPDPBUSD in a side program, against 0.27 for this loop: one a cycle, the
// core's peak). zmm0-23 hold the sums (row r, limb l in zmm(3 r + l)),
// zmm24-25 the codes, zmm26 the nibble mask; the activation limbs are
// embedded broadcasts. The sums are stored to acc[24][16] for the epilogue.
#define EMBEVAL_VNNI_CLOBBERS                                                                                   \
  "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm12",     \
      "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "zmm18", "zmm19", "zmm20", "zmm21", "zmm22", "zmm23", "zmm24", \
      "zmm25", "zmm26", "memory"
EMBEVAL_VNNI_TARGET void group8_int4(const uint8_t* w, const int8_t* a, int64_t pairs, int32_t* acc) {
  asm volatile(
      "mov $0x0f0f0f0f, %%eax\n\t"
      "vpbroadcastd %%eax, %%zmm26\n\t"
      EMBEVAL_ASM_ZERO_0_15 EMBEVAL_ASM_ZERO_16_23
      "1:\n\t"
      "vmovdqu64 (%[w]), %%zmm24\n\t" "vpsrlw $4, %%zmm24, %%zmm25\n\t"
      "vpandd %%zmm26, %%zmm24, %%zmm24\n\t" "vpandd %%zmm26, %%zmm25, %%zmm25\n\t"
      "vpdpbusd 0(%[a])%{1to16%}, %%zmm24, %%zmm0\n\t" "vpdpbusd 4(%[a])%{1to16%}, %%zmm24, %%zmm1\n\t"
      "vpdpbusd 8(%[a])%{1to16%}, %%zmm24, %%zmm2\n\t" "vpdpbusd 12(%[a])%{1to16%}, %%zmm24, %%zmm3\n\t"
      "vpdpbusd 16(%[a])%{1to16%}, %%zmm24, %%zmm4\n\t" "vpdpbusd 20(%[a])%{1to16%}, %%zmm24, %%zmm5\n\t"
      "vpdpbusd 24(%[a])%{1to16%}, %%zmm24, %%zmm6\n\t" "vpdpbusd 28(%[a])%{1to16%}, %%zmm24, %%zmm7\n\t"
      "vpdpbusd 32(%[a])%{1to16%}, %%zmm24, %%zmm8\n\t" "vpdpbusd 36(%[a])%{1to16%}, %%zmm24, %%zmm9\n\t"
      "vpdpbusd 40(%[a])%{1to16%}, %%zmm24, %%zmm10\n\t" "vpdpbusd 44(%[a])%{1to16%}, %%zmm24, %%zmm11\n\t"
      "vpdpbusd 48(%[a])%{1to16%}, %%zmm24, %%zmm12\n\t" "vpdpbusd 52(%[a])%{1to16%}, %%zmm24, %%zmm13\n\t"
      "vpdpbusd 56(%[a])%{1to16%}, %%zmm24, %%zmm14\n\t" "vpdpbusd 60(%[a])%{1to16%}, %%zmm24, %%zmm15\n\t"
      "vpdpbusd 64(%[a])%{1to16%}, %%zmm24, %%zmm16\n\t" "vpdpbusd 68(%[a])%{1to16%}, %%zmm24, %%zmm17\n\t"
      "vpdpbusd 72(%[a])%{1to16%}, %%zmm24, %%zmm18\n\t" "vpdpbusd 76(%[a])%{1to16%}, %%zmm24, %%zmm19\n\t"
      "vpdpbusd 80(%[a])%{1to16%}, %%zmm24, %%zmm20\n\t" "vpdpbusd 84(%[a])%{1to16%}, %%zmm24, %%zmm21\n\t"
      "vpdpbusd 88(%[a])%{1to16%}, %%zmm24, %%zmm22\n\t" "vpdpbusd 92(%[a])%{1to16%}, %%zmm24, %%zmm23\n\t"
      "vpdpbusd 96(%[a])%{1to16%}, %%zmm25, %%zmm0\n\t" "vpdpbusd 100(%[a])%{1to16%}, %%zmm25, %%zmm1\n\t"
      "vpdpbusd 104(%[a])%{1to16%}, %%zmm25, %%zmm2\n\t" "vpdpbusd 108(%[a])%{1to16%}, %%zmm25, %%zmm3\n\t"
      "vpdpbusd 112(%[a])%{1to16%}, %%zmm25, %%zmm4\n\t" "vpdpbusd 116(%[a])%{1to16%}, %%zmm25, %%zmm5\n\t"
      "vpdpbusd 120(%[a])%{1to16%}, %%zmm25, %%zmm6\n\t" "vpdpbusd 124(%[a])%{1to16%}, %%zmm25, %%zmm7\n\t"
      "vpdpbusd 128(%[a])%{1to16%}, %%zmm25, %%zmm8\n\t" "vpdpbusd 132(%[a])%{1to16%}, %%zmm25, %%zmm9\n\t"
      "vpdpbusd 136(%[a])%{1to16%}, %%zmm25, %%zmm10\n\t" "vpdpbusd 140(%[a])%{1to16%}, %%zmm25, %%zmm11\n\t"
      "vpdpbusd 144(%[a])%{1to16%}, %%zmm25, %%zmm12\n\t" "vpdpbusd 148(%[a])%{1to16%}, %%zmm25, %%zmm13\n\t"
      "vpdpbusd 152(%[a])%{1to16%}, %%zmm25, %%zmm14\n\t" "vpdpbusd 156(%[a])%{1to16%}, %%zmm25, %%zmm15\n\t"
      "vpdpbusd 160(%[a])%{1to16%}, %%zmm25, %%zmm16\n\t" "vpdpbusd 164(%[a])%{1to16%}, %%zmm25, %%zmm17\n\t"
      "vpdpbusd 168(%[a])%{1to16%}, %%zmm25, %%zmm18\n\t" "vpdpbusd 172(%[a])%{1to16%}, %%zmm25, %%zmm19\n\t"
      "vpdpbusd 176(%[a])%{1to16%}, %%zmm25, %%zmm20\n\t" "vpdpbusd 180(%[a])%{1to16%}, %%zmm25, %%zmm21\n\t"
      "vpdpbusd 184(%[a])%{1to16%}, %%zmm25, %%zmm22\n\t" "vpdpbusd 188(%[a])%{1to16%}, %%zmm25, %%zmm23\n\t"
      "add $192, %[a]\n\t" "add $64, %[w]\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      EMBEVAL_ASM_STORE_0_15 EMBEVAL_ASM_STORE_16_23
      : [w] "+r"(w), [a] "+r"(a), [n] "+r"(pairs)
      : [acc] "r"(acc)
      : "rax", EMBEVAL_VNNI_CLOBBERS);
}
EMBEVAL_VNNI_TARGET void group8_int8(const uint8_t* w, const int8_t* a, int64_t steps, int32_t* acc) {
  asm volatile(
      EMBEVAL_ASM_ZERO_0_15 EMBEVAL_ASM_ZERO_16_23
      "1:\n\t"
      "vmovdqu64 (%[w]), %%zmm24\n\t" "vpdpbusd 0(%[a])%{1to16%}, %%zmm24, %%zmm0\n\t"
      "vpdpbusd 4(%[a])%{1to16%}, %%zmm24, %%zmm1\n\t" "vpdpbusd 8(%[a])%{1to16%}, %%zmm24, %%zmm2\n\t"
      "vpdpbusd 12(%[a])%{1to16%}, %%zmm24, %%zmm3\n\t" "vpdpbusd 16(%[a])%{1to16%}, %%zmm24, %%zmm4\n\t"
      "vpdpbusd 20(%[a])%{1to16%}, %%zmm24, %%zmm5\n\t" "vpdpbusd 24(%[a])%{1to16%}, %%zmm24, %%zmm6\n\t"
      "vpdpbusd 28(%[a])%{1to16%}, %%zmm24, %%zmm7\n\t" "vpdpbusd 32(%[a])%{1to16%}, %%zmm24, %%zmm8\n\t"
      "vpdpbusd 36(%[a])%{1to16%}, %%zmm24, %%zmm9\n\t" "vpdpbusd 40(%[a])%{1to16%}, %%zmm24, %%zmm10\n\t"
      "vpdpbusd 44(%[a])%{1to16%}, %%zmm24, %%zmm11\n\t" "vpdpbusd 48(%[a])%{1to16%}, %%zmm24, %%zmm12\n\t"
      "vpdpbusd 52(%[a])%{1to16%}, %%zmm24, %%zmm13\n\t" "vpdpbusd 56(%[a])%{1to16%}, %%zmm24, %%zmm14\n\t"
      "vpdpbusd 60(%[a])%{1to16%}, %%zmm24, %%zmm15\n\t" "vpdpbusd 64(%[a])%{1to16%}, %%zmm24, %%zmm16\n\t"
      "vpdpbusd 68(%[a])%{1to16%}, %%zmm24, %%zmm17\n\t" "vpdpbusd 72(%[a])%{1to16%}, %%zmm24, %%zmm18\n\t"
      "vpdpbusd 76(%[a])%{1to16%}, %%zmm24, %%zmm19\n\t" "vpdpbusd 80(%[a])%{1to16%}, %%zmm24, %%zmm20\n\t"
      "vpdpbusd 84(%[a])%{1to16%}, %%zmm24, %%zmm21\n\t" "vpdpbusd 88(%[a])%{1to16%}, %%zmm24, %%zmm22\n\t"
      "vpdpbusd 92(%[a])%{1to16%}, %%zmm24, %%zmm23\n\t" "add $96, %[a]\n\t"
      "add $64, %[w]\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      EMBEVAL_ASM_STORE_0_15 EMBEVAL_ASM_STORE_16_23
      : [w] "+r"(w), [a] "+r"(a), [n] "+r"(steps)
      : [acc] "r"(acc)
      : EMBEVAL_VNNI_CLOBBERS);
}

// ROWS (<= MR) rows of a row block times one block of 16 outputs over all
// groups: yt[r][c] = sum_g scale[g][c] * (d1 + (d2 + d3 / 254) / 254),
// d_l = limb l's product with the codes less zero[g][c] times the limb's
// group sum (exact integers below 2^24, so exact in fp32).
template <int BITS, int ROWS>
EMBEVAL_VNNI_TARGET void micro(const uint8_t* __restrict__ w, const int8_t* __restrict__ a,
                               const float* __restrict__ sums, const float* __restrict__ sc,
                               const float* __restrict__ zr, int64_t groups, int64_t group_size,
                               float* __restrict__ yt) {
  constexpr int ACC = ROWS * LIMBS;
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512 inv = _mm512_set1_ps(1.0f / LIMB_BASE);
  __m512 y[ROWS];
#pragma GCC unroll 8
  for (int r = 0; r < ROWS; ++r) y[r] = _mm512_set1_ps(0.f);
  const int64_t w_group = BITS == 4 ? group_size * NR / 2 : group_size * NR;
  for (int64_t g = 0; g < groups; ++g) {
    __m512i acc[ACC];
#pragma GCC unroll 24
    for (int i = 0; i < ACC; ++i) acc[i] = _mm512_set1_epi32(0);
    const uint8_t* wg = w + g * w_group;
    const int8_t* ag = a + g * (group_size / 4) * STEP_BYTES;
    if constexpr (ROWS == MR) {
      alignas(64) int32_t sums8[ACC * NR];
      if constexpr (BITS == 4)
        group8_int4(wg, ag, group_size / 8, sums8);
      else
        group8_int8(wg, ag, group_size / 4, sums8);
#pragma GCC unroll 24
      for (int i = 0; i < ACC; ++i) acc[i] = _mm512_load_si512(sums8 + i * NR);
    } else if constexpr (BITS == 4) {
      for (int64_t p = 0; p < group_size / 8; ++p) {
        const __m512i z = _mm512_loadu_si512(wg + p * 64);
        const __m512i lo = _mm512_and_si512(z, low4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), low4);
        const int8_t* a0 = ag + 2 * p * STEP_BYTES;
#pragma GCC unroll 24
        for (int i = 0; i < ACC; ++i) {
          int32_t v;
          std::memcpy(&v, a0 + (i / LIMBS) * LIMBS * 4 + (i % LIMBS) * 4, 4);
          acc[i] = _mm512_dpbusd_epi32(acc[i], lo, _mm512_set1_epi32(v));
        }
        const int8_t* a1 = a0 + STEP_BYTES;
#pragma GCC unroll 24
        for (int i = 0; i < ACC; ++i) {
          int32_t v;
          std::memcpy(&v, a1 + (i / LIMBS) * LIMBS * 4 + (i % LIMBS) * 4, 4);
          acc[i] = _mm512_dpbusd_epi32(acc[i], hi, _mm512_set1_epi32(v));
        }
      }
    } else {
      for (int64_t k = 0; k < group_size / 4; ++k) {
        const __m512i z = _mm512_loadu_si512(wg + k * 64);
        const int8_t* a0 = ag + k * STEP_BYTES;
#pragma GCC unroll 24
        for (int i = 0; i < ACC; ++i) {
          int32_t v;
          std::memcpy(&v, a0 + (i / LIMBS) * LIMBS * 4 + (i % LIMBS) * 4, 4);
          acc[i] = _mm512_dpbusd_epi32(acc[i], z, _mm512_set1_epi32(v));
        }
      }
    }
    const __m512 zf = _mm512_loadu_ps(zr + g * NR), sf = _mm512_loadu_ps(sc + g * NR);
    const float* sg = sums + g * MR * LIMBS;
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) {
      const __m512 d1 = _mm512_fnmadd_ps(zf, _mm512_set1_ps(sg[r * LIMBS]), _mm512_cvtepi32_ps(acc[r * LIMBS]));
      const __m512 d2 = _mm512_fnmadd_ps(zf, _mm512_set1_ps(sg[r * LIMBS + 1]), _mm512_cvtepi32_ps(acc[r * LIMBS + 1]));
      const __m512 d3 = _mm512_fnmadd_ps(zf, _mm512_set1_ps(sg[r * LIMBS + 2]), _mm512_cvtepi32_ps(acc[r * LIMBS + 2]));
      const __m512 t = _mm512_fmadd_ps(_mm512_fmadd_ps(d3, inv, d2), inv, d1);
      y[r] = _mm512_fmadd_ps(sf, t, y[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < ROWS; ++r) _mm512_storeu_ps(yt + r * NR, y[r]);
}

using Micro = void (*)(const uint8_t*, const int8_t*, const float*, const float*, const float*, int64_t, int64_t,
                       float*);
template <int BITS>
Micro micro_for(int rows) {
  switch (rows) {
    case 1: return micro<BITS, 1>;
    case 2: return micro<BITS, 2>;
    case 3: case 4: return micro<BITS, 4>;
    default: return micro<BITS, 8>;
  }
}
#pragma GCC diagnostic pop
#endif

}  // namespace

bool VnniGroupGemm::available() {
  const char* off = std::getenv("EMBEVAL_NO_VNNI_GROUP");
  if (off && std::strcmp(off, "1") == 0) return false;
#ifdef EMBEVAL_VNNI_KERNEL
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

bool VnniGroupGemm::fits(int bits, int64_t in, int64_t group_size) {
  // Every group's int32 sums (and each zero times a limb's group sum) stay
  // below 2^24 in magnitude, so they are exact in fp32: at most group_size
  // x (2^bits - 1) x 127.
  return (bits == 4 || bits == 8) && group_size > 0 && group_size % 8 == 0 && in % group_size == 0 &&
         group_size * ((int64_t{1} << bits) - 1) * 127 < (int64_t{1} << 24);
}

VnniGroupGemm::VnniGroupGemm(const at::Tensor& codes, int bits, const at::Tensor& scales, const at::Tensor& zeros,
                             const at::Tensor& bias, int64_t group_size, LinearActivation activation)
    : bits_(bits), activation_(activation) {
  if (codes.dim() != 2 || codes.scalar_type() != at::kByte)
    fail("VnniGroupGemm: codes must be uint8 [out, in], got {}", c10::toString(codes.scalar_type()));
  out_ = codes.size(0);
  in_ = codes.size(1);
  group_size_ = group_size;
  if (!fits(bits, in_, group_size)) fail("VnniGroupGemm: {} bits with groups of {} over {} inputs do not fit", bits, group_size, in_);
  groups_ = in_ / group_size_;
  blocks_ = (out_ + NR - 1) / NR;
  for (const at::Tensor* t : {&scales, &zeros})
    if (t->scalar_type() != at::kFloat || !t->is_contiguous() || t->dim() != 2 || t->size(0) != out_ ||
        t->size(1) != groups_)
      fail("VnniGroupGemm: scales and zeros must be contiguous float [{}, {}]", out_, groups_);
  const float max_code = static_cast<float>((1 << bits) - 1);
  if (!(zeros == zeros.round()).all().item<bool>() || (zeros < 0).any().item<bool>() ||
      (zeros > max_code).any().item<bool>())
    fail("VnniGroupGemm: zero points must be integers in [0, {}]", max_code);
  scales_ = scales;
  zeros_ = zeros;
  bias_ = bias.defined() ? bias.to(at::kFloat).contiguous() : at::zeros({out_}, at::kFloat);
  const at::Tensor c = codes.contiguous();
  if (bits == 4 && (c >= 16).any().item<bool>()) fail("VnniGroupGemm: a code does not fit {} bits", bits);
  const uint8_t* q = c.data_ptr<uint8_t>();
  // Per block of 16 outputs, K-steps of 4 inputs: lane j of a 64-byte load
  // holds output j / 4's input 4 k + j % 4. int4: one load holds two K-steps,
  // the first in the low nibbles.
  const int64_t block_bytes = bits == 4 ? in_ * NR / 2 : in_ * NR;
  packed_.assign(static_cast<size_t>(blocks_ * block_bytes), 0);
  for (int64_t b = 0; b < blocks_; ++b)
    for (int64_t c16 = 0; c16 < NR && b * NR + c16 < out_; ++c16) {
      const uint8_t* row = q + (b * NR + c16) * in_;
      uint8_t* dst = packed_.data() + b * block_bytes;
      for (int64_t i = 0; i < in_; ++i) {
        const int64_t k = i / 4, j = c16 * 4 + i % 4;
        if (bits == 8) {
          dst[k * 64 + j] = row[i];
        } else {
          const int64_t pair = k / 2;
          dst[pair * 64 + j] |= static_cast<uint8_t>(k % 2 ? row[i] << 4 : row[i]);
        }
      }
    }
}

void VnniGroupGemm::unpack_codes(uint8_t* codes, int64_t o0, int64_t o1) const {
  const int64_t block_bytes = bits_ == 4 ? in_ * NR / 2 : in_ * NR;
  for (int64_t o = std::max<int64_t>(o0, 0); o < std::min(o1, out_); ++o) {
    const uint8_t* src = packed_.data() + (o / NR) * block_bytes + (o % NR) * 4;
    uint8_t* dst = codes + (o - o0) * in_;
    if (bits_ == 8) {
      for (int64_t k = 0; k < in_ / 4; ++k) std::memcpy(dst + 4 * k, src + k * 64, 4);
    } else {
      for (int64_t p = 0; p < in_ / 8; ++p)
        for (int j = 0; j < 4; ++j) {
          const uint8_t b = src[p * 64 + j];
          dst[8 * p + j] = b & 15;
          dst[8 * p + 4 + j] = b >> 4;
        }
    }
  }
}

void VnniGroupGemm::run_rows(const float* x, int64_t rows, float* y, int64_t nb0, int64_t nb1,
                             const float* divisor) const {
#ifdef EMBEVAL_VNNI_KERNEL
  Scratch& s = scratch();
  pack_limbs(x, rows, in_, group_size_, divisor, s);
  const Micro full = bits_ == 4 ? micro_for<4>(MR) : micro_for<8>(MR);
  const int64_t row_blocks = (rows + MR - 1) / MR, steps_k = in_ / 4;
  const int64_t block_bytes = bits_ == 4 ? in_ * NR / 2 : in_ * NR;
  s.scales.resize(static_cast<size_t>(groups_ * NR));
  s.zeros.resize(static_cast<size_t>(groups_ * NR));
  const float* sp = scales_.data_ptr<float>();
  const float* zp = zeros_.data_ptr<float>();
  const float* bp = bias_.data_ptr<float>();
  alignas(64) float yt[MR * NR];
  for (int64_t nb = nb0; nb < nb1; ++nb) {
    const int64_t o0 = nb * NR, width = std::min<int64_t>(NR, out_ - o0);
    for (int64_t g = 0; g < groups_; ++g)
      for (int64_t c = 0; c < NR; ++c) {
        s.scales[static_cast<size_t>(g * NR + c)] = c < width ? sp[(o0 + c) * groups_ + g] : 0.f;
        s.zeros[static_cast<size_t>(g * NR + c)] = c < width ? zp[(o0 + c) * groups_ + g] : 0.f;
      }
    const uint8_t* w = packed_.data() + nb * block_bytes;
    for (int64_t rb = 0; rb < row_blocks; ++rb) {
      const int64_t r0 = rb * MR, n = std::min<int64_t>(MR, rows - r0);
      const Micro f = n == MR ? full : (bits_ == 4 ? micro_for<4>(static_cast<int>(n)) : micro_for<8>(static_cast<int>(n)));
      f(w, s.limbs.data() + rb * steps_k * STEP_BYTES, s.sums.data() + rb * groups_ * MR * LIMBS, s.scales.data(),
        s.zeros.data(), groups_, group_size_, yt);
      for (int64_t r = 0; r < n; ++r) {
        const float step = s.steps[static_cast<size_t>(r0 + r)];
        float* yr = y + (r0 + r) * out_ + o0;
        for (int64_t c = 0; c < width; ++c) yr[c] = yt[r * NR + c] * step + bp[o0 + c];
      }
    }
  }
  if (activation_ != LinearActivation::none)
    for (int64_t r = 0; r < rows; ++r)
      activate(activation_, y + r * out_ + nb0 * NR, std::min(out_, nb1 * NR) - nb0 * NR);
#else
  (void)x, (void)rows, (void)y, (void)nb0, (void)nb1, (void)divisor;
  fail("VnniGroupGemm: built without the AVX512-VNNI kernel");
#endif
}

void VnniGroupGemm::run(const float* x, int64_t rows, float* y, const float* divisor) const {
  if (rows <= 0) return;
  if (!available()) fail("VnniGroupGemm: this CPU has no AVX512-VNNI (or EMBEVAL_NO_VNNI_GROUP=1)");
  const int threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  if (threads > 1 && rows >= ROWS_PER_THREAD_MIN * threads) {
    // Each thread its own rows, a chunk at a time, through every output.
    const int64_t per = (rows + threads - 1) / threads;
    at::parallel_for(0, rows, per, [&](int64_t r0, int64_t r1) {
      for (int64_t c = r0; c < r1; c += CHUNK_ROWS)
        run_rows(x + c * in_, std::min(CHUNK_ROWS, r1 - c), y + c * out_, 0, blocks_, divisor);
    });
  } else if (threads > 1 && blocks_ >= 2) {
    // Few rows: each thread its own outputs (and its own copy of the limbs).
    at::parallel_for(0, blocks_, (blocks_ + threads - 1) / threads, [&](int64_t b0, int64_t b1) {
      for (int64_t c = 0; c < rows; c += CHUNK_ROWS)
        run_rows(x + c * in_, std::min(CHUNK_ROWS, rows - c), y + c * out_, b0, b1, divisor);
    });
  } else {
    for (int64_t c = 0; c < rows; c += CHUNK_ROWS)
      run_rows(x + c * in_, std::min(CHUNK_ROWS, rows - c), y + c * out_, 0, blocks_, divisor);
  }
}

}  // namespace embeval
