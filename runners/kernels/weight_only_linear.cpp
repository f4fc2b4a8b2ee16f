#include "runners/kernels/weight_only_linear.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <sys/mman.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "harness/error.h"
#include "runners/kernels/amx_bf16_gemm.h"
#include "runners/kernels/cpu_dispatch.h"
#include "runners/kernels/int8_limbs.h"
#include "runners/kernels/int8_linear.h"
#include "runners/kernels/vec_math.h"
#include "runners/kernels/vnni_group_gemm.h"

#ifdef EMBEVAL_HAVE_DNNL
#include "runners/kernels/onednn_util.h"
#include "runners/kernels/s8_gemm.h"
#endif

namespace embeval {
namespace {

// Floats in the dequantised tile, at most (~2 MB). Measured with
// bench_kern_quant on bert-base shapes, 4096 rows, 1 thread (AMD EPYC,
// AVX2): tiles of 32 rows ran at 0.66x of the fp32 GEMM (one oneDNN call
// per tile costs more than its tile computes), 160 rows at 0.83x, 672 rows
// at 0.90x.
constexpr int64_t TILE_FLOATS = 524288;

// Up to this many input rows the layer runs the small-batch kernel below
// instead of dequantised tiles (measured with bench_kern_quant: see the
// header).
constexpr int64_t SMALL_M = 16;

// bf16x3 from this many rows on; below, the fp32 tiles. Dequantising,
// splitting and packing the layer costs as much as a few hundred rows'
// products, and the three bf16 products of a 128-row block leave little
// over one fp32 product. bert-base, batch 1 x 128 tokens, 2 threads, AMX
// Xeon, BM_quant_forward in one session: fp32 87 ms, wo-int8 through the
// fp32 tiles 115 ms, through bf16x3 150-158 ms.
constexpr int64_t X3_MIN_ROWS = 512;
// Output rows a tile of the per-thread bf16x3 path (17 to 512 input rows).
// bert-base, batch 1 x 128 tokens, wo-int4-g128 forward ms in one session:
// tiles of 32 rows 87-90, 64 81-90, 128 80-88, 256 97-103 (fp32 82-83, the
// fp32 tiles 101-104). A tile's split weights are 128 x 2 in bf16 (393 KB
// at in = 768); x_hi, x_lo (rows x 2 in) are read once a tile.
constexpr int64_t X3_TILE = 128;
constexpr int64_t X3_TILE_ROW_STEP = 32;
// A tile's products run over slices of the inputs (onednn::input_slices:
// AMX's bf16 matmul slows past ~1024 inputs), three products a slice, so
// W_hi is split once and read twice (one product of [x_hi, x_hi, x_lo] by
// [W_hi; W_lo; W_hi] had K = 3 in: 9,216 at FFN-out). bert-base
// wo-int4-g128, batch 1 x 128 tokens, three alternating runs: 68.7-72.8 ms
// against 73.5-79.5 (fp32 78.7-83.0).
// Rows of x split into bf16x3's [x_hi, x_hi, x_lo] at a time (bert-base's
// FFN output layer: 1024 x 9216 bf16, 19 MB).
constexpr int64_t X3_BLOCK_ROWS = 1024;
// bf16x3 rounds its row count up to a multiple of this, so a layer makes a
// few oneDNN primitives rather than one per batch shape: each made between
// two batches' outputs pinned malloc's heap (cmteb-mini's wo-int4-g64 run
// peaked at 540 MB with a primitive per row count, 451-456 MB with this).
constexpr int64_t X3_ROW_STEP = 128;

// One row of W: w[i] = s[g] * (q[i] - z[g]) over contiguous groups of gs columns.
EMBEVAL_CLONES void dequant_u8(const uint8_t* __restrict__ q, const float* __restrict__ s, const float* __restrict__ z,
                               int64_t in, int64_t gs, float* __restrict__ w) {
  for (int64_t g0 = 0, g = 0; g0 < in; g0 += gs, ++g) {
    const float sc = s[g], zz = z[g];
    for (int64_t i = g0; i < g0 + gs; ++i) w[i] = (static_cast<float>(q[i]) - zz) * sc;
  }
}

// Two codes a byte: column i in the low nibble of byte i and column
// i + in/2 in the high one, so each half is a contiguous run that vectorises.
EMBEVAL_CLONES void dequant_u4(const uint8_t* __restrict__ q, const float* __restrict__ s, const float* __restrict__ z,
                               int64_t in, int64_t gs, float* __restrict__ w) {
  const int64_t half = in / 2;
  for (int64_t g0 = 0, g = 0; g0 < in; g0 += gs, ++g) {
    const float sc = s[g], zz = z[g];
    const int64_t g1 = g0 + gs;
    for (int64_t i = g0; i < std::min(g1, half); ++i) w[i] = (static_cast<float>(q[i] & 15) - zz) * sc;
    for (int64_t i = std::max(g0, half); i < g1; ++i) w[i] = (static_cast<float>(q[i - half] >> 4) - zz) * sc;
  }
}

// Small batches (a few texts): no tile is dequantised. Codes are widened
// to floats in registers, eight at a time, and each such vector serves up to
// four input rows; per group g
//   y[r][o] = sum_g s[o][g] * (sum_i code[o][i] x[r][i] - z[o][g] * sum_i x[r][i]) + b[o],
// so scale and zero are applied once a group, not once a weight, and the
// per-group sums of x are computed once a call. The weights are read once,
// at 1 or 0.5 byte each where the fp32 product reads 4.
typedef float v8f __attribute__((vector_size(32)));
typedef uint8_t v8u8 __attribute__((vector_size(8)));
typedef int32_t v8i32 __attribute__((vector_size(32)));

// One contiguous run of a group: `n` codes from bytes `q` (low nibbles,
// high nibbles, or whole bytes) against x columns starting at `xo`.
struct Run {
  int64_t byte0, xo, n;  // codes from byte byte0 of the row, against x columns xo ..
  int64_t g;             // the group
  v8u8 mask;             // 0x0f, 0xf0 or 0xff in every lane
  int shift;             // 0 or 4
};

Run make_run(int64_t byte0, int64_t xo, int64_t n, int nibble, int64_t g) {
  const uint8_t m = nibble == 0 ? 0x0f : nibble == 1 ? 0xf0 : 0xff;
  return {byte0, xo, n, g, v8u8{m, m, m, m, m, m, m, m}, nibble == 1 ? 4 : 0};
}

// The products of one output row with R input rows, written as a macro so
// that it expands inside each clone of small_m_rows: GCC lowers generic
// vector code for the target of the function it is written in, and an
// inlined helper without the clone's target comes out scalar. Codes are
// masked as bytes, widened to int32 and shifted there: GCC 12 makes scalar
// code of u8 -> f32, of byte shifts and of u8 -> i32 unless a (run-time)
// mask precedes it; mask + u8 -> i32 is vpand + vpmovzxbd, i32 -> f32
// vcvtdq2ps. Each run's vector sums are scaled by its group's scale as
// vectors; one horizontal sum a row at the end.
#define EMBEVAL_ROW_TIMES_X(R)                                                                      \
  do {                                                                                              \
    v8f tot[R] = {};                                                                                \
    float tail[R] = {};                                                                             \
    for (const Run& run : runs) {                                                                   \
      const uint8_t* qr = q + run.byte0;                                                            \
      v8f a[R] = {};                                                                                \
      float t[R] = {};                                                                              \
      int64_t i = 0;                                                                                \
      for (; i + 8 <= run.n; i += 8) {                                                              \
        v8u8 b;                                                                                     \
        __builtin_memcpy(&b, qr + i, 8);                                                            \
        const v8i32 w = __builtin_convertvector(b & run.mask, v8i32) >> run.shift;                  \
        const v8f c = __builtin_convertvector(w, v8f);                                              \
        for (int k = 0; k < (R); ++k) {                                                             \
          v8f xv;                                                                                   \
          __builtin_memcpy(&xv, xr[k] + run.xo + i, 32);                                            \
          a[k] += c * xv;                                                                           \
        }                                                                                           \
      }                                                                                             \
      for (; i < run.n; ++i) {                                                                      \
        const float c = static_cast<float>((qr[i] & run.mask[0]) >> run.shift);                     \
        for (int k = 0; k < (R); ++k) t[k] += c * xr[k][run.xo + i];                                \
      }                                                                                             \
      const float sg = so[run.g];                                                                   \
      for (int k = 0; k < (R); ++k) {                                                               \
        tot[k] += a[k] * sg;                                                                        \
        tail[k] += t[k] * sg;                                                                       \
      }                                                                                             \
    }                                                                                               \
    for (int k = 0; k < (R); ++k) {                                                                 \
      float d = tail[k];                                                                            \
      for (int l = 0; l < 8; ++l) d += tot[k][l];                                                   \
      const float* xs = xsum + (r0 + k) * groups;                                                   \
      for (int64_t g = 0; g < groups; ++g) d -= so[g] * zo[g] * xs[g];                              \
      y[(r0 + k) * out + o] = d + (bias ? bias[o] : 0.0f);                                          \
    }                                                                                               \
  } while (0)

EMBEVAL_CLONES void small_m_rows(const uint8_t* __restrict__ packed, int64_t row_bytes, const std::vector<Run>& runs,
                                 const float* s, const float* z, const float* bias, int64_t in, int64_t groups,
                                 const float* __restrict__ x, int64_t m, const float* __restrict__ xsum, int64_t o0,
                                 int64_t o1, int64_t out, float* __restrict__ y) {
  for (int64_t o = o0; o < o1; ++o) {
    const uint8_t* q = packed + o * row_bytes;
    const float* so = s + o * groups;
    const float* zo = z + o * groups;
    for (int64_t r0 = 0; r0 < m;) {
      const float* xr[4];
      if (m - r0 >= 4) {
        for (int k = 0; k < 4; ++k) xr[k] = x + (r0 + k) * in;
        EMBEVAL_ROW_TIMES_X(4);
        r0 += 4;
      } else {
        xr[0] = x + r0 * in;
        EMBEVAL_ROW_TIMES_X(1);
        r0 += 1;
      }
    }
  }
}

// The runs of every group: int8 one run a group; int4 one or two (column i
// is the low nibble of byte i for i < in/2, else the high nibble of byte
// i - in/2, so a group that straddles in/2 has a run in each half).
std::vector<Run> group_runs(int bits, int64_t in, int64_t gs, int64_t groups) {
  std::vector<Run> runs;
  const int64_t half = in / 2;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t g0 = g * gs, g1 = g0 + gs;
    if (bits == 8) {
      runs.push_back(make_run(g0, g0, gs, -1, g));
      continue;
    }
    if (g0 < half) runs.push_back(make_run(g0, g0, std::min(g1, half) - g0, 0, g));
    if (g1 > half) {
      const int64_t b0 = std::max(g0, half);
      runs.push_back(make_run(b0 - half, b0, g1 - b0, 1, g));
    }
  }
  return runs;
}

// Any column-to-group assignment (act-order).
void dequant_gather(const uint8_t* q, int bits, const float* s, const float* z, const int32_t* gidx, int64_t in,
                    float* w) {
  for (int64_t i = 0; i < in; ++i) {
    const int64_t half = in / 2;
    const int code = bits == 8 ? q[i] : (i < half ? q[i] & 15 : q[i - half] >> 4);
    const int g = gidx[i];
    w[i] = (static_cast<float>(code) - z[g]) * s[g];
  }
}

#ifdef EMBEVAL_HAVE_DNNL  // what only the oneDNN paths use, to the end of workspace()
// bf16x3's operands, a row at a time: x as [x_hi, x_hi, x_lo] and W as
// [W_hi, W_lo, W_hi] (3 n bf16 at out), so x3 . W3 = x_hi W_hi + x_hi W_lo + x_lo W_hi.
void split_x3_row(const float* x, int64_t n, uint16_t* out) {
  split_to_bf16(x, n, out, out + 2 * n);
  std::memcpy(out + n, out, static_cast<size_t>(n) * 2);
}
void split_w3_row(const float* w, int64_t n, uint16_t* out) {
  split_to_bf16(w, n, out, out + n);
  std::memcpy(out + 2 * n, out, static_cast<size_t>(n) * 2);
}

// byte ^= 0x80 over n bytes: int8 code - 128 <-> uint8 code (a local count:
// through a byte pointer GCC must assume a member count may change).
EMBEVAL_CLONES void flip_sign_bits(uint8_t* __restrict__ p, const int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] ^= 0x80;
}

// The int8 path of an fp32 input (per-channel int8 codes on an exact
// int8 GEMM): each row of x as three int8 limbs (int8_limbs.h). The codes,
// zero 128 subtracted, are exact int8 too, so the three products are exact
// int32 sums; only their combination is rounded, as an fp32 GEMM's sums
// are. Three int8 products on AMX cost less than one fp32 product.
// Rows of x a block: its limbs (3 x 64 rows) and their int32 products stay
// near a core's L2 (bert-base's FFN-in: 2.4 MB).
constexpr int64_t LIMB_BLOCK_ROWS = 64;
// Rows each thread needs before the threads take rows of their own (each
// then reads every weight).
constexpr int64_t LIMB_ROWS_PER_THREAD_MIN = 32;

// y[o] = act(step * scale[o] * (d1 + (d2 + d3 / 254) / 254) + b[o]) where
// d_l = p_l[o] - shift[o] * sum_l: limb l's product with the codes less 128,
// less (zero - 128) times the limb's sum, which makes it the product with
// code - zero; exact in int32 (|d| < 2^27 for in <= 4096).
template <int ACT>
EMBEVAL_CLONES void combine_limbs(const int32_t* __restrict__ p1, const int32_t* __restrict__ p2,
                                  const int32_t* __restrict__ p3, const int32_t* sums, const int32_t* __restrict__ shift,
                                  const float* __restrict__ scale, float step, const float* __restrict__ bias,
                                  int64_t out, float* __restrict__ y) {
  const float inv = 1.0f / LIMB_BASE;
  const int32_t s1 = sums[0], s2 = sums[1], s3 = sums[2];
  for (int64_t o = 0; o < out; ++o) {
    const float d1 = static_cast<float>(p1[o] - shift[o] * s1), d2 = static_cast<float>(p2[o] - shift[o] * s2),
                d3 = static_cast<float>(p3[o] - shift[o] * s3);
    float v = (d1 + (d2 + d3 * inv) * inv) * (scale[o] * step) + bias[o];
    EMBEVAL_ACTIVATE(ACT, v);
    y[o] = v;
  }
}

// A scratch buffer of the calling thread that grows and is kept (slot:
// which one), page-aligned, mapped outside malloc's heap. The bf16 paths
// dequantise a whole layer a call; taken from the heap, those blocks and the
// layer outputs that outlive them fragmented it (cmteb-mini's
// bf16+wo-int4-g64 run peaked at 755 MB against the bf16 model's 450, the
// fp32 wo-int4-g64 run at 1,037 MB against fp32's 437), so each thread
// keeps one of each, as large as its largest layer's: at rest one layer's
// transient, never the model's.
enum Workspace { WS_PLAIN, WS_PACKED, WS_X3, WS_PAD, WS_CODES, WS_LIMBS, WS_LIMB_ACC, WS_COUNT };
void* workspace(Workspace slot, size_t bytes) {
  struct Buffer {
    void* data = nullptr;
    size_t size = 0;
    ~Buffer() {
      if (data) munmap(data, size);
    }
  };
  thread_local Buffer buffers[WS_COUNT];
  Buffer& b = buffers[slot];
  if (b.size < bytes) {
    const size_t page = 4096, size = (std::max<size_t>(bytes, 1) + page - 1) / page * page;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fail("WeightOnlyLinear: out of memory for a {}-byte scratch", size);
    if (b.data) munmap(b.data, b.size);
    b.data = p;
    b.size = size;
  }
  return b.data;
}
#endif

}  // namespace

#ifdef EMBEVAL_HAVE_DNNL
using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;
using onednn::cpu_engine;
#endif

struct WeightOnlyLinear::Impl {
  int bits = 8;
  int64_t in = 0, out = 0, groups = 1, group_size = 0, tile = 0;
  at::Tensor packed;        // uint8 [out, in] or [out, in / 2]
  at::Tensor scales, zeros; // float [out, groups]
  at::Tensor gidx;          // int32 [in] or undefined
  at::Tensor bias;          // float [out] or undefined
  at::Tensor divisor;       // float [in] or undefined
  LinearActivation activation = LinearActivation::none;
  std::string kernel = "aten";
  std::vector<Run> runs;    // the small-batch kernel's runs of each group
#ifdef EMBEVAL_HAVE_DNNL
  // [M, in] x tile^T -> columns [n0, n0 + rows) of y (row stride out), bias and activation fused.
  struct TileGemm {
    dnnl::matmul matmul;
    int64_t rows = 0;
  };
  std::vector<TileGemm> gemms;  // for `tile` rows and for the last, shorter tile
  // bf16 x bf16 -> bf16, bias and activation fused, weights in the layout
  // the kernel asks for; made at the first bf16 call (null: oneDNN has no
  // bf16 kernel here but its reference one).
  mutable std::once_flag bf16_once;
  mutable std::unique_ptr<onednn::RowsMatmul> bf16_gemm;
  // bf16x3: [x_hi, x_hi, x_lo] (bf16 [rows, 3 in]) times [W_hi; W_lo; W_hi]
  // -> fp32, what an fp32 input with more than SMALL_M rows runs where the
  // CPU multiplies bf16 natively (null elsewhere).
  mutable std::unique_ptr<onednn::RowsMatmul> bf16x3_gemm;
  // bf16x3 a tile of X3_TILE output rows at a time, each thread its own
  // tiles, the weights as they are split (plain, no packing): what 17 to
  // 512 rows of an fp32 input run where bf16 is native.
  // Each tile's product is done over slices of the inputs (onednn::input_slices):
  // x_hi W_hi, x_hi W_lo and x_lo W_hi per slice, summed in fp32 (the first
  // adds the bias, the others oneDNN's sum post-op, the last applies the
  // activation). x3_products: by (slice width, tile width, role); empty
  // where oneDNN has no kernel for one of them.
  enum X3Role { X3_FIRST, X3_MIDDLE, X3_LAST };
  mutable std::vector<std::pair<int64_t, int64_t>> x3_slices;  // [start, width) of the inputs
  mutable std::map<std::tuple<int64_t, int64_t, int>, std::unique_ptr<onednn::RowsMatmul>> x3_products;
  at::Tensor x3_tiled(const at::Tensor& x2) const;
  // The same tiles on embeval's AMX bf16 kernel (amx_bf16_gemm.h): each
  // tile dequantised, split into [W_hi | W_lo | W_hi] rows and packed into
  // the kernel's layout, one product of depth 3 in against [x_hi | x_hi |
  // x_lo] with the bias and activation in its epilogue (no oneDNN call or
  // weight reorder per tile). Set where the kernel is available and fuses
  // the activation, for at most onednn::SLICE_ABOVE inputs: wider, the
  // [rows, 3 in] operand leaves L2 (bert-base's FFN output at batch 1, 128
  // rows: 2.9 ms against oneDNN's sliced products' 2.0); the other layers
  // at batch 1 (BM_layer_breakdown, alternating, ms): Q/K/V 1.21-1.25
  // against 1.31-1.36, attention output 0.45-0.46 against 0.50-0.52, FFN
  // input 1.70-1.73 against 1.84-1.87. EMBEVAL_NO_AMX_BF16_GEMM=1 keeps
  // oneDNN's for all.
  mutable bool x3_own = false;
  at::Tensor x3_own_tiled(const at::Tensor& x2) const;
  // Output rows a tile (the last may be shorter).
  int64_t x3_tile_rows() const { return std::min(X3_TILE, out); }
  // The reorders from the plain dequantised scratch into each GEMM's packed
  // layout, made once (a dnnl::reorder made per call was a new primitive
  // each time, and oneDNN's verbose log counted ~1,500 of them compiled
  // anew in one cmteb-mini run).
  mutable dnnl::reorder bf16_pack, bf16x3_pack;

  // int8 codes with one group a row, on a CPU whose oneDNN adds int8
  // products exactly: the codes less 128, packed for the int8 GEMM, and the
  // only copy of them the layer keeps (`packed` is then undefined); an fp32
  // input runs as three limbs (split_limbs above) at every row count.
  std::unique_ptr<S8Gemm> limb_gemm;
  at::Tensor limb_shift;  // int32 [out]: zero - 128 (0 for symmetric codes)
  // Rows [0, n) of x (fp32, contiguous rows of `in`) through the limbs into
  // y (rows of `out`), on the calling thread (oneDNN on all threads when
  // called outside a parallel region).
  void limb_rows(const float* x, int64_t n, float* y) const;

  // The whole layer dequantised in fp32 and rounded once to bf16 (split:
  // as the [W_hi; W_lo; W_hi] of bf16x3), in the layout `gemm` packs its
  // weights in.
  const void* packed_bf16_weight(const onednn::RowsMatmul& gemm, bool split) const;
  // The reorder into gemm's layout from the plain [out, k] bf16 rows.
  static dnnl::reorder make_pack(const onednn::RowsMatmul& gemm, memory::dim k, memory::dim out);
  // x2 ([rows, in], contiguous: bf16, or with split fp32, split here into
  // [x_hi, x_hi, x_lo]) through `gemm` into a new [rows, out] of `out_type`.
  at::Tensor run_bf16(const onednn::RowsMatmul& gemm, const at::Tensor& x2, at::ScalarType out_type, bool split) const;
#endif

  // Group-wise codes on a CPU with VNNI but no AMX: an fp32 input runs as
  // three limbs on vnni_group_gemm.h's kernel at every row count, from its
  // packed copy of the codes (the only one the layer then keeps). Where AMX
  // multiplies bf16, bf16x3 on it stays (1.36-1.43x the fp32 model at
  // bert-base batch 32, where three int8 limb products would be ~1.2x).
  std::unique_ptr<VnniGroupGemm> vnni;
  int64_t vnni_group = 0;  // its group width (a per-channel layer's sub-groups)

  // The uint8 codes [out, row bytes]: `packed`, or read back from the
  // int8 GEMM's copy (or the VNNI kernel's) into the thread's scratch.
  const uint8_t* codes() const {
    if (vnni) {
      // In `packed`'s layout (int4: column i with i + in / 2 in one byte),
      // the threads a run of rows each.
      thread_local std::vector<uint8_t> rows;
      const int64_t row_bytes = bits == 8 ? in : in / 2;
      rows.resize(static_cast<size_t>(out * row_bytes));
      uint8_t* dst = rows.data();
      at::parallel_for(0, out, 16, [&](int64_t o0, int64_t o1) {
        std::vector<uint8_t> plain(static_cast<size_t>((o1 - o0) * in));
        vnni->unpack_codes(plain.data(), o0, o1);
        for (int64_t o = o0; o < o1; ++o) {
          const uint8_t* c = plain.data() + (o - o0) * in;
          uint8_t* r = dst + o * row_bytes;
          if (bits == 8)
            std::memcpy(r, c, static_cast<size_t>(in));
          else
            for (int64_t i = 0; i < in / 2; ++i) r[i] = static_cast<uint8_t>(c[i] | c[i + in / 2] << 4);
        }
      });
      return dst;
    }
#ifdef EMBEVAL_HAVE_DNNL
    if (limb_gemm) {
      auto* c = static_cast<int8_t*>(workspace(WS_CODES, static_cast<size_t>(out * in)));
      limb_gemm->unpack_into(c);
      auto* u = reinterpret_cast<uint8_t*>(c);
      flip_sign_bits(u, out * in);
      return u;
    }
#endif
    return packed.data_ptr<uint8_t>();
  }

  // Rows [o0, o0 + rows) of W from codes q (codes()).
  void dequant_rows(const uint8_t* q, int64_t o0, int64_t rows, float* w) const {
    const int64_t row_bytes = bits == 8 ? in : in / 2;
    const float* s = scales.data_ptr<float>();
    const float* z = zeros.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t o = o0 + r;
      const uint8_t* qr = q + o * row_bytes;
      if (gidx.defined())
        dequant_gather(qr, bits, s + o * groups, z + o * groups, gidx.data_ptr<int32_t>(), in, w + r * in);
      else if (bits == 8)
        dequant_u8(qr, s + o * groups, z + o * groups, in, group_size, w + r * in);
      else
        dequant_u4(qr, s + o * groups, z + o * groups, in, group_size, w + r * in);
    }
  }
};

WeightOnlyLinear::WeightOnlyLinear() = default;
WeightOnlyLinear::~WeightOnlyLinear() = default;
WeightOnlyLinear::WeightOnlyLinear(WeightOnlyLinear&&) noexcept = default;
WeightOnlyLinear& WeightOnlyLinear::operator=(WeightOnlyLinear&&) noexcept = default;

WeightOnlyLinear::WeightOnlyLinear(const at::Tensor& codes, int bits, const at::Tensor& scales, const at::Tensor& zeros,
                                   int64_t group_size, const at::Tensor& g_idx, const at::Tensor& bias,
                                   LinearActivation activation, const at::Tensor& input_divisor)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  if (bits != 4 && bits != 8) fail("WeightOnlyLinear: {} bits; the kernel takes 4 or 8", bits);
  if (codes.dim() != 2 || codes.scalar_type() != at::kByte) fail("WeightOnlyLinear: codes must be uint8 [out, in]");
  m.bits = bits;
  m.out = codes.size(0);
  m.in = codes.size(1);
  m.groups = scales.size(-1);
  m.group_size = group_size <= 0 || group_size >= m.in ? m.in : group_size;
  if (scales.dim() != 2 || scales.size(0) != m.out || zeros.sizes() != scales.sizes())
    fail("WeightOnlyLinear: scales and zeros must both be [out = {}, groups]", m.out);
  if (!g_idx.defined() && (m.in % m.group_size || m.groups != m.in / m.group_size))
    fail("WeightOnlyLinear: {} groups do not match {} input columns in groups of {}", m.groups, m.in, m.group_size);
  if (bits == 4 && m.in % 2) fail("WeightOnlyLinear: int4 codes pair column i with i + in/2; {} inputs are odd", m.in);
  if (bits == 4 && (codes >= 16).any().item<bool>()) fail("WeightOnlyLinear: a code does not fit {} bits", bits);
  if (g_idx.defined()) {
    if (g_idx.numel() != m.in || (g_idx < 0).any().item<bool>() || (g_idx >= m.groups).any().item<bool>())
      fail("WeightOnlyLinear: g_idx must give each of {} input columns a group below {}", m.in, m.groups);
    m.gidx = g_idx.to(at::kInt).contiguous();
  }
  at::Tensor c = codes.contiguous();
  m.packed = bits == 8 ? c : (c.narrow(1, 0, m.in / 2) + c.narrow(1, m.in / 2, m.in / 2) * 16).contiguous();  // < 256
  m.scales = scales.to(at::kFloat).contiguous();
  m.zeros = zeros.to(at::kFloat).contiguous();
  m.bias = bias.defined() ? bias.to(at::kFloat).contiguous() : bias;
  m.activation = activation;
  m.runs = group_runs(bits, m.in, m.group_size, m.groups);
  if (input_divisor.defined()) {
    if (input_divisor.dim() != 1 || input_divisor.size(0) != m.in)
      fail("WeightOnlyLinear: the input divisor must be [in = {}]", m.in);
    m.divisor = input_divisor.to(at::kFloat).contiguous();
    if (!(m.divisor > 0).all().item<bool>()) fail("WeightOnlyLinear: the input divisor must be positive");
  }
  // Output rows per tile, in multiples of 16: at most TILE_FLOATS.
  m.tile = std::min(std::max<int64_t>(16, TILE_FLOATS / m.in / 16 * 16), m.out);
  // EMBEVAL_NO_INT8_LIMBS=1 keeps per-channel int8 off both limb kernels (on
  // the tiles), EMBEVAL_NO_VNNI_GROUP=1 off the VNNI one: for comparing
  // them; read when a layer is made.
  const char* no_limbs = std::getenv("EMBEVAL_NO_INT8_LIMBS");
  const bool limbs_off = no_limbs && std::string(no_limbs) == "1";
  const char* no_vnni = std::getenv("EMBEVAL_NO_VNNI_GROUP");
  const bool vnni_off = no_vnni && std::string(no_vnni) == "1";
  const bool integer_zeros = (m.zeros == m.zeros.round()).all().item<bool>() && (m.zeros >= 0).all().item<bool>() &&
                             (m.zeros <= (1 << bits) - 1).all().item<bool>();
  const bool vnni_cpu = !vnni_off && !m.gidx.defined() && integer_zeros && VnniGroupGemm::available() &&
                        !(AmxBf16Gemm::available() && AmxBf16Gemm::uses_tiles());
  // Per-channel int8 on a CPU with VNNI but no AMX tiles takes the VNNI
  // group kernel too, its one group a row cut into sub-groups of the widest
  // width <= 512 the row divides into (the channel's scale and zero in each:
  // the same weights, each sub-group's sums exact). oneDNN's limbs below
  // run single-threaded around their GEMM up to 64 rows; this kernel splits
  // the outputs (BM_linear kind 3, Zen 4, 2 threads, two alternating rounds
  // against EMBEVAL_NO_VNNI_GROUP=1: 16 x 768 -> 3072 288-314 us against
  // 344-442, one row of 768 -> 3072 40-54 against 70-83; 4,096 rows about
  // equal, 20.5-21.3 / 69.9-74.8 / 72.6-78.9 ms against 19.3-20.7 /
  // 75.0-80.0 / 73.5-76.5 for bert-base's three shapes).
  int64_t channel_group = 0;
  if (bits == 8 && m.groups == 1 && !limbs_off && vnni_cpu)
    for (int64_t g = std::min<int64_t>(m.in, 512); g >= 8 && !channel_group; g -= 8)
      if (VnniGroupGemm::fits(bits, m.in, g)) channel_group = g;
  if (channel_group > 0) {
    const int64_t sub = m.in / channel_group;
    m.vnni = std::make_unique<VnniGroupGemm>(c, bits, m.scales.expand({m.out, sub}).contiguous(),
                                             m.zeros.expand({m.out, sub}).contiguous(), m.bias, channel_group,
                                             activation);
    m.vnni_group = channel_group;
    m.packed = at::Tensor();  // the kernel's packed copy is the only one kept
  }
#ifdef EMBEVAL_HAVE_DNNL
  try {
    for (int64_t rows : {m.tile, m.out % m.tile}) {
      if (rows == 0) continue;
      const memory::desc src_md({DNNL_RUNTIME_DIM_VAL, m.in}, dt::f32, tag::ab);
      const memory::desc w_md({m.in, rows}, dt::f32, tag::ba);  // the tile is [rows, in] row-major
      const memory::desc b_md({1, rows}, dt::f32, tag::ab);
      const memory::desc dst_md({DNNL_RUNTIME_DIM_VAL, rows}, dt::f32, memory::dims{m.out, 1});
      dnnl::post_ops ops;
      onednn::append_activation(ops, activation);
      dnnl::primitive_attr attr;
      attr.set_post_ops(ops);
      const auto pd = onednn::matmul_pd(src_md, w_md, b_md, dst_md, attr);
      if (onednn::is_reference_kernel(pd.impl_info_str())) throw dnnl::error(dnnl_unimplemented, "reference only");
      m.gemms.push_back({dnnl::matmul(pd), rows});
      m.kernel = std::string("onednn:") + pd.impl_info_str();
    }
    if (!m.bias.defined()) m.bias = at::zeros({m.out}, at::kFloat);
  } catch (const dnnl::error&) {
    m.gemms.clear();
    m.kernel = "aten";
  }
  // Elsewhere int8 codes with one group a row (integer zeros) run on the
  // int8 GEMM where oneDNN has an exact one.
  if (bits == 8 && m.groups == 1 && !limbs_off && !m.vnni && integer_zeros && onednn_int8_gemm_is_exact()) {
    try {
      auto gemm = std::make_unique<S8Gemm>((c.to(at::kShort) - 128).to(at::kChar));
      if (!onednn::is_reference_kernel(gemm->kernel().c_str())) {
        m.limb_gemm = std::move(gemm);
        m.limb_shift = (m.zeros.reshape({m.out}) - 128).to(at::kInt).contiguous();
        if (!m.bias.defined()) m.bias = at::zeros({m.out}, at::kFloat);
        m.packed = at::Tensor();  // the GEMM's packed copy is the only one kept
      }
    } catch (const dnnl::error&) {
      // the tiles
    }
  }
#endif
#ifdef EMBEVAL_HAVE_DNNL
  const bool limbs = m.limb_gemm != nullptr;
#else
  const bool limbs = false;
#endif
  if (!limbs && !m.vnni && vnni_cpu && VnniGroupGemm::fits(bits, m.in, m.group_size)) {
    m.vnni = std::make_unique<VnniGroupGemm>(c, bits, m.scales, m.zeros, m.bias, m.group_size, activation);
    m.vnni_group = m.group_size;
    m.packed = at::Tensor();  // the kernel's packed copy is the only one kept
  }
}

at::Tensor WeightOnlyLinear::dequantized_weight() const {
  const Impl& m = *impl_;
  at::Tensor w = at::empty({m.out, m.in}, at::kFloat);
  m.dequant_rows(m.codes(), 0, m.out, w.data_ptr<float>());
  return w;
}

void WeightOnlyLinear::prepare_bf16() const {
#ifdef EMBEVAL_HAVE_DNNL
  const Impl& m = *impl_;
  std::call_once(m.bf16_once, [&m] {
    const memory::dim in = m.in, out = m.out;
    dnnl::post_ops ops;
    onednn::append_activation(ops, m.activation);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    auto make = [&](memory::dim k, dt out_type) {
      return std::make_unique<onednn::RowsMatmul>(
          [k, out, attr, out_type](memory::dim r, const memory::desc& weights) {
            return onednn::matmul_pd(memory::desc({r, k}, dt::bf16, tag::ab), weights,
                                     memory::desc({1, out}, dt::f32, tag::ab),
                                     memory::desc({r, out}, out_type, tag::ab), attr);
          },
          memory::desc({k, out}, dt::bf16, tag::any));
    };
    try {
      auto gemm = make(in, dt::bf16);
      if (!onednn::is_reference_kernel(gemm->kernel().c_str())) {
        m.bf16_pack = Impl::make_pack(*gemm, in, out);
        m.bf16_gemm = std::move(gemm);
      }
    } catch (const dnnl::error&) {
      // no bf16 kernel: the fp32 path below
    }
    // An fp32 model's layer runs three bf16 products only where bf16 is
    // native (~5-7x the fp32 GEMM); oneDNN's emulation on plain AVX-512 is
    // slower than one fp32 product.
    if (!cpu_has_native_bf16() || m.limb_gemm || m.vnni) return;  // limb layers never run bf16x3
    try {
      auto gemm = make(3 * in, dt::f32);
      if (!onednn::is_reference_kernel(gemm->kernel().c_str())) {
        m.bf16x3_pack = Impl::make_pack(*gemm, 3 * in, out);
        m.bf16x3_gemm = std::move(gemm);
      }
    } catch (const dnnl::error&) {
      // the fp32 tiles
    }
    if (AmxBf16Gemm::available() && AmxBf16Gemm::uses_tiles() && AmxBf16Gemm::fuses(m.activation) &&
        in <= onednn::SLICE_ABOVE) {  // the tiles: three bf16 products, where a VDPBF16PS form would lose to the limbs
      m.x3_own = true;
      return;
    }
    try {
      const memory::dim tn = m.x3_tile_rows(), tail = out % tn;
      std::vector<std::pair<int64_t, int64_t>> slices = onednn::input_slices(in);
      bool ok = true;
      for (const auto& [k0, k] : slices)
        for (const memory::dim width : {tn, tail})
          for (const int role : {Impl::X3_FIRST, Impl::X3_MIDDLE, Impl::X3_LAST}) {
            const auto key = std::make_tuple(int64_t{k}, int64_t{width}, role);
            if (width == 0 || m.x3_products.count(key)) continue;
            dnnl::post_ops role_ops;
            if (role != Impl::X3_FIRST) role_ops.append_sum();
            if (role == Impl::X3_LAST) onednn::append_activation(role_ops, m.activation);
            dnnl::primitive_attr role_attr;
            role_attr.set_post_ops(role_ops);
            role_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            const memory::dim kk = k;
            auto gemm = std::make_unique<onednn::RowsMatmul>(
                [kk, width, role, role_attr](memory::dim r, const memory::desc& weights) {
                  return onednn::matmul_pd(memory::desc({r, kk}, dt::bf16, tag::ab), weights,
                                           role == Impl::X3_FIRST ? memory::desc({1, width}, dt::f32, tag::ab)
                                                                  : memory::desc(),
                                           memory::desc({r, width}, dt::f32, tag::ab), role_attr);
                },
                memory::desc({kk, width}, dt::bf16, tag::ba));  // the tile's [width, k] rows as they are split
            ok = ok && !onednn::is_reference_kernel(gemm->kernel().c_str());
            m.x3_products.emplace(key, std::move(gemm));
          }
      if (ok) {
        m.x3_slices = std::move(slices);
      } else {
        m.x3_products.clear();
      }
    } catch (const dnnl::error&) {
      m.x3_products.clear();  // the fp32 tiles
    }
  });
#endif
}

#ifdef EMBEVAL_HAVE_DNNL
void WeightOnlyLinear::Impl::limb_rows(const float* x, int64_t n, float* y) const {
  auto* limbs = static_cast<int8_t*>(workspace(WS_LIMBS, static_cast<size_t>(3 * n * in + 1)));
  auto* acc = static_cast<int32_t*>(workspace(WS_LIMB_ACC, static_cast<size_t>(3 * n * out * 4 + 4)));
  std::vector<float> steps(static_cast<size_t>(n));
  std::vector<int32_t> sums(static_cast<size_t>(3 * n));
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * in;
    const float amax = limb_row_absmax(xr, in);
    // A row that is not finite comes out NaN (never a silently finite
    // vector): zero limbs, and a NaN step in the combination.
    const float step = std::isnan(amax) ? NAN : amax > 0 ? amax / 127.0f : 1.0f;
    steps[static_cast<size_t>(r)] = step;
    if (std::isnan(step)) {
      std::memset(limbs + r * in, 0, static_cast<size_t>(in));
      std::memset(limbs + (n + r) * in, 0, static_cast<size_t>(in));
      std::memset(limbs + (2 * n + r) * in, 0, static_cast<size_t>(in));
      sums[static_cast<size_t>(3 * r)] = sums[static_cast<size_t>(3 * r + 1)] = sums[static_cast<size_t>(3 * r + 2)] = 0;
      continue;
    }
    split_limbs(xr, in, step, limbs + r * in, limbs + (n + r) * in, limbs + (2 * n + r) * in, sums.data() + 3 * r);
  }
  thread_local at::Tensor pad;
  limb_gemm->run(limbs, 3 * n, acc, &pad);
  const int32_t* shift = limb_shift.data_ptr<int32_t>();
  const float* sc = scales.data_ptr<float>();
  const float* b = bias.data_ptr<float>();
  for (int64_t r = 0; r < n; ++r) {
    const int32_t *p1 = acc + r * out, *p2 = acc + (n + r) * out, *p3 = acc + (2 * n + r) * out;
    const int32_t* sm = sums.data() + 3 * r;
    const float step = steps[static_cast<size_t>(r)];
    float* yr = y + r * out;
    switch (activation) {
      case LinearActivation::none: combine_limbs<0>(p1, p2, p3, sm, shift, sc, step, b, out, yr); break;
      case LinearActivation::gelu_erf: combine_limbs<1>(p1, p2, p3, sm, shift, sc, step, b, out, yr); break;
      case LinearActivation::gelu_tanh: combine_limbs<2>(p1, p2, p3, sm, shift, sc, step, b, out, yr); break;
      case LinearActivation::relu: combine_limbs<3>(p1, p2, p3, sm, shift, sc, step, b, out, yr); break;
    }
  }
}

namespace {
// One product with bias and the caller's scratchpad, waited for.
void execute_matmul(const dnnl::matmul& prim, dnnl::stream& stream, const memory& src, const memory& weights,
                    const memory& bias, const memory& dst, const memory& pad) {
  prim.execute(stream, {{DNNL_ARG_SRC, src},
                        {DNNL_ARG_WEIGHTS, weights},
                        {DNNL_ARG_BIAS, bias},
                        {DNNL_ARG_DST, dst},
                        {DNNL_ARG_SCRATCHPAD, pad}});
  stream.wait();
}
}  // namespace

at::Tensor WeightOnlyLinear::Impl::x3_tiled(const at::Tensor& x2) const {
  const int64_t real_rows = x2.size(0), tn = x3_tile_rows(), tiles = (out + tn - 1) / tn;
  // Rows padded with zeros to a multiple of X3_TILE_ROW_STEP: a primitive
  // is made per row count, and texts of every length would each make one.
  const int64_t rows = (real_rows + X3_TILE_ROW_STEP - 1) / X3_TILE_ROW_STEP * X3_TILE_ROW_STEP;
  at::Tensor y = at::empty({real_rows, out}, at::kFloat);
  // x_hi and x_lo once, slice by slice (slice [k0, k0 + k): x_hi [rows, k]
  // at 2 rows k0, x_lo after it), in the calling thread's workspace, read by all.
  auto* xs = static_cast<uint16_t*>(workspace(WS_X3, static_cast<size_t>(2 * rows * in) * 2));
  const float* xp = x2.data_ptr<float>();
  for (const auto& [k0, k] : x3_slices) {
    uint16_t* hi = xs + 2 * rows * k0;
    std::memset(hi + real_rows * k, 0, static_cast<size_t>((rows - real_rows) * k) * 2);
    std::memset(hi + (rows + real_rows) * k, 0, static_cast<size_t>((rows - real_rows) * k) * 2);
  }
  at::parallel_for(0, real_rows, 16, [&](int64_t a, int64_t e) {
    for (int64_t r = a; r < e; ++r)
      for (const auto& [k0, k] : x3_slices) {
        uint16_t* hi = xs + 2 * rows * k0;
        split_to_bf16(xp + r * in + k0, k, hi + r * k, hi + (rows + r) * k);
      }
  });
  const uint8_t* q = codes();
  const float* bp = bias.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int threads = at::get_num_threads();
  const int64_t products = 3 * static_cast<int64_t>(x3_slices.size());
  at::parallel_for(0, tiles, (tiles + threads - 1) / threads, [&](int64_t t0, int64_t t1) {
    // Each thread's own: the tile dequantised (fp32), split (W_hi and W_lo
    // [n, k] per slice, bf16, at 2 n k0), its products, the scratchpad.
    auto* w = static_cast<float*>(workspace(WS_PLAIN, static_cast<size_t>(tn * in) * 4));
    auto* ws = static_cast<uint16_t*>(workspace(WS_PACKED, static_cast<size_t>(2 * tn * in) * 2));
    auto* acc = static_cast<float*>(workspace(WS_LIMB_ACC, static_cast<size_t>(rows * tn) * 4));
    auto& engine = cpu_engine();
    dnnl::stream stream(engine);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o0 = t * tn, n = std::min(tn, out - o0);
      dequant_rows(q, o0, n, w);
      for (int64_t r = 0; r < n; ++r)
        for (const auto& [k0, k] : x3_slices)
          split_to_bf16(w + r * in + k0, k, ws + 2 * n * k0 + r * k, ws + 2 * n * k0 + (n + r) * k);
      const memory b_m(memory::desc({1, n}, dt::f32, tag::ab), engine, const_cast<float*>(bp) + o0);
      const memory acc_m(memory::desc({rows, n}, dt::f32, tag::ab), engine, acc);
      int64_t done = 0;
      for (const auto& [k0, k] : x3_slices) {
        uint16_t* x_hi = xs + 2 * rows * k0;
        uint16_t* w_hi = ws + 2 * n * k0;
        // x_hi W_hi + x_hi W_lo + x_lo W_hi
        const std::pair<uint16_t*, uint16_t*> parts[3] = {
            {x_hi, w_hi}, {x_hi, w_hi + n * k}, {x_hi + rows * k, w_hi}};
        for (const auto& [xpart, wpart] : parts) {
          const int role = done == 0 ? X3_FIRST : done + 1 == products ? X3_LAST : X3_MIDDLE;
          int64_t pad_bytes = 0;
          const dnnl::matmul prim = x3_products.at({k, n, role})->get(rows, &pad_bytes);
          void* pad = workspace(WS_PAD, static_cast<size_t>(std::max<int64_t>(pad_bytes, 1)));
          const memory src_m(memory::desc({rows, k}, dt::bf16, tag::ab), engine, xpart);
          const memory w_m(memory::desc({k, n}, dt::bf16, tag::ba), engine, wpart);
          const memory pad_m(memory::desc({std::max<int64_t>(pad_bytes, 1)}, dt::u8, tag::a), engine, pad);
          std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, w_m},
                                                  {DNNL_ARG_DST, acc_m}, {DNNL_ARG_SCRATCHPAD, pad_m}};
          if (role == X3_FIRST) args.insert({DNNL_ARG_BIAS, b_m});
          prim.execute(stream, args);
          ++done;
        }
      }
      stream.wait();
      for (int64_t r = 0; r < real_rows; ++r) std::memcpy(yp + r * out + o0, acc + r * n, static_cast<size_t>(n) * 4);
    }
  });
  return y;
}

at::Tensor WeightOnlyLinear::Impl::x3_own_tiled(const at::Tensor& x2) const {
  const int64_t rows = x2.size(0), tn = x3_tile_rows(), tiles = (out + tn - 1) / tn, k3 = 3 * in;
  at::Tensor y = at::empty({rows, out}, at::kFloat);
  // [x_hi | x_hi | x_lo] rows, once, in the calling thread's workspace, read by all.
  auto* xs = static_cast<uint16_t*>(workspace(WS_X3, static_cast<size_t>(rows * k3) * 2));
  const float* xp = x2.data_ptr<float>();
  at::parallel_for(0, rows, 16, [&](int64_t a, int64_t e) {
    for (int64_t r = a; r < e; ++r) {
      uint16_t* xr = xs + r * k3;
      split_to_bf16(xp + r * in, in, xr, xr + 2 * in);
      std::memcpy(xr + in, xr, static_cast<size_t>(in) * 2);
    }
  });
  const uint8_t* q = codes();
  const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  const int threads = at::get_num_threads();
  at::parallel_for(0, tiles, (tiles + threads - 1) / threads, [&](int64_t t0, int64_t t1) {
    // Each thread's own: the tile dequantised (fp32), its [W_hi | W_lo |
    // W_hi] rows (bf16), and those packed for the kernel.
    auto* w = static_cast<float*>(workspace(WS_PLAIN, static_cast<size_t>(tn * in) * 4));
    auto* ws = static_cast<uint16_t*>(workspace(WS_PACKED, static_cast<size_t>(tn * k3) * 2));
    auto* pk = static_cast<uint16_t*>(workspace(WS_PAD, static_cast<size_t>(AmxBf16Gemm::packed_elements(tn, k3)) * 2));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o0 = t * tn, n = std::min(tn, out - o0);
      dequant_rows(q, o0, n, w);
      for (int64_t r = 0; r < n; ++r) {
        uint16_t* wr = ws + r * k3;
        split_to_bf16(w + r * in, in, wr, wr + in);
        std::memcpy(wr + 2 * in, wr, static_cast<size_t>(in) * 2);
      }
      AmxBf16Gemm::pack(ws, n, k3, k3, pk);
      AmxBf16Gemm::run_packed(pk, n, k3, bp ? bp + o0 : nullptr, activation, xs, rows, k3, yp + o0, out);
    }
  });
  return y;
}

dnnl::reorder WeightOnlyLinear::Impl::make_pack(const onednn::RowsMatmul& gemm, memory::dim k, memory::dim out) {
  const memory::desc plain({k, out}, dt::bf16, tag::ba);
  return dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), plain, cpu_engine(), gemm.weights_desc()));
}

const void* WeightOnlyLinear::Impl::packed_bf16_weight(const onednn::RowsMatmul& gemm, bool split) const {
  // The whole layer dequantised into one bf16 scratch (rounded once from the
  // fp32 dequantisation), packed into the kernel's layout, for one product:
  // a tile of columns would write a strided output, which oneDNN 2.6 serves
  // only from gemm:jit. Both scratches are the thread's workspaces; the
  // layer keeps only its codes.
  const int64_t k = split ? 3 * in : in;
  auto* pp = static_cast<uint16_t*>(workspace(WS_PLAIN, static_cast<size_t>(out * k) * 2));
  const uint8_t* q = codes();
  at::parallel_for(0, out, 16, [&](int64_t o0, int64_t o1) {
    std::vector<float> w(static_cast<size_t>(16 * in));
    for (int64_t o = o0; o < o1; o += 16) {
      const int64_t n = std::min<int64_t>(16, o1 - o);
      dequant_rows(q, o, n, w.data());
      for (int64_t r = 0; r < n; ++r) {
        uint16_t* row = pp + (o + r) * k;
        if (!split) {
          round_to_bf16(w.data() + r * in, in, row);
          continue;
        }
        split_w3_row(w.data() + r * in, in, row);
      }
    }
  });
  auto& engine = cpu_engine();
  dnnl::stream stream(engine);
  const memory::desc& packed_md = gemm.weights_desc();
  void* packed_w = workspace(WS_PACKED, packed_md.get_size());
  memory plain_m(memory::desc({k, out}, dt::bf16, tag::ba), engine, pp);
  memory packed_m(packed_md, engine, packed_w);
  (split ? bf16x3_pack : bf16_pack).execute(stream, plain_m, packed_m);
  stream.wait();
  return packed_w;
}

at::Tensor WeightOnlyLinear::Impl::run_bf16(const onednn::RowsMatmul& gemm, const at::Tensor& x2,
                                            at::ScalarType out_type, bool split) const {
  const int64_t rows = x2.size(0), k = split ? 3 * in : in;
  const void* packed_w = packed_bf16_weight(gemm, split);
  auto& engine = cpu_engine();
  dnnl::stream stream(engine);
  // bf16x3 multiplies rows padded to X3_ROW_STEP (zero rows, whose
  // products land past `rows` and are dropped).
  const int64_t padded = split ? (rows + X3_ROW_STEP - 1) / X3_ROW_STEP * X3_ROW_STEP : rows;
  at::Tensor y = at::empty({padded, out}, out_type);
  const at::Tensor b = bias.defined() ? bias : at::zeros({out}, at::kFloat);
  memory w_m(gemm.weights_desc(), engine, const_cast<void*>(packed_w));
  memory b_m(memory::desc({1, out}, dt::f32, tag::ab), engine, b.data_ptr());
  // bf16x3 splits x into the thread's workspace X3_BLOCK_ROWS rows at a
  // time; a bf16 input is multiplied as it is, in one product.
  const int64_t block = split ? std::min(padded, X3_BLOCK_ROWS) : rows;
  auto* x3 = split ? static_cast<uint16_t*>(workspace(WS_X3, static_cast<size_t>(block * k) * 2)) : nullptr;
  const float* xp = split ? x2.data_ptr<float>() : nullptr;
  char* yp = static_cast<char*>(y.data_ptr());
  for (int64_t r0 = 0; r0 < padded; r0 += block) {
    const int64_t n = std::min(block, padded - r0);
    const void* src = x2.data_ptr();
    if (split) {
      const int64_t real = std::min(n, rows - r0);
      std::memset(x3 + real * k, 0, static_cast<size_t>((n - real) * k) * 2);
      at::parallel_for(0, real, 16, [&](int64_t a, int64_t e) {
        for (int64_t r = a; r < e; ++r) {
          split_x3_row(xp + (r0 + r) * in, in, x3 + r * k);
        }
      });
      src = x3;
    }
    int64_t pad_bytes = 0;
    const dnnl::matmul prim = gemm.get(n, &pad_bytes);
    memory src_m(memory::desc({n, k}, dt::bf16, tag::ab), engine, const_cast<void*>(src));
    memory y_m(memory::desc({n, out}, onednn::type_of(out_type), tag::ab), engine,
               yp + r0 * out * static_cast<int64_t>(y.element_size()));
    memory pad_m(memory::desc({std::max<int64_t>(pad_bytes, 1)}, dt::u8, tag::a), engine,
                 workspace(WS_PAD, static_cast<size_t>(std::max<int64_t>(pad_bytes, 1))));
    execute_matmul(prim, stream, src_m, w_m, b_m, y_m, pad_m);
  }
  return padded == rows ? y : y.narrow(0, 0, rows);
}
#endif

at::Tensor WeightOnlyLinear::forward_bf16(const at::Tensor& x) const {
  const Impl& m = *impl_;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = m.out;
  at::Tensor x2 = x.reshape({-1, m.in});
  if (m.divisor.defined()) x2 = at::div(x2.to(at::kFloat), m.divisor).to(at::kBFloat16);
  x2 = x2.contiguous();
#ifdef EMBEVAL_HAVE_DNNL
  // On the int8 limbs up to X3_MIN_ROWS rows: the widened input's exact
  // product, rounded once, where dequantising the whole layer to bf16 (read
  // back from the packed int8 copy first) costs more than the rows' products
  // (bert-base, batch 1 x 128 tokens: 110 ms that way against 58 from codes
  // kept as they are).
  if ((m.limb_gemm || m.vnni) && x2.size(0) <= X3_MIN_ROWS)
    return (*this)(x.reshape({-1, m.in}).to(at::kFloat)).to(at::kBFloat16).view(shape);
  prepare_bf16();
  if (m.bf16_gemm && x2.size(0) > 0) return m.run_bf16(*m.bf16_gemm, x2, at::kBFloat16, false).view(shape);
#endif
  // No bf16 kernel: the fp32 path (which applies the divisor itself) on the
  // widened input, rounded once.
  return (*this)(x.reshape({-1, m.in}).to(at::kFloat)).to(at::kBFloat16).view(shape);
}

std::string WeightOnlyLinear::bf16_implementation() const {
  if (!impl_) return "none";
  prepare_bf16();
#ifdef EMBEVAL_HAVE_DNNL
  const std::string limbs =
      impl_->limb_gemm ? fmt::format("up to {} rows: int8 codes x 3 int8 limbs of x -> onednn:{}; more: ", X3_MIN_ROWS,
                                     impl_->limb_gemm->kernel())
      : impl_->vnni ? fmt::format("up to {} rows: int{} codes x 3 int8 limbs of x -> avx512_vnni; more: ", X3_MIN_ROWS,
                                  impl_->bits)
                    : "";
  if (impl_->bf16_gemm)
    return limbs + "int" + std::to_string(impl_->bits) + " -> bf16 -> onednn:" + impl_->bf16_gemm->kernel();
#endif
  return "fp32 path, rounded to bf16";
}

at::Tensor WeightOnlyLinear::operator()(const at::Tensor& x) const {
  const Impl& m = *impl_;
  if (x.size(-1) != m.in) fail("WeightOnlyLinear: input has {} features, the layer takes {}", x.size(-1), m.in);
  if (x.scalar_type() == at::kBFloat16 && x.device().is_cpu()) return forward_bf16(x);
  if (x.scalar_type() != at::kFloat || !x.device().is_cpu())
    fail("WeightOnlyLinear: input is {} on {}; the layer takes float32 or bfloat16 on cpu",
         c10::toString(x.scalar_type()), x.device().str());
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = m.out;
  if (m.vnni) {
    // The VNNI kernel divides by the input divisor as it makes each row's limbs.
    const at::Tensor x1 = x.reshape({-1, m.in}).contiguous();
    at::Tensor y = at::empty({x1.size(0), m.out}, at::kFloat);
    m.vnni->run(x1.data_ptr<float>(), x1.size(0), y.data_ptr<float>(),
                m.divisor.defined() ? m.divisor.data_ptr<float>() : nullptr);
    return y.view(shape);
  }
  const at::Tensor x2 = m.divisor.defined() ? at::div(x.reshape({-1, m.in}), m.divisor) : x.reshape({-1, m.in}).contiguous();
  const int64_t rows = x2.size(0);
  const int64_t tiles = (m.out + m.tile - 1) / m.tile;
#ifdef EMBEVAL_HAVE_DNNL
  if (m.limb_gemm) {
    at::Tensor y = at::empty({rows, m.out}, at::kFloat);
    const float* xp = x2.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    const int threads = at::get_num_threads();
    if (threads > 1 && rows >= LIMB_ROWS_PER_THREAD_MIN * threads) {
      // Each thread takes its own run of rows through every step, block by
      // block, on its own core: no barrier inside the layer.
      at::parallel_for(0, rows, (rows + threads - 1) / threads, [&](int64_t begin, int64_t end) {
        for (int64_t r0 = begin; r0 < end; r0 += LIMB_BLOCK_ROWS)
          m.limb_rows(xp + r0 * m.in, std::min(LIMB_BLOCK_ROWS, end - r0), yp + r0 * m.out);
      });
    } else {
      for (int64_t r0 = 0; r0 < rows; r0 += LIMB_BLOCK_ROWS)
        m.limb_rows(xp + r0 * m.in, std::min(LIMB_BLOCK_ROWS, rows - r0), yp + r0 * m.out);
    }
    return y.view(shape);
  }
#endif
  if (rows <= SMALL_M && !m.gidx.defined()) {
    at::Tensor y = at::empty({rows, m.out}, at::kFloat);
    // Per-group sums of each input row, then the rows of W in parallel.
    std::vector<float> xsum(static_cast<size_t>(rows * m.groups), 0.0f);
    const float* xp = x2.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < m.groups; ++g) {
        float acc = 0;
        for (int64_t i = g * m.group_size; i < (g + 1) * m.group_size; ++i) acc += xp[r * m.in + i];
        xsum[static_cast<size_t>(r * m.groups + g)] = acc;
      }
    const int64_t row_bytes = m.packed.size(1);
    const float* bias = m.bias.defined() ? m.bias.data_ptr<float>() : nullptr;
    at::parallel_for(0, m.out, 16, [&](int64_t o0, int64_t o1) {
      small_m_rows(m.packed.data_ptr<uint8_t>(), row_bytes, m.runs, m.scales.data_ptr<float>(),
                   m.zeros.data_ptr<float>(), bias, m.in, m.groups, xp, rows, xsum.data(), o0, o1, m.out,
                   y.data_ptr<float>());
    });
    return (m.activation == LinearActivation::none ? y : apply_activation(y, m.activation)).view(shape);
  }
#ifdef EMBEVAL_HAVE_DNNL
  prepare_bf16();
  if (m.bf16x3_gemm && rows > X3_MIN_ROWS) {
    // bf16x3: x and W each split into bf16 high and low parts, and the three
    // products that matter summed in fp32 by one bf16 GEMM of depth 3 in.
    return m.run_bf16(*m.bf16x3_gemm, x2, at::kFloat, true).view(shape);
  }
  // 17 to 512 rows where bf16 is native: bf16x3 a tile of output rows at a
  // time, each thread its own tiles (dequantising the whole layer for one
  // product, as above, costs more than these rows' products).
  if (m.x3_own && rows > 0) return m.x3_own_tiled(x2).view(shape);
  if (!m.x3_products.empty() && rows > 0) return m.x3_tiled(x2).view(shape);
#endif
  // Allocated here, not above: an output made and dropped unused on the
  // bf16x3 path splits malloc's heap around the outputs that live on.
  at::Tensor y = at::empty({rows, m.out}, at::kFloat);
#ifdef EMBEVAL_HAVE_DNNL
  if (!m.gemms.empty()) {
    // A tile at a time: the threads dequantise its rows together, then
    // oneDNN multiplies it on all of them. (Each thread multiplying tiles of
    // its own on one core read all of x once per thread: 0.82x of the fp32
    // model against 0.87-0.89x this way, bert-base batch 32, 2 threads.)
    std::vector<float> w(static_cast<size_t>(m.tile * m.in));
    const uint8_t* q = m.codes();
    dnnl::stream stream(cpu_engine());
    memory src_m(memory::desc({rows, m.in}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab), cpu_engine(),
                 x2.data_ptr());
    for (int64_t t = 0; t < tiles && rows > 0; ++t) {
      const int64_t o0 = t * m.tile, n = std::min(m.tile, m.out - o0);
      at::parallel_for(0, n, 16, [&](int64_t r0, int64_t r1) { m.dequant_rows(q, o0 + r0, r1 - r0, w.data() + r0 * m.in); });
      const Impl::TileGemm& g = n == m.tile ? m.gemms[0] : m.gemms[1];
      memory w_m(memory::desc({m.in, n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ba), cpu_engine(),
                 w.data());
      memory b_m(memory::desc({1, n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab), cpu_engine(),
                 m.bias.data_ptr<float>() + o0);
      memory y_m(memory::desc({rows, n}, dnnl::memory::data_type::f32, memory::dims{m.out, 1}), cpu_engine(),
                 y.data_ptr<float>() + o0);
      g.matmul.execute(stream, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, w_m}, {DNNL_ARG_BIAS, b_m}, {DNNL_ARG_DST, y_m}});
      stream.wait();
    }
    return y.view(shape);
  }
#endif
  at::Tensor w = at::empty({m.tile, m.in}, at::kFloat);
  const uint8_t* q = m.codes();
  float* wp = w.data_ptr<float>();
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t o0 = t * m.tile, n = std::min(m.tile, m.out - o0);
    at::parallel_for(0, n, 16, [&](int64_t r0, int64_t r1) { m.dequant_rows(q, o0 + r0, r1 - r0, wp + r0 * m.in); });
    y.narrow(1, o0, n).copy_(at::mm(x2, w.narrow(0, 0, n).t()));
  }
  if (m.bias.defined()) y.add_(m.bias);
  return apply_activation(y, m.activation).view(shape);
}

std::string WeightOnlyLinear::implementation() const {
  if (!impl_) return "none";
  prepare_bf16();
#ifdef EMBEVAL_HAVE_DNNL
  if (impl_->limb_gemm)
    return "int8 codes x 3 int8 limbs of x (fp32-exact) -> onednn:" + impl_->limb_gemm->kernel() + " s8s8s32";
#endif
  if (impl_->vnni)
    return fmt::format("int{} codes x 3 int8 limbs of x, groups of {} (fp32-exact sums) -> avx512_vnni", impl_->bits,
                       impl_->vnni_group);
  const std::string small =
      impl_->gidx.defined() ? "" : fmt::format("up to {} rows: int{} codes in registers; ", SMALL_M, impl_->bits);
  const std::string tiles = fmt::format("int{} tiles of {} rows -> {}", impl_->bits, impl_->tile, impl_->kernel);
#ifdef EMBEVAL_HAVE_DNNL
  if (impl_->bf16x3_gemm && impl_->x3_own)
    return small + fmt::format("up to {} rows: bf16x3 (x and W split into bf16 pairs), each thread its own tiles of "
                               "{} rows -> amx:bf16; more: bf16x3 -> onednn:{}",
                               X3_MIN_ROWS, impl_->x3_tile_rows(), impl_->bf16x3_gemm->kernel());
  if (impl_->bf16x3_gemm && !impl_->x3_products.empty())
    return small + fmt::format("up to {} rows: bf16x3 (x and W split into bf16 pairs), each thread its own tiles of "
                               "{} rows, inputs in {} slices -> onednn:{}; more: bf16x3 -> onednn:{}",
                               X3_MIN_ROWS, impl_->x3_tile_rows(), impl_->x3_slices.size(),
                               impl_->x3_products.begin()->second->kernel(), impl_->bf16x3_gemm->kernel());
  if (impl_->bf16x3_gemm)
    return small + fmt::format("up to {} rows: {}; more: bf16x3 (x and W split into bf16 pairs) -> onednn:{}",
                               X3_MIN_ROWS, tiles, impl_->bf16x3_gemm->kernel());
#endif
  return small + (small.empty() ? "" : "more: ") + tiles;
}

int64_t WeightOnlyLinear::weight_bytes() const {
  if (!impl_) return 0;
  int64_t codes = impl_->packed.defined() ? impl_->packed.numel() : 0;
#ifdef EMBEVAL_HAVE_DNNL
  if (impl_->limb_gemm) codes = impl_->limb_gemm->packed_bytes() + impl_->out * 4;  // + the int32 zero shifts
#endif
  if (impl_->vnni) codes = impl_->vnni->packed_bytes();
  return codes + impl_->scales.numel() * 8 + (impl_->gidx.defined() ? impl_->in * 4 : 0) +
         (impl_->divisor.defined() ? impl_->in * 4 : 0);
}

const at::Tensor& WeightOnlyLinear::input_divisor() const { return impl_->divisor; }

}  // namespace embeval
