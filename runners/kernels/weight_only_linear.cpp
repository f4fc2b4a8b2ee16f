#include "runners/kernels/weight_only_linear.h"

#include <algorithm>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "harness/error.h"
#include "runners/kernels/cpu_dispatch.h"

#ifdef EMBEVAL_HAVE_DNNL
#include "runners/kernels/onednn_util.h"
#endif




namespace embeval {
namespace {

// Floats in one thread's dequantised tile, at most (~2 MB). Measured with
// bench_kern_quant on bert-base shapes, 4096 rows, 1 thread (AMD EPYC,
// AVX2): tiles of 32 rows ran at 0.66x of the fp32 GEMM (one oneDNN call
// per tile costs more than its tile computes), 160 rows at 0.83x, 672 rows
// at 0.90x.
constexpr int64_t TILE_FLOATS = 524288;

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
#ifdef EMBEVAL_HAVE_DNNL
  // [M, in] x tile^T -> columns [n0, n0 + rows) of y (row stride out), bias and activation fused.
  struct TileGemm {
    dnnl::matmul matmul;
    int64_t rows = 0;
  };
  std::vector<TileGemm> gemms;  // for `tile` rows and for the last, shorter tile
#endif

  void dequant_rows(int64_t o0, int64_t rows, float* w) const {
    const int64_t row_bytes = packed.size(1);
    const uint8_t* q = packed.data_ptr<uint8_t>();
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
  if (input_divisor.defined()) {
    if (input_divisor.dim() != 1 || input_divisor.size(0) != m.in)
      fail("WeightOnlyLinear: the input divisor must be [in = {}]", m.in);
    m.divisor = input_divisor.to(at::kFloat).contiguous();
    if (!(m.divisor > 0).all().item<bool>()) fail("WeightOnlyLinear: the input divisor must be positive");
  }
  // Output rows per tile, in multiples of 16: at most TILE_FLOATS, and at
  // least two tiles a thread so the threads share the work evenly.
  const int64_t per_thread = (m.out + 2 * at::get_num_threads() - 1) / (2 * at::get_num_threads());
  m.tile = std::max<int64_t>(16, std::min(TILE_FLOATS / m.in, (per_thread + 15) / 16 * 16) / 16 * 16);
  m.tile = std::min(m.tile, m.out);
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
#endif
}

at::Tensor WeightOnlyLinear::dequantized_weight() const {
  const Impl& m = *impl_;
  at::Tensor w = at::empty({m.out, m.in}, at::kFloat);
  m.dequant_rows(0, m.out, w.data_ptr<float>());
  return w;
}

at::Tensor WeightOnlyLinear::operator()(const at::Tensor& x) const {
  const Impl& m = *impl_;
  if (x.size(-1) != m.in) fail("WeightOnlyLinear: input has {} features, the layer takes {}", x.size(-1), m.in);
  if (x.scalar_type() != at::kFloat || !x.device().is_cpu())
    fail("WeightOnlyLinear: input is {} on {}; the layer takes float32 on cpu", c10::toString(x.scalar_type()),
         x.device().str());
  const at::Tensor x2 = m.divisor.defined() ? at::div(x.reshape({-1, m.in}), m.divisor) : x.reshape({-1, m.in}).contiguous();
  const int64_t rows = x2.size(0);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = m.out;
  at::Tensor y = at::empty({rows, m.out}, at::kFloat);
  const int64_t tiles = (m.out + m.tile - 1) / m.tile;
#ifdef EMBEVAL_HAVE_DNNL
  if (!m.gemms.empty()) {
    if (rows > 0)
      at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> w(static_cast<size_t>(m.tile * m.in));
        dnnl::stream stream(cpu_engine());
        for (int64_t t = begin; t < end; ++t) {
          const int64_t o0 = t * m.tile, n = std::min(m.tile, m.out - o0);
          m.dequant_rows(o0, n, w.data());
          const Impl::TileGemm& g = n == m.tile ? m.gemms[0] : m.gemms[1];
          memory src_m(memory::desc({rows, m.in}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab),
                       cpu_engine(), x2.data_ptr());
          memory w_m(memory::desc({m.in, n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ba), cpu_engine(),
                     w.data());
          memory b_m(memory::desc({1, n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab), cpu_engine(),
                     m.bias.data_ptr<float>() + o0);
          memory y_m(memory::desc({rows, n}, dnnl::memory::data_type::f32, memory::dims{m.out, 1}), cpu_engine(),
                     y.data_ptr<float>() + o0);
          g.matmul.execute(stream, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, w_m}, {DNNL_ARG_BIAS, b_m}, {DNNL_ARG_DST, y_m}});
          stream.wait();
        }
      });
    return y.view(shape);
  }
#endif
  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    at::Tensor w = at::empty({m.tile, m.in}, at::kFloat);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t o0 = t * m.tile, n = std::min(m.tile, m.out - o0);
      m.dequant_rows(o0, n, w.data_ptr<float>());
      y.narrow(1, o0, n).copy_(at::mm(x2, w.narrow(0, 0, n).t()));
    }
  });
  if (m.bias.defined()) y.add_(m.bias);
  return apply_activation(y, m.activation).view(shape);
}

std::string WeightOnlyLinear::implementation() const {
  if (!impl_) return "none";
  return fmt::format("int{} tiles of {} rows -> {}", impl_->bits, impl_->tile, impl_->kernel);
}

int64_t WeightOnlyLinear::weight_bytes() const {
  if (!impl_) return 0;
  return impl_->packed.numel() + impl_->scales.numel() * 8 + (impl_->gidx.defined() ? impl_->in * 4 : 0) +
         (impl_->divisor.defined() ? impl_->in * 4 : 0);
}

const at::Tensor& WeightOnlyLinear::input_divisor() const { return impl_->divisor; }

}  // namespace embeval
