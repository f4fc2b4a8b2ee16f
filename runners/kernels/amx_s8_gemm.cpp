#include "runners/kernels/amx_s8_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>

#include "harness/error.h"
#include "runners/kernels/amx_tiles.h"
#include "runners/kernels/vec_math.h"
#include "runners/kernels/vnni_asm.h"

#ifdef EMBEVAL_AMX_BUILD
// GCC 12's "may be used uninitialized" on the _mm512_undefined_* inside
// AVX-512 intrinsics once inlined at -O3 (GCC bug 105593; the reductions'
// _mm512_undefined_* give the definite form): not this code's.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "runners/kernels/avx512_math.h"
#endif

namespace embeval {

namespace {

constexpr int64_t TILE = 16, BLOCK = 32, KSTEP = 64;
// Columns a chunk (see the header): its weights, k x 128 bytes, in L2 while
// the row blocks pass. Side program, 2 threads, 256 rows a call, ms for
// 768 -> 2304 / 768 -> 3072 / 3072 -> 768: chunks of 128 3.05 / 4.11 /
// 3.74, of 256 3.04 / 4.26 / 4.05, of 512 3.48 / 5.37 / 4.50; all columns
// per row block 3.25 / 6.43 / 5.10.
constexpr int64_t CHUNK = 128;

}  // namespace

bool AmxS8Gemm::uses_tiles() {
#ifdef EMBEVAL_AMX_BUILD
  static const bool ready = cpu_has_amx_int8() && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                            __builtin_cpu_supports("avx512bf16") && amx_tile_permission();
  return ready;
#else
  return false;
#endif
}

bool AmxS8Gemm::available() {
#ifdef EMBEVAL_AMX_BUILD
  const char* off = std::getenv("EMBEVAL_NO_AMX_INT8");
  if (off && *off && std::strcmp(off, "0") != 0) return false;
  static const bool vnni = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                           __builtin_cpu_supports("avx512bf16");
  return uses_tiles() || vnni;
#else
  return false;
#endif
}

AmxS8Gemm::AmxS8Gemm(const at::Tensor& weight, const at::Tensor& column_scales, const at::Tensor& bias,
                     LinearActivation activation, const at::Tensor& smooth)
    : activation_(activation) {
  // Asks for the tile state too (a tile instruction without it is SIGILL).
  if (!available())
    fail("AmxS8Gemm: this CPU, kernel or build has neither AMX int8 nor AVX512-VNNI (or EMBEVAL_NO_AMX_INT8 is set)");
  tiles_ = uses_tiles();
  EMBEVAL_ASSERT(weight.dim() == 2 && weight.scalar_type() == at::kChar);
  n_ = weight.size(0);
  k_ = weight.size(1);
  EMBEVAL_ASSERT(column_scales.numel() == n_ && (!bias.defined() || bias.numel() == n_));
  lda_ = amx_round_up(std::max<int64_t>(k_, 1), KSTEP);
  const int64_t np = amx_round_up(std::max<int64_t>(n_, 1), BLOCK), kb = lda_ / KSTEP;
  const at::Tensor w = weight.contiguous();
  const int8_t* src = w.data_ptr<int8_t>();
  packed_ = at::zeros({np * lda_}, at::kChar);
  int8_t* dst = packed_.data_ptr<int8_t>();
  // Tile (column block nb, k block b): row r holds k quad b * 64 + 4r of the
  // block's 16 columns, 4 bytes each (Intel SDM, TDPBSSD: B is K/4 rows of
  // N 4-byte groups).
  for (int64_t c = 0; c < n_; ++c)
    for (int64_t i = 0; i < k_; ++i) {
      const int64_t nb = c / TILE, b = i / KSTEP, r = (i % KSTEP) / 4;
      dst[((nb * kb + b) * TILE + r) * 64 + (c % TILE) * 4 + i % 4] = src[c * k_ + i];
    }
  // VPDPBUSD multiplies unsigned bytes by signed ones: the weights go in as
  // w + 128 (the sign bit flipped), and 128 times each row's code sum comes
  // off before the epilogue (gemm_vnni).
  if (!tiles_)
    for (int64_t i = 0; i < packed_.numel(); ++i) dst[i] = static_cast<int8_t>(static_cast<uint8_t>(dst[i]) ^ 0x80);
  scales_ = at::zeros({np}, at::kFloat);
  scales_.narrow(0, 0, n_).copy_(column_scales.to(at::kFloat).reshape({n_}));
  bias_ = at::zeros({np}, at::kFloat);
  if (bias.defined()) bias_.narrow(0, 0, n_).copy_(bias.to(at::kFloat).reshape({n_}));
  if (smooth.defined()) {
    EMBEVAL_ASSERT(smooth.numel() == k_);
    smooth_ = smooth.to(at::kFloat).contiguous().reshape({k_});
    if ((smooth_ >= 1e-8).all().item<bool>() && (smooth_ <= 1e8).all().item<bool>())
      smooth_recip_ = at::reciprocal(smooth_);  // IEEE division: 1 / s rounded to nearest
  }
}

#ifdef EMBEVAL_AMX_BUILD

#define EMBEVAL_AMX_INT8_TARGET \
  __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

namespace {

// The epilogue: the same operations in the same order as the oneDNN path
// (int8_linear.cpp: oneDNN's output scale float(acc) * sw, then acc * sx +
// b, the activation, one rounding), so without an activation both give the
// same bits (tested); GELU is avx512_math.h's gelu_erf16 (a rational erf,
// within vec_math.h's stated bound for its exp form; tested). No activation
// and GELU: store_rows, pipelined (gemm below). Other activations in two
// passes: each 32 x 32 block scaled into the chunk's fp32 buffer as it
// leaves the tiles, then the activation and rounding over the chunk's rows
// (the exp-form GELU that way, or with vec_math.h's macro after each block,
// ran 8.6-11 ms where the pipelined form ran 7.5; see gemm).
EMBEVAL_AMX_INT8_TARGET inline void scale_block(const int32_t* __restrict__ acc, const float* __restrict__ sx,
                                                const float* __restrict__ sw, const float* __restrict__ b,
                                                float* __restrict__ f, int64_t ldf) {
  for (int64_t r = 0; r < BLOCK; ++r) {
    const float s = sx[r];
    for (int64_t j = 0; j < BLOCK; ++j) f[r * ldf + j] = (static_cast<float>(acc[r * BLOCK + j]) * sw[j]) * s + b[j];
  }
}

// A finished block waiting for its epilogue: its sums, where its outputs
// go, and its rows' scales (copied: the padded rows past the input's get 0).
template <typename OutT>
struct Pending {
  alignas(64) int32_t acc[BLOCK * BLOCK];
  alignas(64) float sx[BLOCK];
  int64_t rv = 0, cv = 0;
  const float* sw = nullptr;
  const float* b = nullptr;
  OutT* y = nullptr;
  // The block of rows [m0, m0 + rv) and columns [n0, n0 + cv).
  void set(const float* sx_all, int64_t m0, int64_t rows, int64_t n0, int64_t cols, const float* sw_all,
           const float* bias, OutT* y_all, int64_t ldy) {
    std::fill(sx, sx + BLOCK, 0.0f);
    std::copy(sx_all + m0, sx_all + m0 + rows, sx);
    rv = rows;
    cv = cols;
    sw = sw_all + n0;
    b = bias + n0;
    y = y_all + m0 * ldy + n0;
  }
};

// Rows [r0, r1) of a pending block's epilogue, straight into the output
// (no activation, or BERT's GELU), in intrinsics: the same loop in plain
// C++ (a row buffer and a copy) ran the layer at two thirds of this speed.
// bf16 by VCVTNE2PS2BF16, 32 values an instruction (nearest even, as
// c10::BFloat16, but results below 1.2e-38 flushed to zero: what AMX's
// products and the next activation step read as zero anyway), where the
// integer rounding took 8 instructions a 16: BM_linear kind 8 (768 ->
// 3072 + GELU, bf16 out, 4,096 rows, 2 threads, three alternating rounds)
// 5.98 / 6.24 / 6.13 ms against 6.94 / 7.04 / 6.96.
template <int ACT, typename OutT>
EMBEVAL_AMX_INT8_TARGET inline void store_rows(const Pending<OutT>& p, int64_t r0, int64_t r1, int64_t ldy) {
  const __mmask16 m0 = first_lanes16(p.cv), m1 = first_lanes16(p.cv - 16);
  const __mmask32 m01 = p.cv >= 32 ? ~__mmask32{0} : (__mmask32{1} << p.cv) - 1;
  const __m512 w0 = _mm512_loadu_ps(p.sw), w1 = _mm512_loadu_ps(p.sw + 16);
  const __m512 b0 = _mm512_loadu_ps(p.b), b1 = _mm512_loadu_ps(p.b + 16);
  r1 = std::min(r1, p.rv);
  for (int64_t r = r0; r < r1; ++r) {
    const __m512 s = _mm512_set1_ps(p.sx[r]);
    __m512 v0 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(p.acc + r * BLOCK)), w0), s, b0);
    __m512 v1 =
        _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(p.acc + r * BLOCK + 16)), w1), s, b1);
    if constexpr (ACT == static_cast<int>(LinearActivation::gelu_erf)) {
      v0 = gelu_erf16(v0);
      v1 = gelu_erf16(v1);
    }
    OutT* out = p.y + r * ldy;
    if constexpr (sizeof(OutT) == sizeof(float)) {
      _mm512_mask_storeu_ps(out, m0, v0);
      _mm512_mask_storeu_ps(out + 16, m1, v1);
    } else {
      _mm512_mask_storeu_epi16(out, m01, (__m512i)_mm512_cvtne2ps_pbh(v1, v0));
    }
  }
}

template <int ACT, typename OutT>
EMBEVAL_AMX_INT8_TARGET void finish_rows(float* __restrict__ f, int64_t ldf, int64_t rows, int64_t cols,
                                         OutT* __restrict__ y, int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    float* fr = f + r * ldf;
    OutT* out = y + r * ldy;
    for (int64_t j = 0; j < cols; ++j) {
      float v = fr[j];
      EMBEVAL_ACTIVATE(ACT, v);
      if constexpr (sizeof(OutT) == sizeof(float)) {
        out[j] = v;
      } else {
        EMBEVAL_ROUND_BF16(v, out[j]);
      }
    }
  }
}

template <int ACT, typename OutT>
EMBEVAL_AMX_INT8_TARGET void gemm(const int8_t* codes, int64_t rows, int64_t lda, const int8_t* packed,
                                  const float* sx, const float* sw, const float* bias, OutT* y, int64_t ldy,
                                  int64_t c0, int64_t c1) {
  // No activation or GELU: each block's epilogue runs a few rows at a time
  // between the next block's tile instructions (software pipelining), so the
  // vector units work while TDPBSSD does (bert-base FFN-in with the
  // exp-form GELU, 4,096 rows in calls of 256 and 128, 2 threads: 7.5 / 7.8
  // ms against 9.4 / 9.6 with each epilogue after its block, 8.6-9.2 in two
  // passes over the chunk; without GELU the same within noise, 3.4-4.6 ms;
  // with the rational erf, pipelined, 5.8-5.9).
  // Other activations: the two passes of scale_block / finish_rows.
  constexpr bool PIPELINED = ACT == 0 || ACT == static_cast<int>(LinearActivation::gelu_erf);
  const TileConfig config = TileConfig::all16x64();
  _tile_loadconfig(&config);
  const int64_t kb = lda / KSTEP, tile_stride = kb * TILE * 64;  // bytes from one column block's tiles to the next
  const int64_t rows_per_step = (BLOCK + kb - 1) / kb;           // epilogue rows per K step
  const int64_t rp = AmxS8Gemm::rows_padded(rows);
  Pending<OutT> pend[2];
  int cur = 0;
  bool waiting = false;  // pend[cur ^ 1] holds a block whose epilogue is due
  // The chunk's fp32 outputs for the two-pass activations (256 x 128 at
  // most from int8_linear.cpp: 128 KB, in L2).
  thread_local std::vector<float> chunk;
  float* f = nullptr;
  if constexpr (!PIPELINED) {
    if (chunk.size() < static_cast<size_t>(rp * CHUNK)) chunk.resize(static_cast<size_t>(rp * CHUNK));
    f = chunk.data();
  }
  for (int64_t cc = c0; cc < c1; cc += CHUNK) {
    const int64_t ce = std::min(c1, cc + CHUNK);
    for (int64_t m0 = 0; m0 < rows; m0 += BLOCK) {
      const int8_t* a = codes + m0 * lda;
      const int64_t rv = std::min(BLOCK, rows - m0);
      for (int64_t n0 = cc; n0 < ce; n0 += BLOCK) {
        const int8_t* b0 = packed + (n0 / TILE) * tile_stride;
        const int8_t* b1 = b0 + tile_stride;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int64_t i = 0; i < kb; ++i) {
          _tile_loadd(4, a + i * KSTEP, lda);
          _tile_loadd(5, a + TILE * lda + i * KSTEP, lda);
          _tile_loadd(6, b0 + i * TILE * 64, 64);
          _tile_loadd(7, b1 + i * TILE * 64, 64);
          _tile_dpbssd(0, 4, 6);
          _tile_dpbssd(1, 4, 7);
          _tile_dpbssd(2, 5, 6);
          _tile_dpbssd(3, 5, 7);
          if constexpr (PIPELINED) {
            if (waiting) store_rows<ACT>(pend[cur ^ 1], i * rows_per_step, (i + 1) * rows_per_step, ldy);
          }
        }
        Pending<OutT>& p = pend[cur];
        _tile_stored(0, p.acc, BLOCK * 4);
        _tile_stored(1, p.acc + TILE, BLOCK * 4);
        _tile_stored(2, p.acc + TILE * BLOCK, BLOCK * 4);
        _tile_stored(3, p.acc + TILE * BLOCK + TILE, BLOCK * 4);
        p.set(sx, m0, rv, n0, std::min(BLOCK, ce - n0), sw, bias, y, ldy);
        if constexpr (PIPELINED) {
          waiting = true;
          cur ^= 1;
        } else {
          scale_block(p.acc, p.sx, sw + n0, bias + n0, f + m0 * CHUNK + (n0 - cc), CHUNK);
        }
      }
    }
    if constexpr (!PIPELINED) finish_rows<ACT>(f, CHUNK, rows, ce - cc, y + cc, ldy);
  }
  if constexpr (PIPELINED) {
    if (waiting) store_rows<ACT>(pend[cur ^ 1], 0, BLOCK, ldy);
  }
  _tile_release();
}

#define EMBEVAL_VNNI_INT8_TARGET \
  __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx512vnni")))

// 8 rows x 32 columns of int32 sums over the k quads, by VPDPBUSD in
// assembly (vnni_group_gemm.cpp says why not intrinsics): zmm(2 r + c) holds
// row r's columns 16 c .. 16 c + 15; the weights (w + 128, unsigned) are the
// vector operand, each row's 4 codes an embedded broadcast. Row r's codes
// are at a + r lda (a3 = a + 3 lda). acc: 8 rows of 32 int32.
EMBEVAL_VNNI_INT8_TARGET void vnni_8x32(const int8_t* a, int64_t lda, const int8_t* w, int64_t ws, int64_t quads,
                                        int32_t* acc) {
  const int8_t* a3 = a + 3 * lda;
  const int64_t lda3 = 3 * lda;
  asm volatile(
      EMBEVAL_ASM_ZERO_0_15
      "1:\n\t"
      "vmovdqu64 (%[w]), %%zmm16\n\t" "vmovdqu64 (%[w],%[ws],1), %%zmm17\n\t"
      "vpdpbusd (%[a])%{1to16%}, %%zmm16, %%zmm0\n\t" "vpdpbusd (%[a])%{1to16%}, %%zmm17, %%zmm1\n\t"
      "vpdpbusd (%[a],%[lda],1)%{1to16%}, %%zmm16, %%zmm2\n\t" "vpdpbusd (%[a],%[lda],1)%{1to16%}, %%zmm17, %%zmm3\n\t"
      "vpdpbusd (%[a],%[lda],2)%{1to16%}, %%zmm16, %%zmm4\n\t" "vpdpbusd (%[a],%[lda],2)%{1to16%}, %%zmm17, %%zmm5\n\t"
      "vpdpbusd (%[a3])%{1to16%}, %%zmm16, %%zmm6\n\t" "vpdpbusd (%[a3])%{1to16%}, %%zmm17, %%zmm7\n\t"
      "vpdpbusd (%[a],%[lda],4)%{1to16%}, %%zmm16, %%zmm8\n\t" "vpdpbusd (%[a],%[lda],4)%{1to16%}, %%zmm17, %%zmm9\n\t"
      "vpdpbusd (%[a3],%[lda],2)%{1to16%}, %%zmm16, %%zmm10\n\t" "vpdpbusd (%[a3],%[lda],2)%{1to16%}, %%zmm17, %%zmm11\n\t"
      "vpdpbusd (%[a3],%[lda3],1)%{1to16%}, %%zmm16, %%zmm12\n\t" "vpdpbusd (%[a3],%[lda3],1)%{1to16%}, %%zmm17, %%zmm13\n\t"
      "vpdpbusd (%[a3],%[lda],4)%{1to16%}, %%zmm16, %%zmm14\n\t" "vpdpbusd (%[a3],%[lda],4)%{1to16%}, %%zmm17, %%zmm15\n\t"
      "add $4, %[a]\n\t" "add $4, %[a3]\n\t"
      "add $64, %[w]\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      EMBEVAL_ASM_STORE_0_15
      : [a] "+r"(a), [a3] "+r"(a3), [w] "+r"(w), [n] "+r"(quads)
      : [lda] "r"(lda), [lda3] "r"(lda3), [ws] "r"(ws), [acc] "r"(acc)
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm12",
        "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "memory");
}

// The same blocks, packing, epilogue and outputs as gemm above, on a CPU
// with AVX512-VNNI but no AMX: each 32 x 32 block as four 8-row VPDPBUSD
// runs, the weights as unsigned w + 128, so 128 x (the row's code sum over
// lda; codes past k meet weights 0, i.e. 128, in both) comes off every sum
// before the epilogue: the exact int32 products AMX gives.
template <int ACT, typename OutT>
EMBEVAL_VNNI_INT8_TARGET void gemm_vnni(const int8_t* codes, int64_t rows, int64_t lda, const int8_t* packed,
                                        const float* sx, const float* sw, const float* bias, OutT* y, int64_t ldy,
                                        int64_t c0, int64_t c1) {
  constexpr bool PIPELINED = ACT == 0 || ACT == static_cast<int>(LinearActivation::gelu_erf);
  const int64_t kb = lda / KSTEP, tile_stride = kb * TILE * 64;
  const int64_t rp = AmxS8Gemm::rows_padded(rows);
  thread_local std::vector<int32_t> shift;
  if (shift.size() < static_cast<size_t>(rp)) shift.resize(static_cast<size_t>(rp));
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t r = 0; r < rows; ++r) {
    __m512i acc = _mm512_set1_epi32(0);
    for (int64_t k = 0; k < lda; k += 64) acc = _mm512_dpbusd_epi32(acc, ones, _mm512_load_si512(codes + r * lda + k));
    shift[static_cast<size_t>(r)] = 128 * _mm512_reduce_add_epi32(acc);
  }
  thread_local std::vector<float> chunk;
  float* f = nullptr;
  if constexpr (!PIPELINED) {
    if (chunk.size() < static_cast<size_t>(rp * CHUNK)) chunk.resize(static_cast<size_t>(rp * CHUNK));
    f = chunk.data();
  }
  Pending<OutT> p;
  std::fill(p.acc, p.acc + BLOCK * BLOCK, 0);  // rows past a short block's are read by scale_block, never stored
  for (int64_t cc = c0; cc < c1; cc += CHUNK) {
    const int64_t ce = std::min(c1, cc + CHUNK);
    for (int64_t m0 = 0; m0 < rows; m0 += BLOCK) {
      const int64_t rv = std::min(BLOCK, rows - m0);
      for (int64_t n0 = cc; n0 < ce; n0 += BLOCK) {
        const int8_t* b0 = packed + (n0 / TILE) * tile_stride;
        // Only the 8-row runs that hold rows (a short text is a few rows of a
        // padded block); the rest of the block's sums are never stored.
        for (int64_t i = 0; i < rv; i += 8) vnni_8x32(codes + (m0 + i) * lda, lda, b0, tile_stride, lda / 4, p.acc + i * BLOCK);
        for (int64_t r = 0; r < rv; ++r) {
          const __m512i d = _mm512_set1_epi32(shift[static_cast<size_t>(m0 + r)]);
          int32_t* row = p.acc + r * BLOCK;
          _mm512_store_si512(row, _mm512_sub_epi32(_mm512_load_si512(row), d));
          _mm512_store_si512(row + 16, _mm512_sub_epi32(_mm512_load_si512(row + 16), d));
        }
        p.set(sx, m0, rv, n0, std::min(BLOCK, ce - n0), sw, bias, y, ldy);
        if constexpr (PIPELINED) {
          store_rows<ACT>(p, 0, BLOCK, ldy);
        } else {
          scale_block(p.acc, p.sx, sw + n0, bias + n0, f + m0 * CHUNK + (n0 - cc), CHUNK);
        }
      }
    }
    if constexpr (!PIPELINED) finish_rows<ACT>(f, CHUNK, rows, ce - cc, y + cc, ldy);
  }
}

// 16 floats from float32 or bf16 bits (widened exactly), lanes past `live` 0.
EMBEVAL_AMX_INT8_TARGET inline __m512 load16(const float* p, __mmask16 live) { return _mm512_maskz_loadu_ps(live, p); }
EMBEVAL_AMX_INT8_TARGET inline __m512 load16(const uint16_t* p, __mmask16 live) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(live, p)), 16));
}

// a / b rounded to nearest, given y = 1 / b rounded (see quantize() in the
// header for where this equals the division).
EMBEVAL_AMX_INT8_TARGET inline __m512 divide(__m512 a, __m512 b, __m512 y) {
  const __m512 q = _mm512_mul_ps(a, y);
  return _mm512_fmadd_ps(_mm512_fnmadd_ps(b, q, a), y, q);
}

// SMOOTH: 0 none, 1 by reciprocals, 2 by division.
template <int SMOOTH, typename T>
EMBEVAL_AMX_INT8_TARGET inline __m512 smoothed(const T* x, const float* s, const float* rs, int64_t j, __mmask16 live) {
  const __m512 v = load16(x + j, live);
  if constexpr (SMOOTH == 0) {
    return v;
  } else {
    const __m512 d = _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), live, s + j);
    if constexpr (SMOOTH == 1)
      return divide(v, d, _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), live, rs + j));
    else
      return _mm512_div_ps(v, d);
  }
}

// The largest |x| of a row of k values with no smoothing, as integers: for
// floats of one sign the bit patterns order as the values do, so |x| is the
// pattern without its sign bit and the maximum an integer one (bf16: 32
// lanes a vector and no widening; ~3x the float loop's speed, which was
// bound by its dependent max and NaN-probe chains). A pattern at or above
// infinity's means the row holds an infinity or a NaN: *finite = false.
EMBEVAL_AMX_INT8_TARGET inline float row_absmax(const uint16_t* x, int64_t k, bool* finite) {
  const __m512i mag = _mm512_set1_epi16(0x7fff);
  __m512i m0 = _mm512_setzero_si512(), m1 = _mm512_setzero_si512();
  int64_t j = 0;
  for (; j + 64 <= k; j += 64) {
    m0 = _mm512_max_epu16(m0, _mm512_and_si512(_mm512_loadu_si512(x + j), mag));
    m1 = _mm512_max_epu16(m1, _mm512_and_si512(_mm512_loadu_si512(x + j + 32), mag));
  }
  for (; j < k; j += 32) {
    const __mmask32 live = k - j >= 32 ? ~__mmask32{0} : (__mmask32{1} << (k - j)) - 1;
    m0 = _mm512_max_epu16(m0, _mm512_and_si512(_mm512_maskz_loadu_epi16(live, x + j), mag));
  }
  m0 = _mm512_max_epu16(m0, m1);
  const __m512i wide = _mm512_max_epu32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(m0)),
                                        _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(m0, 1)));
  const uint32_t top = _mm512_reduce_max_epu32(wide);
  *finite = top < 0x7f80u;
  const uint32_t bits = top << 16;
  float amax;
  std::memcpy(&amax, &bits, 4);
  return amax;
}
EMBEVAL_AMX_INT8_TARGET inline float row_absmax(const float* x, int64_t k, bool* finite) {
  const __m512i mag = _mm512_set1_epi32(0x7fffffff);
  __m512i m0 = _mm512_setzero_si512(), m1 = _mm512_setzero_si512();
  int64_t j = 0;
  for (; j + 32 <= k; j += 32) {
    m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(x + j), mag));
    m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_loadu_si512(x + j + 16), mag));
  }
  for (; j < k; j += 16) m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_maskz_loadu_epi32(first_lanes16(k - j), x + j), mag));
  const uint32_t top = _mm512_reduce_max_epu32(_mm512_max_epu32(m0, m1));
  *finite = top < 0x7f800000u;
  float amax;
  std::memcpy(&amax, &top, 4);
  return amax;
}

// The same for smoothed values (x / s), in floats, four chains side by side.
template <int SMOOTH, typename T>
EMBEVAL_AMX_INT8_TARGET inline float smoothed_absmax(const T* x, int64_t k, const float* s, const float* rs,
                                                     bool* finite) {
  __m512 top[4], probe[4];
  for (int i = 0; i < 4; ++i) top[i] = probe[i] = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 64 <= k; j += 64)
    for (int i = 0; i < 4; ++i) {
      const __m512 v = smoothed<SMOOTH>(x, s, rs, j + 16 * i, __mmask16(0xFFFF));
      top[i] = _mm512_max_ps(top[i], _mm512_abs_ps(v));
      probe[i] = _mm512_add_ps(probe[i], _mm512_mul_ps(v, _mm512_setzero_ps()));  // NaN once a value is NaN or infinite
    }
  for (; j < k; j += 16) {
    const __m512 v = smoothed<SMOOTH>(x, s, rs, j, first_lanes16(k - j));
    top[0] = _mm512_max_ps(top[0], _mm512_abs_ps(v));
    probe[0] = _mm512_add_ps(probe[0], _mm512_mul_ps(v, _mm512_setzero_ps()));
  }
  const __m512 t = _mm512_max_ps(_mm512_max_ps(top[0], top[1]), _mm512_max_ps(top[2], top[3]));
  const __m512 p = _mm512_add_ps(_mm512_add_ps(probe[0], probe[1]), _mm512_add_ps(probe[2], probe[3]));
  *finite = _mm512_reduce_add_ps(p) == 0.0f;
  return _mm512_reduce_max_ps(t);
}

template <int SMOOTH, typename T>
EMBEVAL_AMX_INT8_TARGET void quantize_rows16(const T* x, int64_t rows, int64_t k, const float* s, const float* rs,
                                             int8_t* codes, int64_t lda, float* scales) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * k;
    int8_t* cr = codes + r * lda;
    bool finite = true;
    const float amax = SMOOTH == 0 ? row_absmax(xr, k, &finite) : smoothed_absmax<SMOOTH>(xr, k, s, rs, &finite);
    if (!finite) {  // NaN in, NaN out: never a silently finite vector
      std::fill(cr, cr + k, int8_t{0});
      scales[r] = NAN;
      continue;
    }
    const float scale = std::max(amax, 1e-5f) / 127.f;
    const __m512 b = _mm512_set1_ps(scale), y = _mm512_set1_ps(1.0f / scale);
    const __m512 lo = _mm512_set1_ps(-127.f), hi = _mm512_set1_ps(127.f);
    // Clamped, then converted with round-half-even embedded in the
    // conversion (the same codes as rounding first: +-127 are integers);
    // 64 codes packed into one store (16-byte masked VPMOVSDB stores took
    // a fifth of this loop's time).
    auto code16 = [&](int64_t j, __mmask16 live) EMBEVAL_AMX_INT8_TARGET {
      const __m512 q = _mm512_min_ps(_mm512_max_ps(divide(smoothed<SMOOTH>(xr, s, rs, j, live), b, y), lo), hi);
      return _mm512_cvt_roundps_epi32(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    };
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    int64_t j = 0;
    for (; j + 64 <= k; j += 64) {
      const __mmask16 all = 0xFFFF;
      // packs work within 128-bit lanes: dword 4 * lane + v holds codes
      // 16 v + 4 lane .. + 3, which `order` puts back in place.
      const __m512i ab = _mm512_packs_epi32(code16(j, all), code16(j + 16, all));
      const __m512i cd = _mm512_packs_epi32(code16(j + 32, all), code16(j + 48, all));
      _mm512_store_si512(cr + j, _mm512_permutexvar_epi32(order, _mm512_packs_epi16(ab, cd)));
    }
    for (; j < k; j += 16) {
      const __mmask16 live = first_lanes16(k - j);
      _mm_mask_storeu_epi8(cr + j, live, _mm512_cvtsepi32_epi8(code16(j, live)));
    }
    scales[r] = scale;
  }
}

}  // namespace

template <typename OutT>
void AmxS8Gemm::run_any(const int8_t* codes, int64_t rows, const float* sx, OutT* y, int64_t ldy, int64_t c0,
                        int64_t c1) const {
  EMBEVAL_ASSERT(c0 % BLOCK == 0 && c0 <= c1 && c1 <= n_ && reinterpret_cast<uintptr_t>(codes) % 64 == 0);
  if (rows <= 0 || c0 == c1) return;
  const int8_t* p = packed_.data_ptr<int8_t>();
  const float* sw = scales_.data_ptr<float>();
  const float* b = bias_.data_ptr<float>();
  if (!tiles_) {
    switch (activation_) {
      case LinearActivation::none: gemm_vnni<0>(codes, rows, lda_, p, sx, sw, b, y, ldy, c0, c1); break;
      case LinearActivation::gelu_erf: gemm_vnni<1>(codes, rows, lda_, p, sx, sw, b, y, ldy, c0, c1); break;
      case LinearActivation::gelu_tanh: gemm_vnni<2>(codes, rows, lda_, p, sx, sw, b, y, ldy, c0, c1); break;
      case LinearActivation::relu: gemm_vnni<3>(codes, rows, lda_, p, sx, sw, b, y, ldy, c0, c1); break;
    }
    return;
  }
  switch (activation_) {
    case LinearActivation::none: gemm<0>(codes, rows, lda_, p, sx, sw, b, y, ldy, c0, c1); break;
    case LinearActivation::gelu_erf: gemm<1>(codes, rows, lda_, p, sx, sw, b, y, ldy, c0, c1); break;
    case LinearActivation::gelu_tanh: gemm<2>(codes, rows, lda_, p, sx, sw, b, y, ldy, c0, c1); break;
    case LinearActivation::relu: gemm<3>(codes, rows, lda_, p, sx, sw, b, y, ldy, c0, c1); break;
  }
}

template <typename T>
void AmxS8Gemm::quantize_any(const T* x, int64_t rows, int8_t* codes, float* scales) const {
  EMBEVAL_ASSERT(reinterpret_cast<uintptr_t>(codes) % 64 == 0);
  const float* s = smooth_.defined() ? smooth_.data_ptr<float>() : nullptr;
  const float* rs = smooth_recip_.defined() ? smooth_recip_.data_ptr<float>() : nullptr;
  if (!s)
    quantize_rows16<0>(x, rows, k_, s, rs, codes, lda_, scales);
  else if (rs)
    quantize_rows16<1>(x, rows, k_, s, rs, codes, lda_, scales);
  else
    quantize_rows16<2>(x, rows, k_, s, rs, codes, lda_, scales);
}

#else

template <typename T>
void AmxS8Gemm::quantize_any(const T*, int64_t, int8_t*, float*) const {
  fail("AmxS8Gemm: this build has no AMX kernels");
}

template <typename OutT>
void AmxS8Gemm::run_any(const int8_t*, int64_t, const float*, OutT*, int64_t, int64_t, int64_t) const {
  fail("AmxS8Gemm: this build has no AMX kernels");
}

#endif

void AmxS8Gemm::quantize(const float* x, int64_t rows, int8_t* codes, float* scales) const {
  quantize_any(x, rows, codes, scales);
}

void AmxS8Gemm::quantize(const uint16_t* x, int64_t rows, int8_t* codes, float* scales) const {
  quantize_any(x, rows, codes, scales);
}

void AmxS8Gemm::run(const int8_t* codes, int64_t rows, const float* sx, float* y, int64_t ldy, int64_t c0,
                    int64_t c1) const {
  run_any(codes, rows, sx, y, ldy, c0, c1);
}

void AmxS8Gemm::run(const int8_t* codes, int64_t rows, const float* sx, uint16_t* y, int64_t ldy, int64_t c0,
                    int64_t c1) const {
  run_any(codes, rows, sx, y, ldy, c0, c1);
}

}  // namespace embeval
