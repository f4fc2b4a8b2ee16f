#include "runners/kernels/cpu_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include <ATen/Parallel.h>

#include "runners/kernels/amx_tiles.h"

#ifdef EMBEVAL_AMX_BUILD
#define EMBEVAL_BF16_ATTENTION 1
// GCC 12 warns that the _mm512_undefined_ps() inside _mm512_max_ps,
// _mm512_roundscale_ps, _mm512_reduce_add_ps and friends "may be" or "is
// used uninitialized" once they are inlined at -O3 (GCC bug 105593, fixed
// in GCC 13): not this code's.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "runners/kernels/avx512_math.h"
#include "runners/kernels/avx512_row_kernels.h"
#endif

namespace embeval {

#ifdef EMBEVAL_BF16_ATTENTION
namespace {

// The AMX products' target; everything else (the copies, the softmax, the
// VDPBF16PS products) is EMBEVAL_AVX512_BF16_TARGET, which runs on a CPU
// with AVX512-BF16 and no AMX.
#define EMBEVAL_AMX_TARGET                                                                                             \
  __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define EMBEVAL_BF16_TARGET EMBEVAL_AVX512_BF16_TARGET

// Tiles: C0-C3 accumulate four 16 x 16 blocks of a product (query rows 0-15
// and 16-31 of a block x two blocks of 16 columns), A4, A5 hold those query
// rows of the left operand and B6, B7 the two column blocks of the right
// one. Four independent accumulators, not two: a TDPBF16PS must wait for the
// one before it on the same tile, and with two the products were bound by
// that latency (perf: most of the kernel's time on the tile instructions;
// see cpu_attention.h for the times).
constexpr int64_t QBLOCK = 32, KCHUNK = 32, TILE = 16;

// One thread's buffers for a head (all heads of a call share t and hd, so
// the padding written as zeros at allocation stays zero).
struct HeadBuffers {
  int64_t t, hd, tp, hdp;
  std::vector<uint16_t> q;   // [amx_round_up(t, 32)][hdp]: Q, zero-padded
  std::vector<uint32_t> kt;  // [hdp / 2][tp]: kt[i][n] = (K[n][2i], K[n][2i+1])
  std::vector<uint16_t> v;   // [tp / 2][hdp][2]: v[m][c] = (V[2m][c], V[2m+1][c])
  std::vector<float> s;      // [32][tp]: a block's scores
  std::vector<uint16_t> p;   // [32][tp]: its probabilities, bf16, zero past t
  std::vector<float> o;      // [32][hdp]: its context, fp32
  HeadBuffers(int64_t t_, int64_t hd_)
      : t(t_), hd(hd_), tp(amx_round_up(t_, KCHUNK)), hdp(amx_round_up(hd_, 32)), q(amx_round_up(t_, QBLOCK) * hdp),
        kt(hdp / 2 * tp), v(tp / 2 * hdp * 2), s(QBLOCK * tp), p(QBLOCK * tp), o(QBLOCK * hdp) {}
};

// A call's arguments; Elem is uint16_t (bf16 bits) or float.
template <class Elem>
struct JobOf {
  const Elem* qkv;
  const float* mask;
  Elem* ctx;
  int64_t t, heads, hd;
  float scale;
};
using Job = JobOf<uint16_t>;

// Q rows from `first` on copied into q (head width padded with zeros).
EMBEVAL_BF16_TARGET void copy_q(const uint16_t* src, int64_t row_stride, int64_t first, HeadBuffers& w) {
  for (int64_t i = first; i < w.t; ++i)
    for (int64_t c = 0; c < w.hd; c += 32) {
      const __mmask32 live = c + 32 <= w.hd ? ~__mmask32{0} : (__mmask32{1} << (w.hd - c)) - 1;
      _mm512_storeu_si512(w.q.data() + i * w.hdp + c, _mm512_maskz_loadu_epi16(live, src + i * row_stride + c));
    }
}

// kt[i][n0..n0+16) (rows ldk dwords apart) = dword i of 16 key rows (src,
// rows row_stride dwords apart; `dwords` a row: a bf16 pair or an fp32),
// for the first `keys` keys (rows past them read as 0): 16 x 16 dword
// blocks transposed in registers.
EMBEVAL_BF16_TARGET void transpose_dwords(const uint32_t* src, int64_t row_stride, int64_t dwords, int64_t keys,
                                          uint32_t* kt, int64_t ldk) {
  for (int64_t n0 = 0; n0 < keys; n0 += TILE) {
    const int64_t rows = std::min<int64_t>(TILE, keys - n0);
    for (int64_t c0 = 0; c0 < dwords; c0 += 16) {
      const __mmask16 cols = first_lanes16(dwords - c0);
      __m512i r[16];
      for (int64_t i = 0; i < TILE; ++i)
        r[i] = i < rows ? _mm512_maskz_loadu_epi32(cols, src + (n0 + i) * row_stride + c0) : _mm512_setzero_si512();
      transpose16x16(r);
      for (int64_t i = 0; i < TILE && c0 + i < dwords; ++i) _mm512_storeu_si512(kt + (c0 + i) * ldk + n0, r[i]);
    }
  }
}
EMBEVAL_BF16_TARGET void transpose_k(const uint16_t* src, int64_t row_stride, int64_t keys, HeadBuffers& w) {
  transpose_dwords(reinterpret_cast<const uint32_t*>(src), row_stride / 2, w.hd / 2, keys, w.kt.data(), w.tp);
}

// v[m] interleaves value rows 2m and 2m + 1 for the first `keys` rows, and
// zeros up to the next multiple of 32 (the probabilities there are 0, and
// 0 times a stale value could be NaN).
EMBEVAL_BF16_TARGET void interleave_v(const uint16_t* src, int64_t row_stride, int64_t keys, HeadBuffers& w) {
  alignas(64) static const uint16_t lo[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                              8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  const __m512i lo_idx = _mm512_load_si512(lo), hi_idx = _mm512_add_epi16(lo_idx, _mm512_set1_epi16(16));
  for (int64_t r = 0; r < keys; r += 2) {
    const uint16_t* a = src + r * row_stride;
    const uint16_t* b = a + row_stride;
    uint16_t* out = w.v.data() + (r / 2) * w.hdp * 2;
    for (int64_t c = 0; c < w.hd; c += 32) {
      const __mmask32 live = c + 32 <= w.hd ? ~__mmask32{0} : (__mmask32{1} << (w.hd - c)) - 1;
      const __m512i x = _mm512_maskz_loadu_epi16(live, a + c);
      const __m512i y = r + 1 < keys ? _mm512_maskz_loadu_epi16(live, b + c) : _mm512_setzero_si512();
      _mm512_storeu_si512(out + 2 * c, _mm512_permutex2var_epi16(x, lo_idx, y));
      _mm512_storeu_si512(out + 2 * c + 32, _mm512_permutex2var_epi16(x, hi_idx, y));
    }
  }
  const int64_t done = amx_round_up(keys, 2) / 2, end = amx_round_up(keys, KCHUNK) / 2;
  std::fill(w.v.data() + done * w.hdp * 2, w.v.data() + end * w.hdp * 2, uint16_t{0});
}

// Keys a row's mask sets at or below this add exactly 0 to the softmax (a
// scaled score would have to reach ~1e20 for exp to see them; BERT's mask
// is the dtype's lowest value, -3.4e38) ...
constexpr float MASKED = -1e20f;

// ... so the products and the softmax stop after the last key not so
// masked (BERT pads on the right; FlashAttention's variable-length form
// does the same). All keys where every one is masked, as the reference.
int64_t live_keys(const float* mask, int64_t t) {
  int64_t n = t;
  while (n > 0 && mask[n - 1] <= MASKED) --n;
  return n > 0 ? n : t;
}

// Whether a row's mask adds anything to its first `keys` scores (BERT's
// right padding: the live keys' mask is all 0, the rest were cut by
// live_keys).
bool mask_adds(const float* mask, int64_t keys) {
  for (int64_t j = 0; j < keys; ++j)
    if (mask[j] != 0.0f) return true;
  return false;
}

// p = bf16(exp(s * scale + mask - max)) for R rows of t (stride ld), and
// inv[r] = 1 / the row's fp32 sum of those exponentials (before rounding),
// by which the context rows are multiplied later: the probabilities'
// normalisation moved past the product P V, as FlashAttention does (32 x
// hd multiplications where there were 32 x t, and no third pass over the
// scores). Two passes, the R rows side by side: the maximum (of s * scale
// + mask, written back, where the mask adds something; of s alone, the
// scale being positive, where it adds nothing), then exp, sum and rounding
// (VCVTNE2PS2BF16, nearest even), 32 at a time, exp as avx512_math.h's
// exp2_for_bf16_16 (3e-6 relative, where rounding to bf16 next costs
// 2^-9); columns t..amx_round_up(t, 32) written as 0. A row alone is a
// chain of dependent steps (the running maximum and sum, their lane
// reductions, the division); four at a time the CPU overlaps them.
// bert-base shape (BM_attention_bf16, seq 128, batch 32, 2 threads): see
// cpu_attention.h. With P = float (the fp32 kernel) the exponentials are
// stored unrounded, computed as exp_nonpositive16 (1e-7 relative) of the
// same differences in natural-log units.
template <int R, class P>
EMBEVAL_BF16_TARGET inline void softmax_rows(float* s, const float* mask, int64_t t, int64_t ld, float scale, P* p,
                                             float* inv) {
  constexpr bool F32 = std::is_same_v<P, float>;
  const __m512 vscale = _mm512_set1_ps(scale);
  const int64_t whole = t / 16 * 16;
  const __mmask16 tail = first_lanes16(t - whole);
  __m512 top[R], sum[R], mul[R], add[R];
  for (int r = 0; r < R; ++r) top[r] = _mm512_set1_ps(-INFINITY);
  if (mask) {
    for (int64_t j = 0; j < whole; j += 16) {
      const __m512 mk = _mm512_loadu_ps(mask + j);
      for (int r = 0; r < R; ++r) {
        const __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(s + r * ld + j), vscale, mk);
        _mm512_storeu_ps(s + r * ld + j, v);
        top[r] = _mm512_max_ps(top[r], v);
      }
    }
    if (whole < t) {
      const __m512 mk = _mm512_maskz_loadu_ps(tail, mask + whole);
      for (int r = 0; r < R; ++r) {
        const __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, s + r * ld + whole), vscale, mk);
        _mm512_storeu_ps(s + r * ld + whole, v);  // within the row's stride
        top[r] = _mm512_mask_max_ps(top[r], tail, top[r], v);
      }
    }
  } else {
    for (int64_t j = 0; j < whole; j += 16)
      for (int r = 0; r < R; ++r) top[r] = _mm512_max_ps(top[r], _mm512_loadu_ps(s + r * ld + j));
    if (whole < t)
      for (int r = 0; r < R; ++r)
        top[r] = _mm512_mask_max_ps(top[r], tail, top[r], _mm512_loadu_ps(s + r * ld + whole));
  }
  // exp(x * a - max) = 2^t: where the mask adds, x is the stored s * scale
  // + mask and t = (x - max) log2 e (the difference first: max log2 e
  // overflows where every key is masked, max ~ -3.4e38); where it does
  // not, x is the raw score and t = x (scale log2 e) - max (scale log2 e),
  // one FMA.
  constexpr float LOG2E = 1.44269504088896341f;
  const float unit = F32 ? 1.0f : LOG2E;  // exp's argument in nats (fp32) or bits (bf16)
  for (int r = 0; r < R; ++r) {
    const float m = _mm512_reduce_max_ps(top[r]), a = mask ? unit : scale * unit;
    mul[r] = _mm512_set1_ps(a);
    add[r] = _mm512_set1_ps(mask ? -m : -m * a);
    sum[r] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < t; j += 32) {
    const __mmask16 m0 = j + 16 <= t ? __mmask16(0xffff) : first_lanes16(t - j);
    const __mmask16 m1 = first_lanes16(t - j - 16);
    for (int r = 0; r < R; ++r) {
      const float* x = s + r * ld + j;
      const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
      const __m512 t0 = mask ? _mm512_mul_ps(_mm512_add_ps(x0, add[r]), mul[r]) : _mm512_fmadd_ps(x0, mul[r], add[r]);
      const __m512 t1 = mask ? _mm512_mul_ps(_mm512_add_ps(x1, add[r]), mul[r]) : _mm512_fmadd_ps(x1, mul[r], add[r]);
      const __m512 lo = _mm512_maskz_mov_ps(m0, F32 ? exp_nonpositive16(t0) : exp2_for_bf16_16(t0));
      const __m512 hi = !m1 ? _mm512_setzero_ps()
                            : _mm512_maskz_mov_ps(m1, F32 ? exp_nonpositive16(t1) : exp2_for_bf16_16(t1));
      sum[r] = _mm512_add_ps(sum[r], _mm512_add_ps(lo, hi));
      if constexpr (F32) {
        _mm512_storeu_ps(p + r * ld + j, lo);
        _mm512_storeu_ps(p + r * ld + j + 16, hi);
      } else {
        _mm512_storeu_si512(p + r * ld + j, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
      }
    }
  }
  for (int r = 0; r < R; ++r) inv[r] = 1.0f / _mm512_reduce_add_ps(sum[r]);
}

template <class P>
EMBEVAL_BF16_TARGET void softmax_block(float* s, const float* mask, int64_t rows, int64_t t, int64_t ld, float scale,
                                       P* p, float* inv) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) softmax_rows<4>(s + r * ld, mask, t, ld, scale, p + r * ld, inv + r);
  for (; r < rows; ++r) softmax_rows<1>(s + r * ld, mask, t, ld, scale, p + r * ld, inv + r);
}

// The block's context rows (fp32, o, rows hdp apart) normalised by the
// softmax's 1 / sum and rounded to bf16 (nearest even) into the output
// rows (out, rows h apart).
EMBEVAL_BF16_TARGET void store_context(const float* o, int64_t hdp, const float* inv, int64_t rows, int64_t hd,
                                       uint16_t* out, int64_t h) {
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 norm = _mm512_set1_ps(inv[r]);
    for (int64_t e = 0; e < hd; e += TILE)
      _mm256_mask_storeu_epi16(out + r * h + e, first_lanes16(hd - e),
                               (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_loadu_ps(o + r * hdp + e), norm)));
  }
}
// The same into fp32 output rows (the fp32 kernel).
EMBEVAL_BF16_TARGET void store_context(const float* o, int64_t hdp, const float* inv, int64_t rows, int64_t hd,
                                       float* out, int64_t h) {
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 norm = _mm512_set1_ps(inv[r]);
    for (int64_t e = 0; e < hd; e += TILE)
      _mm512_mask_storeu_ps(out + r * h + e, first_lanes16(hd - e), _mm512_mul_ps(_mm512_loadu_ps(o + r * hdp + e), norm));
  }
}

// The four accumulators C0-C3 (see QBLOCK): zeroed; += the 32 x 32 block
// of A (rows a, a + lda bytes, ...: A4 its rows 0-15, A5 rows 16-31) times
// the two B tiles at b0 and b1 (rows ldb bytes apart); stored as the 32 x
// 32 fp32 block at c (rows ldc floats apart).
EMBEVAL_AMX_TARGET inline void zero_quad() {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
}
EMBEVAL_AMX_TARGET inline void multiply_quad(const uint16_t* a, int64_t lda, const void* b0, const void* b1, int64_t ldb) {
  _tile_loadd(4, a, lda);
  _tile_loadd(5, reinterpret_cast<const char*>(a) + TILE * lda, lda);
  _tile_loadd(6, b0, ldb);
  _tile_loadd(7, b1, ldb);
  _tile_dpbf16ps(0, 4, 6);
  _tile_dpbf16ps(1, 5, 6);
  _tile_dpbf16ps(2, 4, 7);
  _tile_dpbf16ps(3, 5, 7);
}
EMBEVAL_AMX_TARGET inline void store_quad(float* c, int64_t ldc) {
  _tile_stored(0, c, ldc * 4);
  _tile_stored(1, c + TILE * ldc, ldc * 4);
  _tile_stored(2, c + TILE, ldc * 4);
  _tile_stored(3, c + TILE * ldc + TILE, ldc * 4);
}

// One head of one batch row, every step on this thread.
EMBEVAL_AMX_TARGET void attend_head(const Job& job, int64_t row, int64_t head, HeadBuffers& w) {
  const int64_t t = job.t, h = job.heads * job.hd, stride = 3 * h, tp = w.tp, hdp = w.hdp;
  const uint16_t* base = job.qkv + row * t * stride + head * job.hd;
  const float* mask = job.mask + row * t;
  const int64_t keys = live_keys(mask, t), kp = amx_round_up(keys, KCHUNK);
  const float* added = mask_adds(mask, keys) ? mask : nullptr;
  // Whole blocks of 32 query rows are read by the tile loads straight from
  // the projection where the head width needs no padding (a tile row is 32
  // bf16, TILELOADD takes any stride); the rest is copied, padded.
  const bool direct_q = job.hd % 32 == 0;
  const int64_t copied_from = direct_q ? t / QBLOCK * QBLOCK : 0;
  copy_q(base, stride, copied_from, w);
  transpose_k(base + h, stride, keys, w);
  interleave_v(base + 2 * h, stride, keys, w);
  uint16_t* out = job.ctx + row * t * h + head * job.hd;
  float* s = w.s.data();
  float* o = w.o.data();
  const uint16_t* pr = w.p.data();
  for (int64_t q0 = 0; q0 < t; q0 += QBLOCK) {
    // scores = Q K^T for query rows q0..q0+32, keys in blocks of 32.
    const bool in_place = q0 < copied_from;
    const uint16_t* q = in_place ? base + q0 * stride : w.q.data() + q0 * hdp;
    const int64_t ldq = in_place ? stride * 2 : hdp * 2;  // bytes
    if (hdp == 64) {
      // Head width 64 (bert-base's): the block's Q held in tiles 4-7 (rows
      // 0-15 / 16-31 x widths 0-31 / 32-63) while 16 keys at a time pass
      // through tiles 2-3 (K^T's two halves) into accumulators 0-1: two
      // tile loads a 16 x 32 block of scores where the quads below load
      // four (Q again for every 32 keys).
      const char* qb = reinterpret_cast<const char*>(q);
      _tile_loadd(4, qb, ldq);
      _tile_loadd(5, qb + TILE * ldq, ldq);
      _tile_loadd(6, qb + 64, ldq);
      _tile_loadd(7, qb + TILE * ldq + 64, ldq);
      for (int64_t k0 = 0; k0 < keys; k0 += TILE) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_loadd(2, w.kt.data() + k0, tp * 4);
        _tile_loadd(3, w.kt.data() + TILE * tp + k0, tp * 4);
        _tile_dpbf16ps(0, 4, 2);
        _tile_dpbf16ps(1, 5, 2);
        _tile_dpbf16ps(0, 6, 3);
        _tile_dpbf16ps(1, 7, 3);
        _tile_stored(0, s + k0, tp * 4);
        _tile_stored(1, s + TILE * tp + k0, tp * 4);
      }
    } else {
      for (int64_t k0 = 0; k0 < keys; k0 += KCHUNK) {
        zero_quad();
        for (int64_t c = 0; c < hdp; c += 32) {
          const uint32_t* kt = w.kt.data() + (c / 2) * tp + k0;
          multiply_quad(q + c, ldq, kt, kt + TILE, tp * 4);
        }
        store_quad(s + k0, tp);
      }
    }
    const int64_t rows = std::min(QBLOCK, t - q0);
    alignas(64) float inv[QBLOCK];
    softmax_block(s, added, rows, keys, tp, job.scale, w.p.data(), inv);
    // context = P V, 32 columns of the head at a time, keys in chunks of 32.
    for (int64_t d0 = 0; d0 < job.hd; d0 += 32) {
      zero_quad();
      for (int64_t k0 = 0; k0 < kp; k0 += KCHUNK) {
        const uint16_t* v = w.v.data() + (k0 / 2) * hdp * 2 + d0 * 2;
        multiply_quad(pr + k0, tp * 2, v, v + 2 * TILE, hdp * 4);
      }
      store_quad(o + d0, hdp);
    }
    store_context(o, hdp, inv, rows, job.hd, out + q0 * h, h);
  }
}

// ---- The same steps with VDPBF16PS (AVX512-BF16) products, no tiles ----
//
// For a CPU with AVX512-BF16 and no AMX (AMD Zen 4, Intel Cooper Lake):
// the same buffers, layouts, softmax and normalisation as above, the two
// products as VDPBF16PS (16 lanes, each += a pair of bf16 products, the
// same fp32 arithmetic as TDPBF16PS's) over the very layouts the tiles
// read: K^T's dword pairs and V's interleaved row pairs are what a zmm of
// the instruction's second operand needs, and the left operand (a Q row's
// dword pair, a row's two probabilities) is one 32-bit broadcast straight
// from memory, so Q is read from the projection in place, never copied.
//
// Measured (AMD EPYC Zen 4, 2 vCPUs; BM_attention_bf16 form 2 against the
// oneDNN forms, form 1, the same process, three rounds; bert-base's 12
// heads of 64, batch 32, half the rows half padding): seq 128 5.2-5.8 ms
// against 12.1-13.4, seq 512 57-61 ms against 161-187. Of the 1.21 GFLOP
// the seq-128 call computes (masked keys skipped), perf puts 52% of the
// time in vdp_8x32, ~2.8 ms: ~93% of two cores' VDPBF16PS rate (one a
// cycle, 470 GFLOP/s); the softmax takes 9%, K's and V's copies 11%.
// Written with intrinsics first (per-row kernels, GCC's registers): 5.5
// and 65.7 ms. In bert-base's bf16 layer (BM_layer_breakdown, batch 32):
// 6.1 ms against 12.0 for bf16, 7.2 against 14.1 for bf16+W8A8. The
// products: avx512_row_kernels.h (vdp_8x32), shared with the bf16 GEMM.

// Thread k of n takes the (batch row, head) items k, k + n, k + 2n, ...:
// neighbouring items are heads of one row and cost the same, so each thread
// gets an even share whatever the rows' lengths. In contiguous runs the
// thread holding the longer rows kept the other waiting (bert-base forward,
// seq 512, bf16: 2.25-2.30 s dealt out, 2.40-2.73 s in runs).
EMBEVAL_AMX_TARGET void attend_items_amx(const Job& job, int64_t first, int64_t step, int64_t items) {
  const TileConfig config = TileConfig::all16x64();  // every tile 16 x 64 bytes (TILE rows)
  _tile_loadconfig(&config);
  HeadBuffers w(job.t, job.hd);
  for (int64_t item = first; item < items; item += step) attend_head(job, item / job.heads, item % job.heads, w);
  _tile_release();
}

// ---- fp32: the same steps with FMA products ----
//
// The fp32 model's attention (fp32, weight-only and W8A8 forms, whose
// activations stay fp32): scores and context as vfmadd231ps in fma_8x32,
// the left operand (a Q row's fp32, a row's probability) broadcast from its
// row, K transposed into kt[d][key] as for bf16 (a dword is one fp32 now),
// V read in place (a value row's 32 floats are the instruction's right
// operand) where the head width is a multiple of 32, else copied padded;
// the softmax above with fp32 exponentials (exp_nonpositive16, unrounded),
// normalised after the product, written as fp32.
//
// Measured (Zen 4, BM_attention_fp32, the same process, three rounds;
// bert-base's 12 heads, batch 32, half the rows half padding): seq 512
// 110-115 ms against the oneDNN forms' 205-220; seq 128 8.2-9.1 against
// 10.6-12.4 (perf: fma_8x32 57% of the time, at about the FMA rate; the
// rest mostly the context's stores to memory and K's transposes). Inside
// bert-base's fp32 layer at seq 128 (BM_layer_breakdown, every key live)
// no gain: 10.7-12.1 ms against 11.0-11.5, both reading the 38 MB Q/K/V
// projection from memory; the fp32 forward at seq 512 (BM_encoder, two
// rounds) 15.4-15.6 s against 16.0-16.2, at seq 128 the same.
struct F32Buffers {
  int64_t t, hd, tp, hdp;
  std::vector<float> q;   // [8][hd]: a last group of fewer than 8 query rows, zero-padded
  std::vector<float> kt;  // [hd][tp]: K^T
  std::vector<float> v;   // [t][hdp]: V padded to a multiple of 32 columns (hd % 32 != 0 only)
  std::vector<float> s;   // [32][tp]: a block's scores
  std::vector<float> p;   // [32][tp]: its exponentials, zero past t
  std::vector<float> o;   // [32][hdp]: its context
  F32Buffers(int64_t t_, int64_t hd_)
      : t(t_), hd(hd_), tp(amx_round_up(t_, KCHUNK)), hdp(amx_round_up(hd_, 32)), q(8 * hd_), kt(hd_ * tp),
        v(hd_ % 32 ? t_ * hdp : 0), s(QBLOCK * tp), p(QBLOCK * tp), o(QBLOCK * hdp) {}
};

using F32Job = JobOf<float>;

// One head of one batch row with VDPBF16PS (Elem = uint16_t, bf16) or FMA
// (Elem = float) products: attend_head's steps with the row kernels above.
// Rows go 8 at a time (a block's s, p and o hold 32, so a last group's
// extra rows land in them and are never read); Q rows past t would be read
// past the projection, so a last group short of 8 rows is copied, padded
// with zero rows, into w.q first. K^T is dwords (a bf16 pair or one fp32);
// V is interleaved row pairs for bf16, the value rows in place for fp32
// (copied, padded, where the head is not a multiple of 32 wide).
template <class Elem, class Buffers>
EMBEVAL_BF16_TARGET void attend_head_rows(const JobOf<Elem>& job, int64_t row, int64_t head, Buffers& w) {
  constexpr bool F32 = std::is_same_v<Elem, float>;
  constexpr int64_t PER_DWORD = F32 ? 1 : 2, P_BYTES = F32 ? 4 : 2;
  const auto product = F32 ? fma_8x32 : vdp_8x32;
  const int64_t t = job.t, hd = job.hd, h = job.heads * hd, stride = 3 * h, tp = w.tp, hdp = w.hdp;
  const Elem* base = job.qkv + row * t * stride + head * hd;
  const float* mask = job.mask + row * t;
  const int64_t keys = live_keys(mask, t);
  const float* added = mask_adds(mask, keys) ? mask : nullptr;
  transpose_dwords(reinterpret_cast<const uint32_t*>(base + h), stride / PER_DWORD, hd / PER_DWORD, keys,
                   reinterpret_cast<uint32_t*>(w.kt.data()), tp);
  const Elem* v = w.v.data();  // the context's right operand: a key step's 32 outputs at v + step * ldv bytes
  int64_t ldv = hdp * 4;
  if constexpr (F32) {
    v = base + 2 * h;
    ldv = stride * 4;
    if (hd % 32 != 0) {
      for (int64_t j = 0; j < keys; ++j) std::memcpy(w.v.data() + j * hdp, v + j * stride, hd * sizeof(float));
      v = w.v.data();  // columns hd..hdp stay 0
      ldv = hdp * 4;
    }
  } else {
    interleave_v(base + 2 * h, stride, keys, w);
  }
  // Key steps of P V: bf16 takes keys in pairs (past `keys` the
  // probabilities and the values are 0; an odd count's last pair holds one
  // of each).
  const int64_t key_steps = F32 ? keys : (keys + 1) / 2, q_steps = hd / PER_DWORD, whole = t / 8 * 8;
  const Elem* tail = w.q.data();  // rows whole..t, zero rows after them
  int64_t ld_tail = hd;
  if constexpr (F32) {
    if (whole < t) {
      std::fill(w.q.begin(), w.q.end(), 0.0f);
      for (int64_t i = whole; i < t; ++i) std::memcpy(w.q.data() + (i - whole) * hd, base + i * stride, hd * 4);
    }
  } else {
    if (whole < t) copy_q(base, stride, whole, w);  // at their own rows, zeros after them (w.q's padding)
    tail = w.q.data() + whole * hdp;
    ld_tail = hdp;
  }
  Elem* out = job.ctx + row * t * h + head * hd;
  float* s = w.s.data();
  float* o = w.o.data();
  for (int64_t q0 = 0; q0 < t; q0 += QBLOCK) {
    const int64_t rows = std::min(QBLOCK, t - q0);
    // Scores in blocks of 32 keys (K^T is there up to a multiple of 32
    // keys: zeros past t, and past `keys` what an earlier head left, whose
    // scores the softmax never reads).
    for (int64_t r = 0; r < rows; r += 8) {
      const bool in_place = q0 + r + 8 <= t;
      const Elem* q = in_place ? base + (q0 + r) * stride : tail;
      const int64_t ldq = (in_place ? stride : ld_tail) * int64_t{sizeof(Elem)};
      for (int64_t k0 = 0; k0 < keys; k0 += 32)
        product(q, ldq, w.kt.data() + k0, 64, tp * 4, q_steps, s + r * tp + k0, tp * 4);
    }
    alignas(64) float inv[QBLOCK];
    softmax_block(s, added, rows, keys, tp, job.scale, w.p.data(), inv);
    // Context 32 columns of the head at a time (padding columns are 0).
    for (int64_t r = 0; r < rows; r += 8)
      for (int64_t d0 = 0; d0 < hd; d0 += 32)
        product(w.p.data() + r * tp, tp * P_BYTES, reinterpret_cast<const char*>(v) + d0 * 4, 64, ldv, key_steps,
                o + r * hdp + d0, hdp * 4);  // column d0 is byte 4 d0 of a step (a bf16 pair or an fp32)
    store_context(o, hdp, inv, rows, hd, out + q0 * h, h);
  }
}

EMBEVAL_BF16_TARGET void attend_items_vdp(const Job& job, int64_t first, int64_t step, int64_t items) {
  HeadBuffers w(job.t, job.hd);
  for (int64_t item = first; item < items; item += step) attend_head_rows(job, item / job.heads, item % job.heads, w);
}

EMBEVAL_BF16_TARGET void attend_items_f32(const F32Job& job, int64_t first, int64_t step, int64_t items) {
  F32Buffers w(job.t, job.hd);
  for (int64_t item = first; item < items; item += step) attend_head_rows(job, item / job.heads, item % job.heads, w);
}

bool amx_ready() {
  return cpu_has_amx_bf16() && cpu_has_avx512_bf16() && amx_tile_permission();
}

bool switched_off(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

}  // namespace

bool bf16_attention_runs(Bf16AttentionProducts products) {
  switch (products) {
    case Bf16AttentionProducts::amx: return amx_ready();
    case Bf16AttentionProducts::avx512_bf16: return cpu_has_avx512_bf16();
    case Bf16AttentionProducts::none: break;
  }
  return false;
}

Bf16AttentionProducts bf16_attention_products() {
  if (switched_off("EMBEVAL_NO_BF16_ATTENTION")) return Bf16AttentionProducts::none;
  if (!switched_off("EMBEVAL_NO_AMX_ATTENTION") && bf16_attention_runs(Bf16AttentionProducts::amx))
    return Bf16AttentionProducts::amx;
  if (bf16_attention_runs(Bf16AttentionProducts::avx512_bf16)) return Bf16AttentionProducts::avx512_bf16;
  return Bf16AttentionProducts::none;
}

bool bf16_attention(const uint16_t* qkv, const float* mask, int64_t b, int64_t t, int64_t heads, int64_t hd,
                    uint16_t* ctx, Bf16AttentionProducts products) {
  if (products == Bf16AttentionProducts::none || !bf16_attention_runs(products) || hd % 2 != 0 || b <= 0 || t <= 0 ||
      heads <= 0)
    return false;
  const Job job{qkv, mask, ctx, t, heads, hd, static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)))};
  const int64_t items = b * heads, threads = std::min<int64_t>(at::get_num_threads(), items);
  const bool amx = products == Bf16AttentionProducts::amx;
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      if (amx) attend_items_amx(job, k, threads, items);
      else attend_items_vdp(job, k, threads, items);
    }
  });
  return true;
}

bool fp32_attention_available() {
  return !switched_off("EMBEVAL_NO_FP32_ATTENTION") && cpu_has_avx512_bf16();
}

bool fp32_attention(const float* qkv, const float* mask, int64_t b, int64_t t, int64_t heads, int64_t hd, float* ctx) {
  if (!fp32_attention_available() || b <= 0 || t <= 0 || heads <= 0 || hd <= 0) return false;
  const F32Job job{qkv, mask, ctx, t, heads, hd, static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)))};
  const int64_t items = b * heads, threads = std::min<int64_t>(at::get_num_threads(), items);
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) attend_items_f32(job, k, threads, items);
  });
  return true;
}

#else

bool fp32_attention_available() { return false; }
bool fp32_attention(const float*, const float*, int64_t, int64_t, int64_t, int64_t, float*) { return false; }
bool bf16_attention_runs(Bf16AttentionProducts) { return false; }
Bf16AttentionProducts bf16_attention_products() { return Bf16AttentionProducts::none; }
bool bf16_attention(const uint16_t*, const float*, int64_t, int64_t, int64_t, int64_t, uint16_t*,
                    Bf16AttentionProducts) {
  return false;
}

#endif

const char* bf16_attention_name(Bf16AttentionProducts products) {
  switch (products) {
    case Bf16AttentionProducts::amx: return "amx";
    case Bf16AttentionProducts::avx512_bf16: return "avx512_bf16";
    case Bf16AttentionProducts::none: break;
  }
  return "none";
}

}  // namespace embeval
