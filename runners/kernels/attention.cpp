#include "runners/kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/version.h>

#include "harness/error.h"
#include "runners/kernels/cpu_attention.h"
#include "runners/kernels/cpu_dispatch.h"
#include "runners/kernels/vec_math.h"

#ifdef EMBEVAL_HAVE_DNNL
#include "runners/kernels/onednn_util.h"
#endif

namespace embeval {
namespace {

void check_qkv(const at::Tensor& qkv, int64_t heads) {
  if (qkv.dim() != 3 || heads <= 0 || qkv.size(2) % (3 * heads) != 0)
    fail("attention: qkv has shape [{}], expected [batch, seq, 3 * heads * head_dim]", fmt::join(qkv.sizes(), ", "));
}

// embeval's kernels (runners/kernels/cpu_attention.h): bf16 on AMX or
// VDPBF16PS products, fp32 on FMA; undefined where they cannot run.
at::Tensor kernel_attention(const at::Tensor& qkv, const at::Tensor& additive_mask, int64_t heads) {
  const bool bf16 = qkv.scalar_type() == at::kBFloat16;
  if (!qkv.device().is_cpu() || !qkv.is_contiguous() || qkv.numel() == 0 ||
      (bf16 ? bf16_attention_products() == Bf16AttentionProducts::none
            : qkv.scalar_type() != at::kFloat || !fp32_attention_available()))
    return at::Tensor();
  const int64_t b = qkv.size(0), t = qkv.size(1), h = qkv.size(2) / 3;
  const at::Tensor mask = additive_mask.to(at::kFloat).expand({b, 1, 1, t}).reshape({b, t}).contiguous();
  at::Tensor ctx = at::empty({b, t, h}, qkv.options());
  const bool ran = bf16 ? bf16_attention(reinterpret_cast<const uint16_t*>(qkv.data_ptr<at::BFloat16>()),
                                         mask.data_ptr<float>(), b, t, heads, h / heads,
                                         reinterpret_cast<uint16_t*>(ctx.data_ptr<at::BFloat16>()))
                        : fp32_attention(qkv.data_ptr<float>(), mask.data_ptr<float>(), b, t, heads, h / heads,
                                         ctx.data_ptr<float>());
  return ran ? ctx : at::Tensor();
}

// Rows of a block in blocked_qkv_attention: whole texts, as many as fit
// (bert-base forward, batch 32, alternating: blocks of 128 / 256 / 512 rows
// bf16 464-546 / 456-463 / 456-458 ms, bf16+W8A8 320-346 / 326-355 /
// 344-350: no clear winner).
constexpr int64_t QKV_BLOCK_ROWS = 256;

#ifdef EMBEVAL_HAVE_DNNL
using dnnl::memory;
using dt = memory::data_type;

// Bytes of fp32 scores one tile may hold: they are written, softmaxed and
// read back, so they should stay in cache (bge-small shape, seq 512, 1
// thread: whole-batch scores 5.2 sentences/s, ~4 MB tiles 6.9) ...
constexpr int64_t TILE_SCORE_BYTES = int64_t{4} << 20;
// ... but a block has at least this many query rows, or the products get too
// few rows to run at speed (BM_attention, 16 heads, seq 4096, 1 thread:
// 16-row blocks 2.3-2.9 s, 128 / 256 / 512 rows 1.4-1.7 s).
constexpr int64_t MIN_QUERY_BLOCK = 256;

// The two products of a tile: `g` batch rows x `q` query rows against all `t` keys.
struct AttentionPrimitives {
  memory::desc q, kt, scores, mask, probs, v, ctx;
  dnnl::matmul score, context;
};

// False when oneDNN offers only a reference kernel for the tile.
bool make_primitives(int64_t g, int64_t q, int64_t t, int64_t heads, int64_t hd, dt type, AttentionPrimitives* p) {
  const int64_t h = heads * hd;
  const memory::dims qkv_strides = {t * 3 * h, hd, 3 * h, 1};  // [g, heads, rows, hd] inside [g, t, 3, heads, hd]
  // scores = (Q K^T) * scale + mask, fp32 [g, heads, q, t].
  p->q = memory::desc({g, heads, q, hd}, type, qkv_strides);
  p->kt = memory::desc({g, heads, hd, t}, type, {t * 3 * h, hd, 1, 3 * h});
  p->scores = memory::desc({g, heads, q, t}, dt::f32, memory::format_tag::abcd);
  p->mask = memory::desc({g, 1, 1, t}, dt::f32, memory::format_tag::abcd);
  dnnl::post_ops ops;
  onednn::append_eltwise(ops, dnnl::algorithm::eltwise_linear, static_cast<float>(1.0 / std::sqrt(double(hd))), 0.f);
  ops.append_binary(dnnl::algorithm::binary_add, p->mask);
  dnnl::primitive_attr score_attr;
  score_attr.set_post_ops(ops);
  const auto score_pd = onednn::matmul_pd(p->q, p->kt, memory::desc(), p->scores, score_attr);
  // context = probs V, written as [g, q, heads, hd] rows of the [b, t, h] output.
  p->probs = memory::desc({g, heads, q, t}, type, memory::format_tag::abcd);
  p->v = memory::desc({g, heads, t, hd}, type, qkv_strides);
  p->ctx = memory::desc({g, heads, q, hd}, type, {t * h, hd, h, 1});
  const auto ctx_pd = onednn::matmul_pd(p->probs, p->v, memory::desc(), p->ctx, dnnl::primitive_attr());
  if (onednn::is_reference_kernel(score_pd.impl_info_str()) || onednn::is_reference_kernel(ctx_pd.impl_info_str()))
    return false;
  p->score = dnnl::matmul(score_pd);
  p->context = dnnl::matmul(ctx_pd);
  return true;
}

// Primitives remembered by shape: for a short text, building the primitive
// descriptors costs more than the products (BM_attention, 16 heads, seq 16:
// 92-104 us a call rebuilding them, 70-75 us cached), and batch-1 latency
// runs hit the same few shapes over and over. `make` returns null when
// oneDNN offers no suitable kernel (remembered too). Bounded: a run through
// many lengths starts over rather than grow without limit.
using ShapeKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int>;
template <class P, class Make>
std::shared_ptr<const P> cached(const ShapeKey& key, Make make) {
  static std::mutex mutex;
  static std::map<ShapeKey, std::shared_ptr<const P>> cache;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  std::shared_ptr<const P> made = make();
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() >= 1024) cache.clear();
  cache.emplace(key, made);
  return made;
}

std::shared_ptr<const AttentionPrimitives> cached_primitives(int64_t g, int64_t q, int64_t t, int64_t heads,
                                                             int64_t hd, dt type) {
  return cached<AttentionPrimitives>(ShapeKey{g, q, t, heads, hd, static_cast<int>(type)}, [&] {
    auto p = std::make_shared<AttentionPrimitives>();
    return make_primitives(g, q, t, heads, hd, type, p.get()) ? std::shared_ptr<const AttentionPrimitives>(p)
                                                               : nullptr;
  });
}

// ---- bf16 on AMX: dense per-head copies, AMX products, one fused softmax ----
//
// oneDNN 2.6 runs the strided products above with gemm:jit only (no AMX). With
// Q, K and V copied out per head ([g, heads, t, d], dense) both products get
// the AMX brgemm kernel, and without the scale-and-mask post-op the score
// product runs ~3x faster (2 threads, 32 x 12 heads x 128 x 128 x 64: 1.0
// ms against 2.9); the scale, the mask, the softmax and the rounding of the
// probabilities to bf16 then happen in one pass over each row of scores.

struct DensePrimitives {
  memory::desc q, kt, scores, probs, v, ctx;
  dnnl::matmul score, context;
  int64_t scratchpad_bytes = 0;  // with a user scratchpad: the larger of the two products'
};

// `g` batch rows, all `t` query rows, Q, K, V and the context in `type`
// (the scores fp32); false unless both products get AMX (bf16) or at least
// a non-reference kernel (fp32). `user_scratchpad`: the caller passes each
// execution its own scratchpad (primitives executed from several threads at
// once).
bool make_dense_primitives(int64_t g, int64_t t, int64_t heads, int64_t hd, DensePrimitives* p,
                           bool user_scratchpad = false, dt type = dt::bf16) {
  const int64_t h = heads * hd;
  dnnl::primitive_attr attr;
  if (user_scratchpad) attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  p->q = memory::desc({g, heads, t, hd}, type, memory::format_tag::abcd);
  p->kt = memory::desc({g, heads, hd, t}, type, memory::format_tag::abdc);  // K [g, heads, t, hd], transposed
  p->scores = memory::desc({g, heads, t, t}, dt::f32, memory::format_tag::abcd);
  const auto score_pd = onednn::matmul_pd(p->q, p->kt, memory::desc(), p->scores, attr);
  p->probs = memory::desc({g, heads, t, t}, type, memory::format_tag::abcd);
  p->v = memory::desc({g, heads, t, hd}, type, memory::format_tag::abcd);
  p->ctx = memory::desc({g, heads, t, hd}, type, {t * h, hd, h, 1});  // rows of the [b, t, h] output
  const auto ctx_pd = onednn::matmul_pd(p->probs, p->v, memory::desc(), p->ctx, attr);
  const bool fast = type == dt::bf16 ? onednn::is_amx_kernel(score_pd.impl_info_str()) && onednn::is_amx_kernel(ctx_pd.impl_info_str())
                                     : !onednn::is_reference_kernel(score_pd.impl_info_str()) &&
                                           !onednn::is_reference_kernel(ctx_pd.impl_info_str());
  if (!fast) return false;
  p->score = dnnl::matmul(score_pd);
  p->context = dnnl::matmul(ctx_pd);
  if (user_scratchpad)
    p->scratchpad_bytes = static_cast<int64_t>(
        std::max(score_pd.scratchpad_desc().get_size(), ctx_pd.scratchpad_desc().get_size()));
  return true;
}

// probs = bf16(softmax(scores * scale + mask)) for `rows` rows of `t`,
// scores overwritten, rounded to nearest even as c10::BFloat16; with probs
// null, the fp32 probabilities are left in scores instead. Simple loops,
// each one vectorisable, the two reductions in 16-lane GCC vectors (eight
// scalar lanes came out scalar: a tile of 5 x 12 x 128 rows of 128 took
// 1.15 ms on one thread, these loops 0.76-0.81 ms), each vector's lanes
// folded in a tree (embeval_hsum16 / hmax16) with the scale and mask added
// in the max pass: at rows of 128, the two 15-step scalar chains had cost
// as much as the rest (bert-base bf16, batch 32: the softmax took 41% of
// the attention's thread time, 30% after; attention 5.25 -> 4.30 ms a layer).
typedef EmbevalFloats16 Floats16;
EMBEVAL_CLONES void softmax_rows(float* __restrict__ scores, const float* __restrict__ mask, int64_t rows,
                                      int64_t t, float scale, uint16_t* __restrict__ probs) {
  for (int64_t r = 0; r < rows; ++r) {
    float* __restrict__ s = scores + r * t;
    // s = s * scale + mask and its maximum, in one pass.
    Floats16 lanes = Floats16{} - INFINITY;
    int64_t j = 0;
    for (; j + 16 <= t; j += 16) {
      Floats16 x, k;
      std::memcpy(&x, s + j, sizeof x);
      std::memcpy(&k, mask + j, sizeof k);
      x = x * scale + k;
      std::memcpy(s + j, &x, sizeof x);
      lanes = lanes > x ? lanes : x;
    }
    float m = embeval_hmax16(lanes);
    for (; j < t; ++j) {
      s[j] = s[j] * scale + mask[j];
      m = m > s[j] ? m : s[j];
    }
    for (j = 0; j < t; ++j) EMBEVAL_EXP_NONPOSITIVE(s[j] - m, s[j]);
    Floats16 sums = {};
    j = 0;
    for (; j + 16 <= t; j += 16) {
      Floats16 x;
      std::memcpy(&x, s + j, sizeof x);
      sums += x;
    }
    float total = embeval_hsum16(sums);
    for (; j < t; ++j) total += s[j];
    const float inv = 1.0f / total;
    if (probs == nullptr) {
      for (j = 0; j < t; ++j) s[j] *= inv;
      continue;
    }
    uint16_t* __restrict__ out = probs + r * t;
    for (j = 0; j < t; ++j) EMBEVAL_ROUND_BF16(s[j] * inv, out[j]);
  }
}

// A batch row at a time on each thread, every step of it on that thread:
// per-head copies of its Q, K and V, the score product, the softmax and the
// context product, all in the thread's cache. The tiled form below runs
// each step across the threads with a barrier after it; on bert-base
// (batch 32 x 128, 12 heads, 2 threads) its threads spent a third of their
// time waiting in those barriers (perf: libgomp's spin); this form took the
// bf16 attention from 10.9 to 6.3 ms a layer, and fp32's (strided gemm:jit
// products, ATen's softmax) from 16.5 to 10.8 (BM_layer_breakdown).
//
// Inside the parallel loop oneDNN runs each product on the calling thread
// (its brgemm matmul splits work over the threads available at execution);
// each thread passes its own scratchpad.
at::Tensor rowwise_attention(const at::Tensor& qkv, const at::Tensor& mask, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), h = qkv.size(2) / 3, hd = h / heads;
  const dt type = onednn::type_of(qkv.scalar_type());
  auto prims = cached<DensePrimitives>(ShapeKey{1, t, t, heads, hd, 100 + static_cast<int>(type)}, [&] {
    auto d = std::make_shared<DensePrimitives>();
    return make_dense_primitives(1, t, heads, hd, d.get(), true, type) ? std::shared_ptr<const DensePrimitives>(d)
                                                                      : nullptr;
  });
  if (!prims) return at::Tensor();
  const DensePrimitives& p = *prims;
  const bool bf16 = type == dt::bf16;
  const int64_t elem = qkv.element_size();
  const at::Tensor mask_f32 = mask.to(at::kFloat).contiguous();
  at::Tensor ctx = at::empty({b, t, h}, qkv.options());
  const float scale = static_cast<float>(1.0 / std::sqrt(double(hd)));
  const char* src = static_cast<const char*>(qkv.data_ptr());
  char* out = static_cast<char*>(ctx.data_ptr());
  const float* mp = mask_f32.data_ptr<float>();
  at::parallel_for(0, b, 1, [&](int64_t begin, int64_t end) {
    auto& engine = onednn::cpu_engine();
    dnnl::stream stream(engine);
    at::Tensor parts = at::empty({3 * heads * t * hd}, qkv.options());  // [3, heads, t, hd]
    at::Tensor scores = at::empty({heads * t * t}, qkv.options().dtype(at::kFloat));
    at::Tensor probs = bf16 ? at::empty({heads * t * t}, qkv.options()) : scores;  // fp32: softmaxed in place
    const int64_t pad_bytes = std::max<int64_t>(p.scratchpad_bytes, 1);
    at::Tensor pad = at::empty({pad_bytes}, qkv.options().dtype(at::kByte));
    char* pp = static_cast<char*>(parts.data_ptr());
    float* sp = scores.data_ptr<float>();
    auto* prob16 = bf16 ? reinterpret_cast<uint16_t*>(probs.data_ptr<at::BFloat16>()) : nullptr;
    const memory scratch(memory::desc({pad_bytes}, dt::u8, memory::format_tag::a), engine, pad.data_ptr());
    const int64_t block = heads * t * hd * elem;
    const memory q(p.q, engine, pp), k(p.kt, engine, pp + block), v(p.v, engine, pp + 2 * block);
    const memory sc(p.scores, engine, sp), pr(p.probs, engine, probs.data_ptr());
    const int64_t piece = hd * elem;
    for (int64_t row = begin; row < end; ++row) {
      // [t, 3, heads, hd] -> [3, heads, t, hd]: column block c = which * heads + head.
      const char* x = src + row * t * 3 * h * elem;
      for (int64_t i = 0; i < t; ++i)
        for (int64_t c = 0; c < 3 * heads; ++c) std::memcpy(pp + (c * t + i) * piece, x + (i * 3 * heads + c) * piece, piece);
      p.score.execute(stream, {{DNNL_ARG_SRC, q}, {DNNL_ARG_WEIGHTS, k}, {DNNL_ARG_DST, sc}, {DNNL_ARG_SCRATCHPAD, scratch}});
      stream.wait();
      softmax_rows(sp, mp + row * t, heads * t, t, scale, prob16);
      p.context.execute(stream, {{DNNL_ARG_SRC, pr},
                                 {DNNL_ARG_WEIGHTS, v},
                                 {DNNL_ARG_DST, memory(p.ctx, engine, out + row * t * h * elem)},
                                 {DNNL_ARG_SCRATCHPAD, scratch}});
      stream.wait();
    }
  });
  return ctx;
}

// Undefined when the CPU has no AMX for these products or t needs query
// blocks (then the strided path below). Tiles of `group` batch rows whose
// fp32 scores fit TILE_SCORE_BYTES, as there, each step across the threads.
at::Tensor dense_bf16_attention(const at::Tensor& qkv, const at::Tensor& mask, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), h = qkv.size(2) / 3, hd = h / heads;
  const int64_t row_bytes = heads * t * 4;
  if (row_bytes * t > TILE_SCORE_BYTES && t > MIN_QUERY_BLOCK) return at::Tensor();  // query blocks needed
  const int64_t group = std::clamp<int64_t>(TILE_SCORE_BYTES / (row_bytes * t), 1, b);
  std::map<int64_t, std::shared_ptr<const DensePrimitives>> prims;
  for (int64_t g : {group, b % group}) {
    if (g == 0 || prims.count(g)) continue;
    auto p = cached<DensePrimitives>(ShapeKey{g, t, t, heads, hd, 0}, [&] {
      auto d = std::make_shared<DensePrimitives>();
      return make_dense_primitives(g, t, heads, hd, d.get()) ? std::shared_ptr<const DensePrimitives>(d) : nullptr;
    });
    if (!p) return at::Tensor();
    prims[g] = std::move(p);
  }
  auto& engine = onednn::cpu_engine();
  dnnl::stream stream(engine);
  const at::Tensor mask_f32 = mask.to(at::kFloat).contiguous();
  at::Tensor parts = at::empty({3, group, heads, t, hd}, qkv.options());  // q, k, v of a tile, per head
  at::Tensor scores = at::empty({group * heads * t, t}, qkv.options().dtype(at::kFloat));
  at::Tensor probs = at::empty({group * heads * t, t}, qkv.options());
  at::Tensor ctx = at::empty({b, t, h}, qkv.options());
  const float scale = static_cast<float>(1.0 / std::sqrt(double(hd)));
  for (int64_t start = 0; start < b; start += group) {
    const int64_t g = std::min(group, b - start);
    const DensePrimitives& p = *prims.at(g);
    at::Tensor tile = parts.narrow(1, 0, g);
    tile.copy_(qkv.narrow(0, start, g).view({g, t, 3, heads, hd}).permute({2, 0, 3, 1, 4}));
    const at::Tensor q = tile[0], k = tile[1], v = tile[2];  // each [g, heads, t, hd], contiguous
    p.score.execute(stream, {{DNNL_ARG_SRC, memory(p.q, engine, q.data_ptr())},
                             {DNNL_ARG_WEIGHTS, memory(p.kt, engine, k.data_ptr())},
                             {DNNL_ARG_DST, memory(p.scores, engine, scores.data_ptr())}});
    stream.wait();
    float* sp = scores.data_ptr<float>();
    auto* pp = reinterpret_cast<uint16_t*>(probs.data_ptr<at::BFloat16>());
    const float* mp = mask_f32.data_ptr<float>() + start * t;
    // Rows of scores are (batch row, head, query): the mask row is the batch row's.
    at::parallel_for(0, g * heads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t gh = begin; gh < end; ++gh)
        softmax_rows(sp + gh * t * t, mp + (gh / heads) * t, t, t, scale, pp + gh * t * t);
    });
    p.context.execute(stream, {{DNNL_ARG_SRC, memory(p.probs, engine, probs.data_ptr())},
                               {DNNL_ARG_WEIGHTS, memory(p.v, engine, v.data_ptr())},
                               {DNNL_ARG_DST, memory(p.ctx, engine, static_cast<char*>(ctx.data_ptr()) + start * t * h * 2)}});
    stream.wait();
  }
  return ctx;
}

// An undefined tensor when oneDNN offers only a reference kernel. The work
// goes in tiles whose fp32 scores fit TILE_SCORE_BYTES: several batch rows
// when a row's scores fit, else one row and a block of query rows (softmax
// is per query row, so blocks are exact). Memory then grows with t, not t^2:
// one bge-m3 row of 8192 tokens would otherwise need 4.3 GB of scores per
// layer (and as much again for the probabilities), 256-row blocks 134 MB.
at::Tensor onednn_attention(const at::Tensor& qkv, const at::Tensor& mask, int64_t heads) {
  // fp32 on embeval's FMA kernel first (Zen 4, bert-base layer, batch 32:
  // see cpu_attention.cpp's fp32 section).
  if (qkv.scalar_type() == at::kFloat)
    if (at::Tensor ctx = kernel_attention(qkv, mask, heads); ctx.defined()) return ctx;
  // At least two batch rows a thread whose scores fit a tile: a row per thread.
  const int64_t seq = qkv.size(1);
  if (qkv.size(0) >= 2 * at::get_num_threads() && heads * seq * seq * 4 <= TILE_SCORE_BYTES) {
    at::Tensor ctx = rowwise_attention(qkv, mask, heads);
    if (ctx.defined()) return ctx;
  }
  // Elsewhere (one batch row, or longer texts) bf16 runs the AMX kernel:
  // bert-base bf16 forward, 2 threads, seq 512 batch 32: 2.25-2.73 s
  // against 3.34-3.50 with the forms here; seq 128 batch 1: 21.8-23.4 ms
  // against 22.8-24.6. Not before the row-wise form: at seq 128 batch 32,
  // alternating forwards in one process, the kernel was no faster there
  // (455-493 ms against 441-488), though alone it takes 2.8-3.4 ms a layer
  // against the row-wise form's 4.5-4.7 (BM_attention_bf16 in
  // tests/bench/bench_encoder.cpp); in the layer both take ~5.
  if (at::Tensor ctx = kernel_attention(qkv, mask, heads); ctx.defined()) return ctx;
  if (qkv.scalar_type() == at::kBFloat16) {
    at::Tensor ctx = dense_bf16_attention(qkv, mask, heads);
    if (ctx.defined()) return ctx;
  }
  const int64_t b = qkv.size(0), t = qkv.size(1), h = qkv.size(2) / 3, hd = h / heads;
  const dt type = onednn::type_of(qkv.scalar_type());
  const size_t elem = qkv.element_size();
  const int64_t row_bytes = heads * t * 4;  // one query row's scores
  const int64_t block = std::min(t, std::max(MIN_QUERY_BLOCK, TILE_SCORE_BYTES / row_bytes));
  const int64_t group = block < t ? 1 : std::clamp<int64_t>(TILE_SCORE_BYTES / (row_bytes * t), 1, b);

  // At most four tile shapes: full / remainder batch group x full / remainder query block.
  std::map<std::pair<int64_t, int64_t>, std::shared_ptr<const AttentionPrimitives>> prims;
  for (int64_t g : {group, b % group})
    for (int64_t q : {block, t % block}) {
      if (g == 0 || q == 0 || prims.count({g, q})) continue;
      auto p = cached_primitives(g, q, t, heads, hd, type);
      if (!p) return at::Tensor();
      prims[{g, q}] = std::move(p);
    }

  auto& engine = onednn::cpu_engine();
  dnnl::stream stream(engine);
  at::Tensor mask_f32 = mask.to(at::kFloat).contiguous();
  at::Tensor scores = at::empty({group, heads, block, t}, qkv.options().dtype(at::kFloat));
  at::Tensor probs = at::empty({group, heads, block, t}, qkv.options().dtype(at::kFloat));
  at::Tensor probs_typed = type == dt::f32 ? probs : at::empty({group, heads, block, t}, qkv.options());
  at::Tensor ctx = at::empty({b, t, h}, qkv.options());
  char* base = static_cast<char*>(qkv.data_ptr());
  char* out = static_cast<char*>(ctx.data_ptr());
  for (int64_t start = 0; start < b; start += group) {
    const int64_t g = std::min(group, b - start);
    char* rows = base + start * t * 3 * h * elem;
    for (int64_t q0 = 0; q0 < t; q0 += block) {
      const int64_t q = std::min(block, t - q0);
      const AttentionPrimitives& p = *prims.at({g, q});
      p.score.execute(stream, {{DNNL_ARG_SRC, memory(p.q, engine, rows + q0 * 3 * h * elem)},
                               {DNNL_ARG_WEIGHTS, memory(p.kt, engine, rows + h * elem)},
                               {DNNL_ARG_DST, memory(p.scores, engine, scores.data_ptr())},
                               {DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1,
                                memory(p.mask, engine, mask_f32.data_ptr<float>() + start * t)}});
      stream.wait();
      // The tile's scores are the first g * heads * q * t values of the buffers.
      at::Tensor s = scores.view({-1}).narrow(0, 0, g * heads * q * t).view({g, heads, q, t});
      at::Tensor pr = probs.view({-1}).narrow(0, 0, g * heads * q * t).view({g, heads, q, t});
      at::_softmax_out(pr, s, -1, false);
      if (type != dt::f32) probs_typed.view({-1}).narrow(0, 0, g * heads * q * t).copy_(pr.view({-1}));
      p.context.execute(stream, {{DNNL_ARG_SRC, memory(p.probs, engine, probs_typed.data_ptr())},
                                 {DNNL_ARG_WEIGHTS, memory(p.v, engine, rows + 2 * h * elem)},
                                 {DNNL_ARG_DST, memory(p.ctx, engine, out + (start * t + q0) * h * elem)}});
      stream.wait();
    }
  }
  return ctx;
}
#endif

}  // namespace

at::Tensor fused_qkv_attention(const at::Tensor& qkv, const at::Tensor& additive_mask, int64_t heads) {
  check_qkv(qkv, heads);
#ifdef EMBEVAL_HAVE_DNNL
  const at::ScalarType type = qkv.scalar_type();
  if (qkv.device().is_cpu() && qkv.is_contiguous() && (type == at::kFloat || type == at::kBFloat16) &&
      qkv.numel() > 0) {
    try {
      at::Tensor ctx = onednn_attention(qkv, additive_mask, heads);
      if (ctx.defined()) return ctx;
    } catch (const dnnl::error&) {
      // no kernel for these strides on this CPU: ATen below
    }
  }
#endif
  if (at::Tensor ctx = kernel_attention(qkv, additive_mask, heads); ctx.defined()) return ctx;  // built without oneDNN
  return aten_qkv_attention(qkv, additive_mask, heads);
}

at::Tensor aten_qkv_attention(const at::Tensor& qkv, const at::Tensor& mask, int64_t heads, int64_t max_score_bytes) {
  check_qkv(qkv, heads);
  const int64_t b = qkv.size(0), t = qkv.size(1), h = qkv.size(2) / 3, hd = h / heads;
  at::Tensor parts = qkv.view({b, t, 3, heads, hd}).permute({2, 0, 3, 1, 4});
  at::Tensor q = parts[0], k = parts[1], v = parts[2];  // [b, heads, t, hd]
#if TORCH_VERSION_MAJOR >= 2
  (void)max_score_bytes;  // SDPA picks its own kernel (flash / memory-efficient ones tile internally)
  at::Tensor ctx = at::scaled_dot_product_attention(q, k, v, mask, 0.0, false);
#else
  // bf16 on a CPU without bf16 instructions: ATen 1.x's bf16 matmul there
  // runs its generic batched kernel, which sums in bf16 (bert-base heads,
  // seq 200: 0.042 off the float64 attention against 0.011 for oneDNN's
  // bf16 products) and far slower than the fp32 GEMM, so the products and
  // softmax run in fp32 on the widened values and the context is rounded
  // once (the probabilities then stay fp32 for the second product).
  if (qkv.device().is_cpu() && qkv.scalar_type() == at::kBFloat16 && !cpu_has_native_bf16())
    return aten_qkv_attention(qkv.to(at::kFloat), mask.to(at::kFloat), heads, max_score_bytes).to(at::kBFloat16);
  // Blocks of query rows keep the scores of the whole batch under max_score_bytes.
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const int64_t block = std::clamp<int64_t>(max_score_bytes / std::max<int64_t>(1, b * heads * t * 4), 1, t);
  at::Tensor ctx = block == t ? at::Tensor() : at::empty_like(q);
  for (int64_t q0 = 0; q0 < t; q0 += block) {
    const int64_t n = std::min(block, t - q0);
    at::Tensor scores = at::matmul(q.narrow(2, q0, n), k.transpose(-1, -2)).mul_(scale).add_(mask);
    at::Tensor part = at::matmul(at::softmax(scores, -1), v);
    if (block == t) ctx = part;
    else ctx.narrow(2, q0, n).copy_(part);
  }
#endif
  return ctx.transpose(1, 2).reshape({b, t, h});
}

at::Tensor blocked_qkv_attention(const Linear& qkv, const at::Tensor& x, const at::Tensor& additive_mask,
                                 int64_t heads) {
  const char* off = std::getenv("EMBEVAL_NO_LAYER_BLOCKS");
  if ((off && *off == '1') || x.scalar_type() != at::kBFloat16 || !x.device().is_cpu() || x.dim() != 3 ||
      heads <= 0 || bf16_attention_products() == Bf16AttentionProducts::none)
    return at::Tensor();
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2);
  if (b == 0 || t == 0 || h % heads != 0 || (h / heads) % 2 != 0) return at::Tensor();
  const at::Tensor mask = additive_mask.to(at::kFloat).expand({b, 1, 1, t}).reshape({b, t}).contiguous();
  at::Tensor ctx = at::empty({b, t, h}, x.options());
  const float* mp = mask.data_ptr<float>();
  uint16_t* cp = reinterpret_cast<uint16_t*>(ctx.data_ptr<at::BFloat16>());
  const int64_t texts = std::max<int64_t>(1, QKV_BLOCK_ROWS / t);
  const bool ran = qkv.map_row_blocks(x, texts * t, [&](int64_t r0, const at::Tensor& y) {
    if (y.dim() != 2 || y.size(1) != 3 * h || y.size(0) % t != 0 || r0 % t != 0)
      fail("attention: the QKV projection gave a block of [{}] at row {}, expected whole texts of {} x {}",
           fmt::join(y.sizes(), ", "), r0, t, 3 * h);
    if (!bf16_attention(reinterpret_cast<const uint16_t*>(y.data_ptr<at::BFloat16>()), mp + r0, y.size(0) / t, t,
                            heads, h / heads, cp + r0 * h))
      fail("attention: the bf16 kernel declined a block it was checked for");
  });
  return ran ? ctx : at::Tensor();
}

}  // namespace embeval
