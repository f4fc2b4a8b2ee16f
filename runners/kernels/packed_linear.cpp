#include "runners/kernels/packed_linear.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "harness/error.h"
#include "runners/kernels/amx_bf16_gemm.h"
#include "runners/kernels/cpu_dispatch.h"
#include "runners/kernels/gelu_bf16.h"

#ifdef EMBEVAL_HAVE_DNNL
#include "runners/kernels/onednn_util.h"
#endif

namespace embeval {

#ifdef EMBEVAL_HAVE_DNNL
using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;
using onednn::cpu_engine;

namespace {

// A bf16 layer on AMX with K above onednn::SLICE_ABOVE (onednn_util.h says
// why) multiplies slices of the inputs and sums them in fp32: the first
// product writes fp32, the middle ones add to it (oneDNN's sum post-op),
// the last adds the bias and that sum and rounds once to bf16, as one
// product would. A slice must be dense (a strided one gets gemm:jit, not
// AMX), so a caller's [rows, K] input is copied a slice at a time, except
// in fused_with, where the layer before writes its outputs slice by slice.
using onednn::SLICE_ABOVE;
using onednn::input_slices;
using onednn::is_amx_kernel;
// The packed layout oneDNN picks for bf16 on AMX: blocks of 64 outputs,
// outermost, so the products of a run of whole blocks read it in place.
constexpr tag AMX_BF16_WEIGHTS = tag::BA16a64b2a;

// Packs W[:, k0:k0+k] (W [out, in] row-major) into the layout `md`.
void pack_columns(const at::Tensor& w, int64_t k0, int64_t k, const memory::desc& md, memory* packed,
                  at::Tensor* storage) {
  const int64_t n_out = w.size(0), n_in = w.size(1);
  memory plain(memory::desc({k, n_out}, onednn::type_of(w.scalar_type()), memory::dims{1, n_in}), cpu_engine(),
               static_cast<char*>(w.data_ptr()) + k0 * w.element_size());
  *storage = at::empty({static_cast<int64_t>(md.get_size())}, at::kByte);
  *packed = memory(md, cpu_engine(), storage->data_ptr());
  dnnl::stream stream(cpu_engine());
  dnnl::reorder(plain, *packed).execute(stream, plain, *packed);
  stream.wait();
}

// The products of fused_with's per-thread row blocks: a slice's product
// again, asking for a scratchpad per call (executed from several threads at
// once); null where oneDNN offers no AMX kernel for it in the same weights
// layout (fused_with then keeps its whole-rows form).
std::unique_ptr<onednn::RowsMatmul> per_thread_matmul(onednn::RowsMatmul::MakePd make, const memory::desc& weights) {
  try {
    auto m = std::make_unique<onednn::RowsMatmul>(std::move(make), weights);
    if (is_amx_kernel(m->kernel()) && m->weights_desc() == weights) return m;
  } catch (const dnnl::error&) {
  }
  return nullptr;
}

}  // namespace
#endif

struct PackedLinear::Impl {
  at::Tensor weight, bias;  // as given: the at::linear path, and shapes
  LinearActivation activation = LinearActivation::none;
  // bf16 on a CPU where oneDNN has no bf16 kernel (AVX2 only): weight and
  // bias held widened to fp32, and x widened per call, so the product runs
  // on the fp32 GEMM and is rounded once. ATen's own bf16 GEMM there is
  // ~80x slower than fp32 (768 -> 3072, 4,096 rows, 2 threads, ATen 1.13
  // with its oneDNN off on this Zen 4: 10.6 s against 0.13; widened 0.12)
  // and rounds the product before the activation (GELU then up to a bf16
  // step off the once-rounded value); its bmm even sums in bf16 (see
  // attention.cpp).
  bool widen = false;
  // Makes this layer the widened fallback (bf16 weights on the CPU only).
  void widen_to_fp32() {
    if (!weight.defined() || weight.scalar_type() != at::kBFloat16 || !weight.device().is_cpu()) return;
    weight = weight.to(at::kFloat);
    if (bias.defined()) bias = bias.to(at::kFloat);
    widen = true;
  }
#ifdef EMBEVAL_HAVE_DNNL
  bool packed = false;
  at::ScalarType type = at::kFloat;  // what was packed; inputs must match
  std::unique_ptr<onednn::RowsMatmul> matmul;
  std::unique_ptr<onednn::RowsMatmul> per_thread;  // matmul again, a scratchpad per call (map_row_blocks); or null
  memory packed_weight;
  at::Tensor packed_storage, bias_f32;
  std::string kernel;
  int64_t n_in = 0, n_out = 0;
  // bf16 with BERT's GELU on AMX: the products (matmul, out_slices) write
  // fp32 without the activation and gelu_bf16.h's pass applies it and
  // rounds (why: gelu_bf16.h; EMBEVAL_ONEDNN_GELU=1 keeps the post-op).
  bool own_gelu = false;
  // bf16 on AMX with no activation or BERT's GELU: embeval's kernel
  // (amx_bf16_gemm.h), the whole layer (no oneDNN product, packing or
  // slices then); null elsewhere, or with EMBEVAL_NO_AMX_BF16_GEMM=1.
  std::unique_ptr<AmxBf16Gemm> own_gemm;
  // bf16 on AMX with in > SLICE_ABOVE: the weights packed per slice of the
  // inputs (then `matmul` and `packed_weight` stay unset).
  struct InSlice {
    int64_t k0 = 0, k = 0;
    std::unique_ptr<onednn::RowsMatmul> matmul;
    std::unique_ptr<onednn::RowsMatmul> per_thread;  // the same product, a scratchpad per call (fused_with's blocks)
    memory packed;
    at::Tensor storage;
  };
  std::vector<InSlice> in_slices;
  // bf16 on AMX with out > SLICE_ABOVE: products over the same slices of the
  // outputs, each reading its run of blocks of packed_weight in place, for
  // fused_with to hand a sliced next layer its input slice by slice.
  struct OutSlice {
    int64_t n0 = 0, n = 0, offset = 0;  // offset: bytes into packed_weight
    std::unique_ptr<onednn::RowsMatmul> matmul;
    std::unique_ptr<onednn::RowsMatmul> per_thread;  // as InSlice's
  };
  std::vector<OutSlice> out_slices;

  // y [rows, n_out] = the in-slice products, slice i's input (dense
  // [rows, k]) at slice_src(i).
  template <class SliceSrc>
  void run_in_slices(int64_t rows, SliceSrc slice_src, void* y) const;
  // y [rows, c1 - c0] (row stride ldy) = own_gemm's columns [c0, c1) of
  // x [rows, n_in] (bf16), the work shared out to the threads.
  void own_product(const uint16_t* x, int64_t rows, uint16_t* y, int64_t ldy, int64_t c0, int64_t c1) const;
  // fused_with on own_gemm (both layers): next(this(x)) a block of rows
  // at a time, each thread its own blocks, the middle in the thread's L2;
  // undefined where x does not fit.
  at::Tensor own_pair(const Impl& next, const at::Tensor& x) const;
  // y [rows, cols] (leading dimension ldy, bf16) = GELU of f [rows, cols]
  // (fp32, dense), rounded; the rows shared out to the threads or not.
  static void gelu_pass(const float* f, int64_t rows, int64_t cols, char* y, int64_t ldy, bool parallel);
  // fused_with in per-thread row blocks (y = next(this(src)), src [rows,
  // n_in] and y [rows, next.n_out] bf16); false where it does not run.
  bool run_row_blocks(const Impl& next, const char* src, int64_t rows, char* y) const;
#endif
};

#ifdef EMBEVAL_HAVE_DNNL
void PackedLinear::Impl::gelu_pass(const float* f, int64_t rows, int64_t cols, char* y, int64_t ldy, bool parallel) {
  auto run = [&](int64_t r0, int64_t r1) {
    gelu_erf_to_bf16(f + r0 * cols, cols, r1 - r0, cols, reinterpret_cast<uint16_t*>(y) + r0 * ldy, ldy);
  };
  if (parallel)
    at::parallel_for(0, rows, 16, run);
  else
    run(0, rows);
}

void PackedLinear::Impl::own_product(const uint16_t* x, int64_t rows, uint16_t* y, int64_t ldy, int64_t c0,
                                     int64_t c1) const {
  // Many rows: blocks of 256 a thread, each over all the columns (the
  // weights pass through the thread's L2 once a block); few: the columns
  // shared out in runs of 128, each thread over all the rows.
  if (rows >= 512) {
    at::parallel_for(0, (rows + 255) / 256, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t blk = b0; blk < b1; ++blk) {
        const int64_t r0 = blk * 256;
        own_gemm->run(x + r0 * n_in, std::min<int64_t>(256, rows - r0), n_in, y + r0 * ldy, ldy, c0, c1);
      }
    });
  } else {
    at::parallel_for(0, (c1 - c0 + 127) / 128, 1, [&](int64_t j0, int64_t j1) {
      own_gemm->run(x, rows, n_in, y + j0 * 128, ldy, c0 + j0 * 128, std::min(c1, c0 + j1 * 128));
    });
  }
}

// Rows a block of own_pair: the block's middle (256 x 3072 bf16, 1.5 MB)
// stays in the thread's L2 between the two products. bert-base FFN, batch
// 32 x 128, 2 threads (BM_layer_breakdown's ffn_fused_ms, two rounds):
// blocks of 128 / 256 / 512 rows 19.7 / 19.6 / 19.7 and 19.3 / 19.3 / 18.7
// ms, whole rows (EMBEVAL_NO_ROW_BLOCKS=1) 20.6 and 19.9.
constexpr int64_t OWN_PAIR_BLOCK_ROWS = 256;

at::Tensor PackedLinear::Impl::own_pair(const Impl& b, const at::Tensor& x) const {
  const Impl& a = *this;
  if (b.n_in != a.n_out || x.scalar_type() != at::kBFloat16 || !x.device().is_cpu() || x.dim() == 0 ||
      x.size(-1) != a.n_in)
    return at::Tensor();
  const at::Tensor src = x.contiguous();
  const int64_t rows = src.numel() / a.n_in;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = b.n_out;
  at::Tensor y = at::empty(shape, src.options());
  const auto* xp = static_cast<const uint16_t*>(src.data_ptr());
  auto* yp = static_cast<uint16_t*>(y.data_ptr());
  const int64_t R = OWN_PAIR_BLOCK_ROWS, blocks = (rows + R - 1) / R;
  const char* off = std::getenv("EMBEVAL_NO_ROW_BLOCKS");
  if (blocks < 2 * at::get_num_threads() || (off && *off == '1')) {
    at::Tensor mid = at::empty({rows, a.n_out}, src.options());
    auto* mp = static_cast<uint16_t*>(mid.data_ptr());
    a.own_product(xp, rows, mp, a.n_out, 0, a.n_out);
    b.own_product(mp, rows, yp, b.n_out, 0, b.n_out);
    return y;
  }
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    at::Tensor mid = at::empty({R, a.n_out}, src.options());
    auto* mp = static_cast<uint16_t*>(mid.data_ptr());
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * R, rr = std::min(R, rows - r0);
      a.own_gemm->run(xp + r0 * a.n_in, rr, a.n_in, mp, a.n_out, 0, a.n_out);
      b.own_gemm->run(mp, rr, a.n_out, yp + r0 * b.n_out, b.n_out, 0, b.n_out);
    }
  });
  return y;
}

template <class SliceSrc>
void PackedLinear::Impl::run_in_slices(int64_t rows, SliceSrc slice_src, void* y) const {
  at::Tensor acc = at::empty({rows, n_out}, at::kFloat);
  const memory acc_m(memory::desc({rows, n_out}, dt::f32, tag::ab), cpu_engine(), acc.data_ptr());
  const memory y_m(memory::desc({rows, n_out}, dt::bf16, tag::ab), cpu_engine(), y);
  const memory bias_m(memory::desc({1, n_out}, dt::f32, tag::ab), cpu_engine(), bias_f32.data_ptr());
  dnnl::stream stream(cpu_engine());
  for (size_t i = 0; i < in_slices.size(); ++i) {
    const InSlice& sl = in_slices[i];
    const memory src(memory::desc({rows, sl.k}, dt::bf16, tag::ab), cpu_engine(), slice_src(i));
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, sl.packed}};
    if (i + 1 < in_slices.size()) {
      args.insert({DNNL_ARG_DST, acc_m});
    } else {
      args.insert({DNNL_ARG_DST, y_m});
      args.insert({DNNL_ARG_BIAS, bias_m});
      args.insert({DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, acc_m});
    }
    sl.matmul->get(rows).execute(stream, args);
  }
  stream.wait();
}
#endif

// fused_with's rows a block at a time, each thread its own blocks through
// both layers: the block's slices of the middle (FFN-in's outputs, 4x the
// hidden width) and the fp32 sum of FFN-out's slice products stay in the
// thread's L2 instead of going to memory and back once per slice (at
// bert-base batch 32: 25 MB of middle written and read, and the 12.6 MB
// fp32 sum written, read and written again three times). The products are
// oneDNN's, a scratchpad per thread; the same bits as the whole-rows form
// (tested). bert-base FFN, 4,096 rows, 2 threads, side by side: blocks of
// 64 / 128 / 256 / 512 / 1,024 rows 26.1 / 22.3 / 20.2 / 22.1 / 20.4 ms,
// the whole-rows form 30-36 ms. EMBEVAL_NO_ROW_BLOCKS=1 keeps whole rows.
#ifdef EMBEVAL_HAVE_DNNL
constexpr int64_t FFN_BLOCK_ROWS = 256;

bool PackedLinear::Impl::run_row_blocks(const Impl& b, const char* src, int64_t rows, char* y) const {
  const Impl& a = *this;
  const char* off = std::getenv("EMBEVAL_NO_ROW_BLOCKS");
  if (off && *off == '1') return false;
  for (const OutSlice& sl : a.out_slices)
    if (!sl.per_thread) return false;
  for (const InSlice& sl : b.in_slices)
    if (!sl.per_thread) return false;
  const int64_t R = FFN_BLOCK_ROWS, blocks = (rows + R - 1) / R;
  if (blocks < 2 * at::get_num_threads()) return false;  // too few rows to share out
  // The largest scratchpad any of the products asks for, at either block height.
  int64_t pad_bytes = 1;
  for (int64_t rr : {R, rows % R}) {
    if (rr == 0) continue;
    int64_t bytes = 0;
    for (const OutSlice& sl : a.out_slices) {
      sl.per_thread->get(rr, &bytes);
      pad_bytes = std::max(pad_bytes, bytes);
    }
    for (const InSlice& sl : b.in_slices) {
      sl.per_thread->get(rr, &bytes);
      pad_bytes = std::max(pad_bytes, bytes);
    }
  }
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    auto& engine = cpu_engine();
    dnnl::stream stream(engine);
    at::Tensor mid = at::empty({R * a.n_out}, at::kBFloat16);  // slice i: [rows of the block, n] at R * n0
    at::Tensor acc = at::empty({R * b.n_out}, at::kFloat);
    at::Tensor pad = at::empty({pad_bytes}, at::kByte);
    at::Tensor f32;  // own_gelu: a slice's product before its GELU
    if (a.own_gelu) {
      int64_t widest = 0;
      for (const OutSlice& sl : a.out_slices) widest = std::max(widest, sl.n);
      f32 = at::empty({R * widest}, at::kFloat);
    }
    char* mp = static_cast<char*>(mid.data_ptr());
    const memory pad_m(memory::desc({pad_bytes}, dt::u8, tag::a), engine, pad.data_ptr());
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t r0 = blk * R, rr = std::min(R, rows - r0);
      const memory x_m(memory::desc({rr, a.n_in}, dt::bf16, tag::ab), engine, const_cast<char*>(src) + r0 * a.n_in * 2);
      const memory acc_m(memory::desc({rr, b.n_out}, dt::f32, tag::ab), engine, acc.data_ptr());
      for (const OutSlice& sl : a.out_slices) {
        const memory w(memory::desc({a.n_in, sl.n}, dt::bf16, AMX_BF16_WEIGHTS), engine,
                       static_cast<char*>(a.packed_weight.get_data_handle()) + sl.offset);
        const memory bias(memory::desc({1, sl.n}, dt::f32, tag::ab), engine, a.bias_f32.data_ptr<float>() + sl.n0);
        char* out = mp + R * sl.n0 * 2;
        const memory dst = a.own_gelu ? memory(memory::desc({rr, sl.n}, dt::f32, tag::ab), engine, f32.data_ptr())
                                      : memory(memory::desc({rr, sl.n}, dt::bf16, tag::ab), engine, out);
        sl.per_thread->get(rr).execute(stream, {{DNNL_ARG_SRC, x_m}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, bias},
                                                {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, pad_m}});
        if (a.own_gelu) {
          stream.wait();
          gelu_pass(f32.data_ptr<float>(), rr, sl.n, out, sl.n, false);
        }
      }
      for (size_t i = 0; i < b.in_slices.size(); ++i) {
        const InSlice& sl = b.in_slices[i];
        const memory part(memory::desc({rr, sl.k}, dt::bf16, tag::ab), engine, mp + R * sl.k0 * 2);
        std::unordered_map<int, memory> args = {
            {DNNL_ARG_SRC, part}, {DNNL_ARG_WEIGHTS, sl.packed}, {DNNL_ARG_SCRATCHPAD, pad_m}};
        if (i + 1 < b.in_slices.size()) {
          args.insert({DNNL_ARG_DST, acc_m});
        } else {
          args.insert({DNNL_ARG_DST, memory(memory::desc({rr, b.n_out}, dt::bf16, tag::ab), engine, y + r0 * b.n_out * 2)});
          args.insert({DNNL_ARG_BIAS, memory(memory::desc({1, b.n_out}, dt::f32, tag::ab), engine, b.bias_f32.data_ptr())});
          args.insert({DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, acc_m});
        }
        sl.per_thread->get(rr).execute(stream, args);
      }
      stream.wait();
    }
  });
  return true;
}
#endif

PackedLinear::PackedLinear() = default;
PackedLinear::~PackedLinear() = default;
PackedLinear::PackedLinear(PackedLinear&&) noexcept = default;
PackedLinear& PackedLinear::operator=(PackedLinear&&) noexcept = default;

bool PackedLinear::have_onednn() {
#ifdef EMBEVAL_HAVE_DNNL
  return true;
#else
  return false;
#endif
}

PackedLinear::PackedLinear(const at::Tensor& weight, const at::Tensor& bias, LinearActivation activation)
    : impl_(std::make_unique<Impl>()) {
  if (weight.dim() != 2) fail("PackedLinear: weight must be 2-D, got {} dimensions", weight.dim());
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != weight.size(0)))
    fail("PackedLinear: bias of {} values for {} outputs", bias.numel(), weight.size(0));
  Impl& m = *impl_;
  m.weight = weight.contiguous();
  m.bias = bias.defined() ? bias.contiguous() : bias;
  m.activation = activation;
#ifndef EMBEVAL_HAVE_DNNL
  // No oneDNN here: ATen's bf16 GEMM is fast only where the CPU has bf16
  // instructions (it calls its own oneDNN then); elsewhere the widened form.
  if (!cpu_has_native_bf16()) m.widen_to_fp32();
#else
  const at::ScalarType type = weight.scalar_type();
  if (!weight.device().is_cpu() || (type != at::kFloat && type != at::kBFloat16)) return;
  const memory::dim n_out = weight.size(0), n_in = weight.size(1);
  try {
    m.n_in = n_in;
    m.n_out = n_out;
    const dt io = onednn::type_of(type);
    const memory::desc bias_md({1, n_out}, dt::f32, tag::ab);
    m.bias_f32 = m.bias.defined() ? m.bias.to(at::kFloat).contiguous() : at::zeros({n_out}, at::kFloat);
    // One primitive per count of rows of x (onednn::RowsMatmul says why),
    // the weights packed for them once.
    const memory::desc weight_any({n_in, n_out}, io, tag::any);
    dnnl::post_ops ops;
    onednn::append_activation(ops, activation);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    m.matmul = std::make_unique<onednn::RowsMatmul>(
        [n_in, n_out, io, bias_md, attr](memory::dim rows, const memory::desc& weights) {
          return onednn::matmul_pd(memory::desc({rows, n_in}, io, tag::ab), weights, bias_md,
                                   memory::desc({rows, n_out}, io, tag::ab), attr);
        },
        weight_any);
    m.kernel = m.matmul->kernel();
    if (onednn::is_reference_kernel(m.kernel.c_str())) {  // e.g. bf16 without AVX-512
      m.matmul.reset();
      m.widen_to_fp32();
      return;
    }
    // EMBEVAL_NO_K_SLICES=1 (read when a layer is made) keeps whole products, for comparing.
    const char* no_slices = std::getenv("EMBEVAL_NO_K_SLICES");
    const bool amx_bf16 = type == at::kBFloat16 && is_amx_kernel(m.kernel) && !(no_slices && *no_slices == '1');
    // bf16 with no activation or BERT's GELU: embeval's kernel, no oneDNN
    // product at all. On AMX tiles where the CPU has them (amx_bf16_gemm.h
    // says why and by how much); without AMX, its VDPBF16PS form where the
    // CPU has AVX512-BF16 (Zen 4): oneDNN 2.6's bf16 gemm:jit there runs at
    // ~88% of VDPBF16PS's rate (amx_bf16_gemm.h has the numbers). Whether
    // oneDNN itself would pick AMX does not matter (it does not where
    // ONEDNN_MAX_CPU_ISA caps it, or in an EMBEVAL_AMX_EMULATE build);
    // EMBEVAL_NO_AMX_BF16_GEMM=1 switches embeval's kernel off.
    const bool own = type == at::kBFloat16 && !(no_slices && *no_slices == '1');
    if (own && AmxBf16Gemm::fuses(activation) && AmxBf16Gemm::available()) {
      m.own_gemm = std::make_unique<AmxBf16Gemm>(m.weight, m.bias_f32, activation);
      m.kernel = activation == LinearActivation::none ? "bf16" : "bf16 + GELU";
      m.matmul.reset();
      m.packed = true;
      m.type = type;
      m.weight = at::Tensor();
      return;
    }
    // EMBEVAL_ONEDNN_GELU=1 (read when a layer is made) keeps oneDNN's GELU post-op.
    const char* onednn_gelu = std::getenv("EMBEVAL_ONEDNN_GELU");
    if (amx_bf16 && activation == LinearActivation::gelu_erf && n_in <= SLICE_ABOVE && gelu_erf_bf16_available() &&
        !(onednn_gelu && *onednn_gelu == '1')) {
      const memory::desc packed_as = m.matmul->weights_desc();
      auto plain = std::make_unique<onednn::RowsMatmul>(
          [n_in, n_out, io, bias_md](memory::dim rows, const memory::desc& weights) {
            return onednn::matmul_pd(memory::desc({rows, n_in}, io, tag::ab), weights, bias_md,
                                     memory::desc({rows, n_out}, dt::f32, tag::ab), dnnl::primitive_attr());
          },
          weight_any);
      if (is_amx_kernel(plain->kernel()) && plain->weights_desc() == packed_as) {
        m.matmul = std::move(plain);
        m.own_gelu = true;
        ops = dnnl::post_ops();
        m.kernel += ", GELU in AVX-512";
      }
    }
    if (amx_bf16 && n_in > SLICE_ABOVE) {
      for (const auto& slice : input_slices(n_in)) {
        // Plain copies, not a structured binding: the lambdas below capture
        // them, which C++17 (and Clang before 16) does not allow for bindings.
        const auto k0 = slice.first, k = slice.second;
        Impl::InSlice sl;
        sl.k0 = k0;
        sl.k = k;
        const bool first = k0 == 0, last = k0 + k == n_in;
        auto make = [=](bool own_scratchpad) {
          return [=](memory::dim rows, const memory::desc& weights) {
            const memory::desc acc({rows, n_out}, dt::f32, tag::ab);
            dnnl::post_ops slice_ops;
            if (!first && !last) slice_ops.append_sum();
            if (last) {
              slice_ops.append_binary(dnnl::algorithm::binary_add, acc);
              onednn::append_activation(slice_ops, activation);
            }
            dnnl::primitive_attr slice_attr;
            slice_attr.set_post_ops(slice_ops);
            if (own_scratchpad) slice_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            return onednn::matmul_pd(memory::desc({rows, k}, io, tag::ab), weights, last ? bias_md : memory::desc(),
                                     last ? memory::desc({rows, n_out}, io, tag::ab) : acc, slice_attr);
          };
        };
        sl.matmul = std::make_unique<onednn::RowsMatmul>(make(false), memory::desc({k, n_out}, io, tag::any));
        if (!is_amx_kernel(sl.matmul->kernel())) {
          m.in_slices.clear();
          break;
        }
        sl.per_thread = per_thread_matmul(make(true), sl.matmul->weights_desc());
        pack_columns(m.weight, k0, k, sl.matmul->weights_desc(), &sl.packed, &sl.storage);
        m.in_slices.push_back(std::move(sl));
      }
      if (!m.in_slices.empty()) {
        m.matmul.reset();
        m.kernel += fmt::format(", inputs in {} slices", m.in_slices.size());
        m.packed = true;
        m.type = type;
        m.weight = at::Tensor();
        return;
      }
    }
    pack_columns(m.weight, 0, n_in, m.matmul->weights_desc(), &m.packed_weight, &m.packed_storage);
    if (amx_bf16 && !m.own_gelu)
      m.per_thread = per_thread_matmul(
          [n_in, n_out, io, bias_md, ops](memory::dim rows, const memory::desc& weights) {
            dnnl::primitive_attr own;
            own.set_post_ops(ops);
            own.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            return onednn::matmul_pd(memory::desc({rows, n_in}, io, tag::ab), weights, bias_md,
                                     memory::desc({rows, n_out}, io, tag::ab), own);
          },
          m.matmul->weights_desc());
    const memory::desc blocked({n_in, n_out}, io, AMX_BF16_WEIGHTS);
    if (amx_bf16 && n_out > SLICE_ABOVE && m.matmul->weights_desc() == blocked) {
      for (const auto& slice : input_slices(n_out)) {
        const auto n0 = slice.first, n = slice.second;  // captured below: no binding
        Impl::OutSlice sl;
        sl.n0 = n0;
        sl.n = n;
        sl.offset = static_cast<int64_t>(memory::desc({n_in, n0}, io, AMX_BF16_WEIGHTS).get_size());
        const memory::desc slice_bias({1, n}, dt::f32, tag::ab);
        const dt out_type = m.own_gelu ? dt::f32 : io;
        auto make = [n_in, n, io, out_type, slice_bias, ops](bool own_scratchpad) {
          return [=](memory::dim rows, const memory::desc& weights) {
            dnnl::primitive_attr slice_attr;  // a new one: attrs are shared handles
            slice_attr.set_post_ops(ops);
            if (own_scratchpad) slice_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            return onednn::matmul_pd(memory::desc({rows, n_in}, io, tag::ab), weights, slice_bias,
                                     memory::desc({rows, n}, out_type, tag::ab), slice_attr);
          };
        };
        const memory::desc slice_weights({n_in, n}, io, AMX_BF16_WEIGHTS);
        sl.matmul = std::make_unique<onednn::RowsMatmul>(make(false), slice_weights);
        if (!is_amx_kernel(sl.matmul->kernel()) || sl.matmul->weights_desc() != slice_weights) {
          m.out_slices.clear();
          break;
        }
        sl.per_thread = per_thread_matmul(make(true), slice_weights);
        m.out_slices.push_back(std::move(sl));
      }
    }
    m.packed = true;
    m.type = type;
    m.weight = at::Tensor();  // the packed copy is all the CPU path needs
  } catch (const dnnl::error&) {
    // No oneDNN kernel for this shape / type on this CPU: at::linear it is
    // (bf16 widened to fp32).
    m.widen_to_fp32();
  }
#endif
}

at::Tensor PackedLinear::operator()(const at::Tensor& x) const {
  const Impl& m = *impl_;
#ifdef EMBEVAL_HAVE_DNNL
  if (m.packed) {
    const int64_t n_in = m.n_in, n_out = m.n_out;
    if (x.size(-1) != n_in) fail("PackedLinear: input has {} features, the layer takes {}", x.size(-1), n_in);
    if (x.scalar_type() != m.type || !x.device().is_cpu())
      fail("PackedLinear: input is {} on {}; the layer was packed for {} on cpu", c10::toString(x.scalar_type()),
           x.device().str(), c10::toString(m.type));
    at::Tensor src = x.contiguous();
    const int64_t rows = src.numel() / n_in;
    std::vector<int64_t> out_shape = x.sizes().vec();
    out_shape.back() = n_out;
    at::Tensor dst = at::empty(out_shape, src.options());
    if (rows == 0) return dst;
    if (!m.in_slices.empty()) {
      // Each slice of the inputs copied out dense (fused_with avoids the copies).
      const at::Tensor x2 = src.view({rows, n_in});
      std::vector<at::Tensor> parts;
      for (const Impl::InSlice& sl : m.in_slices) parts.push_back(x2.narrow(1, sl.k0, sl.k).contiguous());
      m.run_in_slices(rows, [&](size_t i) { return parts[i].data_ptr(); }, dst.data_ptr());
      return dst;
    }
    const dt type = onednn::type_of(src.scalar_type());
    if (m.own_gemm) {
      m.own_product(static_cast<const uint16_t*>(src.data_ptr()), rows, static_cast<uint16_t*>(dst.data_ptr()), n_out,
                    0, n_out);
      return dst;
    }
    if (m.own_gelu) {
      // The fp32 product a chunk of rows at a time (3 MB at bert-base's
      // 3,072 outputs), then the GELU pass.
      const int64_t chunk = std::min<int64_t>(rows, 256);
      at::Tensor f = at::empty({chunk, n_out}, at::kFloat);
      const memory bias_m(memory::desc({1, n_out}, dt::f32, tag::ab), cpu_engine(), m.bias_f32.data_ptr());
      dnnl::stream stream(cpu_engine());
      for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t rr = std::min(chunk, rows - r0);
        const memory src_m(memory::desc({rr, n_in}, type, tag::ab), cpu_engine(),
                           static_cast<char*>(src.data_ptr()) + r0 * n_in * 2);
        const memory f_m(memory::desc({rr, n_out}, dt::f32, tag::ab), cpu_engine(), f.data_ptr());
        m.matmul->get(rr).execute(stream, {{DNNL_ARG_SRC, src_m},
                                           {DNNL_ARG_WEIGHTS, m.packed_weight},
                                           {DNNL_ARG_BIAS, bias_m},
                                           {DNNL_ARG_DST, f_m}});
        stream.wait();
        Impl::gelu_pass(f.data_ptr<float>(), rr, n_out, static_cast<char*>(dst.data_ptr()) + r0 * n_out * 2, n_out,
                        true);
      }
      return dst;
    }
    memory src_m(memory::desc({rows, n_in}, type, tag::ab), cpu_engine(), src.data_ptr());
    memory dst_m(memory::desc({rows, n_out}, type, tag::ab), cpu_engine(), dst.data_ptr());
    memory bias_m(memory::desc({1, n_out}, dt::f32, tag::ab), cpu_engine(), m.bias_f32.data_ptr());
    dnnl::stream stream(cpu_engine());
    m.matmul->get(rows).execute(stream, {{DNNL_ARG_SRC, src_m},
                              {DNNL_ARG_WEIGHTS, m.packed_weight},
                              {DNNL_ARG_BIAS, bias_m},
                              {DNNL_ARG_DST, dst_m}});
    stream.wait();
    return dst;
  }
#endif
  if (m.widen) {
    if (x.scalar_type() != at::kBFloat16 || !x.device().is_cpu())
      fail("PackedLinear: input is {} on {}; the layer takes BFloat16 on cpu", c10::toString(x.scalar_type()),
           x.device().str());
    return apply_activation(at::linear(x.to(at::kFloat), m.weight, m.bias), m.activation).to(at::kBFloat16);
  }
  return apply_activation(at::linear(x, m.weight, m.bias), m.activation);
}

at::Tensor PackedLinear::fused_with(const Linear& next_linear, const at::Tensor& x) const {
#ifdef EMBEVAL_HAVE_DNNL
  // This layer's output slices are the next one's input slices, written
  // dense one after another: no copies (onednn::SLICE_ABOVE says why the slices).
  const auto* next = dynamic_cast<const PackedLinear*>(&next_linear);
  if (!next || !impl_ || !next->impl_) return at::Tensor();
  if (impl_->own_gemm && next->impl_->own_gemm) return impl_->own_pair(*next->impl_, x);
  if (impl_->out_slices.empty()) return at::Tensor();
  const Impl& a = *impl_;
  const Impl& b = *next->impl_;
  if (b.in_slices.size() != a.out_slices.size() || b.n_in != a.n_out || x.scalar_type() != at::kBFloat16 ||
      !x.device().is_cpu() || x.dim() == 0 || x.size(-1) != a.n_in)
    return at::Tensor();
  for (size_t i = 0; i < a.out_slices.size(); ++i)
    if (a.out_slices[i].n0 != b.in_slices[i].k0 || a.out_slices[i].n != b.in_slices[i].k) return at::Tensor();
  const at::Tensor src = x.contiguous();
  const int64_t rows = src.numel() / a.n_in;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = b.n_out;
  at::Tensor y = at::empty(shape, src.options());
  if (rows == 0) return y;
  if (a.run_row_blocks(b, static_cast<const char*>(src.data_ptr()), rows, static_cast<char*>(y.data_ptr()))) return y;
  at::Tensor mid = at::empty({rows * a.n_out}, src.options());  // slice i: [rows, n] at rows * n0
  auto* mp = static_cast<char*>(mid.data_ptr());
  const memory src_m(memory::desc({rows, a.n_in}, dt::bf16, tag::ab), cpu_engine(), src.data_ptr());
  dnnl::stream stream(cpu_engine());
  for (const Impl::OutSlice& sl : a.out_slices) {
    const memory w(memory::desc({a.n_in, sl.n}, dt::bf16, AMX_BF16_WEIGHTS), cpu_engine(),
                   static_cast<char*>(a.packed_weight.get_data_handle()) + sl.offset);
    const memory bias(memory::desc({1, sl.n}, dt::f32, tag::ab), cpu_engine(), a.bias_f32.data_ptr<float>() + sl.n0);
    char* out = mp + rows * sl.n0 * 2;
    at::Tensor f = a.own_gelu ? at::empty({rows, sl.n}, at::kFloat) : at::Tensor();
    const memory dst = a.own_gelu ? memory(memory::desc({rows, sl.n}, dt::f32, tag::ab), cpu_engine(), f.data_ptr())
                                  : memory(memory::desc({rows, sl.n}, dt::bf16, tag::ab), cpu_engine(), out);
    sl.matmul->get(rows).execute(stream, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, bias},
                                          {DNNL_ARG_DST, dst}});
    if (a.own_gelu) {
      stream.wait();
      Impl::gelu_pass(f.data_ptr<float>(), rows, sl.n, out, sl.n, true);
    }
  }
  stream.wait();
  b.run_in_slices(rows, [&](size_t i) { return static_cast<void*>(mp + rows * b.in_slices[i].k0 * 2); },
                  y.data_ptr());
  return y;
#else
  (void)next_linear;
  (void)x;
  return at::Tensor();
#endif
}

bool PackedLinear::map_row_blocks(const at::Tensor& x, int64_t block_rows, const RowBlockUse& use) const {
#ifdef EMBEVAL_HAVE_DNNL
  if (!impl_ || (!impl_->per_thread && !impl_->own_gemm) || block_rows <= 0) return false;
  const Impl& m = *impl_;
  if (x.scalar_type() != m.type || !x.device().is_cpu() || x.dim() == 0 || x.size(-1) != m.n_in) return false;
  const at::Tensor src = x.contiguous();
  const int64_t rows = src.numel() / m.n_in, blocks = (rows + block_rows - 1) / block_rows;
  if (blocks < 2 * at::get_num_threads()) return false;
  int64_t pad_bytes = 1;
  for (int64_t rr : {block_rows, rows % block_rows}) {
    int64_t bytes = 0;
    if (rr > 0 && !m.own_gemm) m.per_thread->get(rr, &bytes);
    pad_bytes = std::max(pad_bytes, bytes);
  }
  const dt type = onednn::type_of(m.type);
  const int64_t elem = src.element_size();
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    auto& engine = cpu_engine();
    dnnl::stream stream(engine);
    at::Tensor y = at::empty({block_rows, m.n_out}, src.options());
    at::Tensor pad = at::empty({pad_bytes}, at::kByte);
    const memory pad_m(memory::desc({pad_bytes}, dt::u8, tag::a), engine, pad.data_ptr());
    const memory bias_m(memory::desc({1, m.n_out}, dt::f32, tag::ab), engine, m.bias_f32.data_ptr());
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * block_rows, rr = std::min(block_rows, rows - r0);
      if (m.own_gemm) {
        m.own_gemm->run(static_cast<const uint16_t*>(src.data_ptr()) + r0 * m.n_in, rr, m.n_in,
                        static_cast<uint16_t*>(y.data_ptr()), m.n_out, 0, m.n_out);
        use(r0, y.narrow(0, 0, rr));
        continue;
      }
      const memory x_m(memory::desc({rr, m.n_in}, type, tag::ab), engine,
                       static_cast<char*>(src.data_ptr()) + r0 * m.n_in * elem);
      const memory y_m(memory::desc({rr, m.n_out}, type, tag::ab), engine, y.data_ptr());
      m.per_thread->get(rr).execute(stream, {{DNNL_ARG_SRC, x_m},
                                             {DNNL_ARG_WEIGHTS, m.packed_weight},
                                             {DNNL_ARG_BIAS, bias_m},
                                             {DNNL_ARG_DST, y_m},
                                             {DNNL_ARG_SCRATCHPAD, pad_m}});
      stream.wait();
      use(r0, y.narrow(0, 0, rr));
    }
  });
  return true;
#else
  (void)x;
  (void)block_rows;
  (void)use;
  return false;
#endif
}

bool PackedLinear::runs_rows() const {
#ifdef EMBEVAL_HAVE_DNNL
  return impl_ && impl_->own_gemm;
#else
  return false;
#endif
}

void PackedLinear::run_rows(const uint16_t* x, int64_t rows, uint16_t* y) const {
  if (!runs_rows()) return Linear::run_rows(x, rows, y);  // fails, naming the kernel
#ifdef EMBEVAL_HAVE_DNNL
  impl_->own_gemm->run(x, rows, impl_->n_in, y, impl_->n_out, 0, impl_->n_out);
#endif
}

int64_t PackedLinear::weight_bytes() const {
  if (!impl_) return 0;
  int64_t bytes = impl_->bias.defined() ? impl_->bias.nbytes() : 0;
#ifdef EMBEVAL_HAVE_DNNL
  if (impl_->packed) {
    if (impl_->own_gemm) return bytes + impl_->own_gemm->packed_bytes();
    for (const Impl::InSlice& sl : impl_->in_slices) bytes += sl.storage.nbytes();
    return bytes + (impl_->packed_storage.defined() ? impl_->packed_storage.nbytes() : 0);
  }
#endif
  return bytes + impl_->weight.nbytes();
}

std::string PackedLinear::implementation() const {
#ifdef EMBEVAL_HAVE_DNNL
  if (impl_ && impl_->own_gemm) return (AmxBf16Gemm::uses_tiles() ? "amx:" : "avx512_bf16:embeval ") + impl_->kernel;
  if (impl_ && impl_->packed) return "onednn:" + impl_->kernel;
#endif
  if (impl_ && impl_->widen) return "aten: fp32 GEMM of the widened bf16 input, rounded once (no bf16 GEMM here)";
  return "aten";
}

}  // namespace embeval
