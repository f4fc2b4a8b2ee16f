#include "runners/quant/awq_format.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>

#include "harness/error.h"

namespace embeval {
namespace {

constexpr int ORDER[8] = {0, 2, 4, 6, 1, 3, 5, 7};

// [rows, cols] nibbles -> [rows, cols / 8] words in AWQ's order.
at::Tensor pack_rows(const at::Tensor& values) {
  at::Tensor v = values.to(at::kInt).contiguous();
  const int64_t rows = v.size(0), cols = v.size(1), words = cols / 8;
  at::Tensor out = at::empty({rows, words}, at::kInt);
  const int32_t* src = v.data_ptr<int32_t>();
  uint32_t* dst = reinterpret_cast<uint32_t*>(out.data_ptr<int32_t>());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < words; ++c) {
      uint32_t w = 0;
      for (int k = 0; k < 8; ++k) w |= (static_cast<uint32_t>(src[r * cols + 8 * c + ORDER[k]]) & 15u) << (4 * k);
      dst[r * words + c] = w;
    }
  return out;
}

at::Tensor unpack_rows(const at::Tensor& words) {
  at::Tensor w = words.contiguous();
  const int64_t rows = w.size(0), nw = w.size(1), cols = nw * 8;
  at::Tensor out = at::empty({rows, cols}, at::kInt);
  const uint32_t* src = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  int32_t* dst = out.data_ptr<int32_t>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < nw; ++c)
      for (int k = 0; k < 8; ++k) dst[r * cols + 8 * c + ORDER[k]] = static_cast<int32_t>((src[r * nw + c] >> (4 * k)) & 15u);
  return out;
}

std::string shape_of(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

}  // namespace

AwqTensors pack_awq(const QuantizedWeight& q, const std::string& tensor) {
  if (q.bits != 4) fail("{}: AutoAWQ's GEMM format stores 4-bit weights, not {}", tensor, q.bits);
  if (q.g_idx.defined()) fail("{}: AutoAWQ's format has no g_idx; act-order weights cannot be stored in it", tensor);
  const int64_t out = q.out_features();
  if (out % 8) fail("{}: {} output features; AutoAWQ packs 8 per word", tensor, out);
  AwqTensors t;
  t.qweight = pack_rows(q.codes.t());
  t.qzeros = pack_rows(q.zeros.t());
  t.scales = q.scales.t().contiguous().to(at::kHalf);
  return t;
}

QuantizedWeight unpack_awq(const AwqTensors& t, int64_t group_size, const std::string& tensor) {
  for (auto [field, x] : {std::pair<const char*, const at::Tensor*>{"qweight", &t.qweight}, {"qzeros", &t.qzeros}}) {
    if (!x->defined()) fail("{}.{}: missing; an AutoAWQ GEMM layer has qweight, qzeros and scales", tensor, field);
    if (x->dim() != 2 || x->scalar_type() != at::kInt)
      fail("{}.{}: {} {}, expected int32 [rows, out / 8]", tensor, field, c10::toString(x->scalar_type()), shape_of(*x));
  }
  const int64_t in = t.qweight.size(0), out = t.qweight.size(1) * 8;
  const int64_t gs = group_size <= 0 || group_size >= in ? in : group_size;
  if (in % gs) fail("{}.qweight: {} input rows are not whole groups of {}", tensor, in, gs);
  const int64_t groups = in / gs;
  if (t.qzeros.sizes() != at::IntArrayRef({groups, out / 8}))
    fail("{}.qzeros: shape {}, expected [{}, {}] (in {}, out {}, group size {})", tensor, shape_of(t.qzeros), groups,
         out / 8, in, out, gs);
  if (!t.scales.defined()) fail("{}.scales: missing", tensor);
  if (t.scales.scalar_type() != at::kHalf && t.scales.scalar_type() != at::kBFloat16 && t.scales.scalar_type() != at::kFloat)
    fail("{}.scales: dtype {}, expected float16", tensor, c10::toString(t.scales.scalar_type()));
  if (t.scales.sizes() != at::IntArrayRef({groups, out}))
    fail("{}.scales: shape {}, expected [{}, {}] (in {}, out {}, group size {})", tensor, shape_of(t.scales), groups, out,
         in, out, gs);
  QuantizedWeight q;
  q.bits = 4;
  q.group_size = gs == in ? 0 : gs;
  q.symmetric = false;
  q.codes = unpack_rows(t.qweight).t().contiguous().to(at::kByte);
  q.zeros = unpack_rows(t.qzeros).t().contiguous();
  q.scales = t.scales.to(at::kFloat).t().contiguous();
  if (!at::isfinite(q.scales).all().item<bool>()) fail("{}.scales: NaN or infinite values", tensor);
  return q;
}

}  // namespace embeval
