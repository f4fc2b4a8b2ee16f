#include "runners/kernels/amx_bf16_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>

#include "harness/error.h"
#include "runners/kernels/amx_tiles.h"

#ifdef EMBEVAL_AMX_BUILD
// GCC 12's "may be used uninitialized" on the _mm512_undefined_* inside
// AVX-512 intrinsics once inlined at -O3 (GCC bug 105593): not this code's.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "runners/kernels/avx512_math.h"
#include "runners/kernels/avx512_row_kernels.h"
#endif

namespace embeval {

namespace {

// Tiles of 16 rows x 64 bytes: 32 bf16 of K a row of x, 16 k pairs x 16
// columns of weights; outputs in 32 x 32 blocks (four accumulator tiles).
constexpr int64_t TILE = 16, BLOCK = 32, KSTEP = 32;
// Columns a chunk: its weights (k x 128 bf16: 192 KB at k = 768) stay in L2
// while the row blocks pass. bert-base's 768 -> 768 / 768 -> 3072 / 3072 ->
// 768 at 4,096 rows, 2 threads, two rounds (ms; noisy): chunks of 64 2.15 /
// 9.52 / 12.0 and 2.70 / 9.31 / 10.7, of 128 2.08 / 9.22 / 10.5 and 2.28 /
// 10.8 / 10.2, of 256 2.30 / 10.7 / 10.8 and 2.14 / 9.70 / 14.3, of 768
// 2.32 / 9.85 / 13.5 and 2.43 / 10.1 / 13.2.
constexpr int64_t CHUNK = 128;

}  // namespace

int64_t AmxBf16Gemm::packed_elements(int64_t n, int64_t k) {
  return amx_round_up(std::max<int64_t>(n, 1), BLOCK) * amx_round_up(std::max<int64_t>(k, 1), KSTEP);
}

bool AmxBf16Gemm::uses_tiles() {
#ifdef EMBEVAL_AMX_BUILD
  static const bool tiles = cpu_has_amx_bf16() && cpu_has_avx512_bf16() && amx_tile_permission();
  return tiles;
#else
  return false;
#endif
}

bool AmxBf16Gemm::available() {
#ifdef EMBEVAL_AMX_BUILD
  const char* off = std::getenv("EMBEVAL_NO_AMX_BF16_GEMM");
  if (off && *off && std::strcmp(off, "0") != 0) return false;
  return uses_tiles() || cpu_has_avx512_bf16();
#else
  return false;
#endif
}

AmxBf16Gemm::AmxBf16Gemm(const at::Tensor& weight, const at::Tensor& bias, LinearActivation activation)
    : activation_(activation) {
  // Asks for the tile state too (a tile instruction without it is SIGILL).
  if (!available())
    fail("AmxBf16Gemm: this CPU, kernel or build has neither AMX bf16 nor AVX512-BF16 (or EMBEVAL_NO_AMX_BF16_GEMM is set)");
  EMBEVAL_ASSERT(weight.dim() == 2 && fuses(activation));
  n_ = weight.size(0);
  k_ = weight.size(1);
  EMBEVAL_ASSERT(!bias.defined() || bias.numel() == n_);
  lda_ = amx_round_up(std::max<int64_t>(k_, 1), KSTEP);
  const int64_t np = amx_round_up(std::max<int64_t>(n_, 1), BLOCK);
  const at::Tensor w = weight.to(at::kBFloat16).contiguous();
  packed_ = at::empty({np * lda_}, at::kShort);
  pack(reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>()), n_, k_, k_,
       reinterpret_cast<uint16_t*>(packed_.data_ptr<int16_t>()));
  bias_ = at::zeros({np}, at::kFloat);
  if (bias.defined()) bias_.narrow(0, 0, n_).copy_(bias.to(at::kFloat).reshape({n_}));
}

#ifdef EMBEVAL_AMX_BUILD

#define EMBEVAL_AMX_BF16_TARGET \
  __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

namespace {

// A finished block waiting for its epilogue: its fp32 sums and where its
// outputs go.
template <typename OutT>
struct Pending {
  alignas(64) float acc[BLOCK * BLOCK];
  int64_t rv = 0, cv = 0;
  const float* b = nullptr;  // the block's 32 biases (null: none)
  OutT* y = nullptr;
};

// Rows [r0, r1) of a pending block's epilogue: + bias, GELU or not, rounded
// to bf16 by VCVTNE2PS2BF16 (nearest even as c10::BFloat16, but results
// below 1.2e-38 flushed to zero, which AMX's bf16 products read as zero
// anyway; 32 values in one instruction where the integer rounding took 8 a
// 16), straight into y. BM_linear kind 9 (768 -> 3072 + GELU, 4,096 rows, 2
// threads, three alternating rounds): 9.57 / 9.62 / 9.46 ms against 10.0 /
// 10.2 / 9.95 with the integer rounding.
template <bool GELU, typename OutT>
EMBEVAL_AVX512_BF16_TARGET inline void store_rows(const Pending<OutT>& p, int64_t r0, int64_t r1, int64_t ldy) {
  const __mmask32 m = p.cv >= 32 ? ~__mmask32{0} : (__mmask32{1} << p.cv) - 1;
  const __mmask16 m0 = first_lanes16(p.cv), m1 = first_lanes16(p.cv - 16);
  const __m512 b0 = p.b ? _mm512_maskz_loadu_ps(m0, p.b) : _mm512_setzero_ps();
  const __m512 b1 = p.b ? _mm512_maskz_loadu_ps(m1, p.b + 16) : _mm512_setzero_ps();
  r1 = std::min(r1, p.rv);
  for (int64_t r = r0; r < r1; ++r) {
    __m512 v0 = _mm512_add_ps(_mm512_load_ps(p.acc + r * BLOCK), b0);
    __m512 v1 = _mm512_add_ps(_mm512_load_ps(p.acc + r * BLOCK + 16), b1);
    if constexpr (GELU) {
      v0 = gelu_erf16(v0);
      v1 = gelu_erf16(v1);
    }
    if constexpr (sizeof(OutT) == sizeof(float)) {
      _mm512_mask_storeu_ps(p.y + r * ldy, m0, v0);
      _mm512_mask_storeu_ps(p.y + r * ldy + 16, m1, v1);
    } else {
      _mm512_mask_storeu_epi16(p.y + r * ldy, m, (__m512i)_mm512_cvtne2ps_pbh(v1, v0));
    }
  }
}

// x as TILELOADD reads it, once a call (the column chunks below each walk
// every row block): in place where k is a multiple of 32, with only a last
// partial block of rows copied into `tail` (32 x lda, zeros past the rows);
// otherwise every row copied into `padded` (rows rounded up to 32, x lda,
// zeros past k and the rows: 0 x NaN is NaN). Sets a and its stride in
// bytes; a partial last block (from row `full` on) reads `tail`.
struct TileRows {
  const char* a = nullptr;
  const char* tail = nullptr;
  int64_t stride = 0, tail_stride = 0, full = 0;
};
inline TileRows rows_for_tiles(const uint16_t* x, int64_t rows, int64_t ldx, int64_t k, int64_t lda,
                               std::vector<uint16_t>& padded, std::vector<uint16_t>& tail) {
  TileRows t;
  if (k == lda) {
    t.a = reinterpret_cast<const char*>(x);
    t.stride = ldx * 2;
    t.full = rows / BLOCK * BLOCK;
    if (t.full < rows) {
      tail.assign(static_cast<size_t>(BLOCK * lda), 0);
      for (int64_t r = t.full; r < rows; ++r)
        std::memcpy(tail.data() + (r - t.full) * lda, x + r * ldx, static_cast<size_t>(k) * 2);
      t.tail = reinterpret_cast<const char*>(tail.data());
      t.tail_stride = lda * 2;
    }
    return t;
  }
  const int64_t rp = amx_round_up(rows, BLOCK);
  padded.assign(static_cast<size_t>(rp * lda), 0);
  for (int64_t r = 0; r < rows; ++r) std::memcpy(padded.data() + r * lda, x + r * ldx, static_cast<size_t>(k) * 2);
  t.a = reinterpret_cast<const char*>(padded.data());
  t.stride = lda * 2;
  t.full = rp;
  return t;
}

// The order both forms take the 32 x 32 output blocks in: columns in
// chunks of CHUNK, and within a chunk the rows in blocks of 32, first to
// last in even chunks and last to first in odd ones (see gemm below), each
// row block across the chunk's columns. next() gives a block's rows (first
// byte and stride in x as TileRows has it), first row m0, rows rv, first
// column n0 and columns cv; false after the last.
struct Block {
  const char* a = nullptr;
  int64_t stride = 0, m0 = 0, rv = 0, n0 = 0, cv = 0;
};
class BlockWalk {
 public:
  BlockWalk(const TileRows& in, int64_t rows, int64_t c0, int64_t c1)
      : in_(in), rows_(rows), c0_(c0), c1_(c1), row_blocks_((rows + BLOCK - 1) / BLOCK), cc_(c0), n0_(c0) {}
  bool next(Block* b) {
    if (cc_ >= c1_ || row_blocks_ <= 0) return false;
    const int64_t ce = std::min(c1_, cc_ + CHUNK);
    const bool back = ((cc_ - c0_) / CHUNK) % 2 == 1;
    const int64_t m0 = (back ? row_blocks_ - 1 - rb_ : rb_) * BLOCK;
    const bool in_tail = m0 >= in_.full;
    b->a = in_tail ? in_.tail : in_.a + m0 * in_.stride;
    b->stride = in_tail ? in_.tail_stride : in_.stride;
    b->m0 = m0;
    b->rv = std::min(BLOCK, rows_ - m0);
    b->n0 = n0_;
    b->cv = std::min(BLOCK, ce - n0_);
    if ((n0_ += BLOCK) >= ce) {  // the chunk's columns done: the next row block, or the next chunk
      if (++rb_ == row_blocks_) {
        rb_ = 0;
        cc_ += CHUNK;
      }
      n0_ = cc_;
    }
    return true;
  }

 private:
  const TileRows& in_;
  int64_t rows_, c0_, c1_, row_blocks_, cc_, rb_ = 0, n0_;
};

// Each 32 x 32 block of outputs accumulates over all of K in tiles 0-3 (two
// row tiles of x times two column tiles of weights); its epilogue runs a few
// rows at a time between the next block's tile instructions (software
// pipelining: the vector ports work while TDPBF16PS does). Columns go in
// chunks of CHUNK, and within a chunk the rows in blocks of 32, first to
// last in even chunks and last to first in odd ones: a chunk starts on the
// rows the one before ended on, still in L2. Where x's rows and a chunk of
// weights overflow L2 (3072 -> 768 at 256 rows: 1.5 MB + 768 KB), rows in
// one direction evicted each row block just before its next use, so every
// chunk read all of x from L3 again. Single thread, 256-row blocks of 4,096
// rows, the shapes in turn, four alternating rounds (GFLOP/s): 3072 -> 768
// 860 / 834 / 759 / 865 against 696 / 742 / 795 / 735 in one direction,
// 768 -> 3072 876 / 980 / 804 / 1,006 against 775 / 798 / 945 / 769, 768 ->
// 2304 +3%; the peak's shape (BM_gemm_peak, 2 threads, six rounds) 1.954
// against 1.956 TFLOP/s.
template <bool GELU, typename OutT>
EMBEVAL_AMX_BF16_TARGET void gemm(const uint16_t* x, int64_t rows, int64_t ldx, int64_t k, int64_t lda,
                                  const uint16_t* packed, const float* bias, OutT* y, int64_t ldy, int64_t c0,
                                  int64_t c1) {
  const TileConfig config = TileConfig::all16x64();
  _tile_loadconfig(&config);
  const int64_t kb = lda / KSTEP, tile_stride = kb * TILE * 32;  // elements from one column block's tiles to the next
  const int64_t rows_per_step = (BLOCK + kb - 1) / kb;           // epilogue rows per K step
  thread_local std::vector<uint16_t> padded, tail;
  const TileRows in = rows_for_tiles(x, rows, ldx, k, lda, padded, tail);
  Pending<OutT> pend[2];
  int cur = 0;
  bool waiting = false;  // pend[cur ^ 1] holds a block whose epilogue is due
  BlockWalk walk(in, rows, c0, c1);
  for (Block blk; walk.next(&blk);) {
    const uint16_t* b0 = packed + (blk.n0 / TILE) * tile_stride;
    const uint16_t* b1 = b0 + tile_stride;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t i = 0; i < kb; ++i) {
      _tile_loadd(4, blk.a + i * 64, blk.stride);
      _tile_loadd(5, blk.a + TILE * blk.stride + i * 64, blk.stride);
      _tile_loadd(6, b0 + i * TILE * 32, 64);
      _tile_loadd(7, b1 + i * TILE * 32, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
      if (waiting) store_rows<GELU>(pend[cur ^ 1], i * rows_per_step, (i + 1) * rows_per_step, ldy);
    }
    Pending<OutT>& p = pend[cur];
    _tile_stored(0, p.acc, BLOCK * 4);
    _tile_stored(1, p.acc + TILE, BLOCK * 4);
    _tile_stored(2, p.acc + TILE * BLOCK, BLOCK * 4);
    _tile_stored(3, p.acc + TILE * BLOCK + TILE, BLOCK * 4);
    p.rv = blk.rv;
    p.cv = blk.cv;
    p.b = bias ? bias + blk.n0 : nullptr;
    p.y = y + blk.m0 * ldy + (blk.n0 - c0);
    waiting = true;
    cur ^= 1;
  }
  if (waiting) store_rows<GELU>(pend[cur ^ 1], 0, BLOCK, ldy);
  _tile_release();
}

// The same blocks, packing, order and epilogue on a CPU with AVX512-BF16
// and no AMX: a zmm of a packed weight tile's row is 16 columns' k pair,
// VDPBF16PS's right operand, so each 32 x 32 block is four 8-row runs of
// avx512_row_kernels.h's vdp_8x32 over all of K (x's k pairs broadcast from
// its rows; a last partial block of rows from TileRows' zero-padded tail),
// its epilogue after it (no tile unit to overlap with).
template <bool GELU, typename OutT>
EMBEVAL_AVX512_BF16_TARGET void gemm_vdp(const uint16_t* x, int64_t rows, int64_t ldx, int64_t k, int64_t lda,
                                         const uint16_t* packed, const float* bias, OutT* y, int64_t ldy, int64_t c0,
                                         int64_t c1) {
  const int64_t kb = lda / KSTEP, tile_stride = kb * TILE * 32;
  thread_local std::vector<uint16_t> padded, tail;
  const TileRows in = rows_for_tiles(x, rows, ldx, k, lda, padded, tail);
  Pending<OutT> p;
  BlockWalk walk(in, rows, c0, c1);
  for (Block blk; walk.next(&blk);) {
    const uint16_t* b0 = packed + (blk.n0 / TILE) * tile_stride;
    for (int64_t i = 0; i < blk.rv; i += 8)
      vdp_8x32(blk.a + i * blk.stride, blk.stride, b0, tile_stride * 2, 64, lda / 2, p.acc + i * BLOCK, BLOCK * 4);
    p.rv = blk.rv;
    p.cv = blk.cv;
    p.b = bias ? bias + blk.n0 : nullptr;
    p.y = y + blk.m0 * ldy + (blk.n0 - c0);
    store_rows<GELU>(p, 0, BLOCK, ldy);
  }
}

// The packing: tile (column block nb, k block b) row r holds k pair
// b * 32 + 2r of the block's 16 columns, 2 bf16 each (Intel SDM, TDPBF16PS:
// B is K/2 rows of N pairs). Seen as dwords (pairs), that is the block's 16
// rows of 16 dwords transposed: avx512_math.h's transpose16x16.
EMBEVAL_AMX_BF16_TARGET void pack_tiles(const uint16_t* w, int64_t n, int64_t k, int64_t ldw, uint16_t* packed) {
  const int64_t kb = amx_round_up(std::max<int64_t>(k, 1), KSTEP) / KSTEP;
  const int64_t blocks = amx_round_up(std::max<int64_t>(n, 1), BLOCK) / TILE;
  for (int64_t nb = 0; nb < blocks; ++nb)
    for (int64_t b = 0; b < kb; ++b) {
      const int64_t have = std::min<int64_t>(KSTEP, k - b * KSTEP);
      const __mmask32 live = have >= 32 ? ~__mmask32{0} : have <= 0 ? 0 : (__mmask32{1} << have) - 1;
      __m512i r[TILE];
      for (int64_t i = 0; i < TILE; ++i) {
        const int64_t c = nb * TILE + i;
        r[i] = c < n ? _mm512_maskz_loadu_epi16(live, w + c * ldw + b * KSTEP) : _mm512_setzero_si512();
      }
      transpose16x16(r);
      uint16_t* dst = packed + (nb * kb + b) * TILE * 32;
      for (int64_t i = 0; i < TILE; ++i) _mm512_storeu_si512(dst + i * 32, r[i]);
    }
}

}  // namespace

void AmxBf16Gemm::pack(const uint16_t* w, int64_t n, int64_t k, int64_t ldw, uint16_t* packed) {
  pack_tiles(w, n, k, ldw, packed);
}

void AmxBf16Gemm::run_packed(const uint16_t* packed, int64_t n, int64_t k, const float* bias,
                             LinearActivation activation, const uint16_t* x, int64_t rows, int64_t ldx, float* y,
                             int64_t ldy) {
  EMBEVAL_ASSERT(fuses(activation) && ldx >= k);
  if (rows <= 0 || n <= 0) return;
  const int64_t lda = amx_round_up(std::max<int64_t>(k, 1), KSTEP);
  const bool gelu = activation == LinearActivation::gelu_erf;
  if (!uses_tiles())
    gelu ? gemm_vdp<true>(x, rows, ldx, k, lda, packed, bias, y, ldy, 0, n)
         : gemm_vdp<false>(x, rows, ldx, k, lda, packed, bias, y, ldy, 0, n);
  else if (gelu)
    gemm<true>(x, rows, ldx, k, lda, packed, bias, y, ldy, 0, n);
  else
    gemm<false>(x, rows, ldx, k, lda, packed, bias, y, ldy, 0, n);
}

void AmxBf16Gemm::run(const uint16_t* x, int64_t rows, int64_t ldx, uint16_t* y, int64_t ldy, int64_t c0,
                      int64_t c1) const {
  EMBEVAL_ASSERT(c0 % BLOCK == 0 && c0 <= c1 && c1 <= n_ && ldx >= k_);
  if (rows <= 0 || c0 == c1) return;
  const auto* p = reinterpret_cast<const uint16_t*>(packed_.data_ptr<int16_t>());
  const float* b = bias_.data_ptr<float>();
  const bool gelu = activation_ == LinearActivation::gelu_erf;
  if (!uses_tiles())
    gelu ? gemm_vdp<true>(x, rows, ldx, k_, lda_, p, b, y, ldy, c0, c1)
         : gemm_vdp<false>(x, rows, ldx, k_, lda_, p, b, y, ldy, c0, c1);
  else if (gelu)
    gemm<true>(x, rows, ldx, k_, lda_, p, b, y, ldy, c0, c1);
  else
    gemm<false>(x, rows, ldx, k_, lda_, p, b, y, ldy, c0, c1);
}

#else

void AmxBf16Gemm::run(const uint16_t*, int64_t, int64_t, uint16_t*, int64_t, int64_t, int64_t) const {
  fail("AmxBf16Gemm: this build has no AMX kernels");
}

void AmxBf16Gemm::pack(const uint16_t*, int64_t, int64_t, int64_t, uint16_t*) {
  fail("AmxBf16Gemm: this build has no AMX kernels");
}

void AmxBf16Gemm::run_packed(const uint16_t*, int64_t, int64_t, const float*, LinearActivation, const uint16_t*,
                             int64_t, int64_t, float*, int64_t) {
  fail("AmxBf16Gemm: this build has no AMX kernels");
}

#endif

}  // namespace embeval
