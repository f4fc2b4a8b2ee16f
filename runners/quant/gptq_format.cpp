#include "runners/quant/gptq_format.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "harness/error.h"

namespace embeval {
namespace {

std::string shape_of(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

void expect_tensor(const at::Tensor& t, const std::string& tensor, const char* field, at::ScalarType type,
                   std::vector<int64_t> shape, const char* why) {
  if (!t.defined()) fail("{}.{}: missing; an AutoGPTQ layer has qweight, qzeros, scales and g_idx", tensor, field);
  if (t.scalar_type() != type)
    fail("{}.{}: dtype {}, expected {}", tensor, field, c10::toString(t.scalar_type()), c10::toString(type));
  if (t.sizes() != at::IntArrayRef(shape)) {
    std::string want = "[";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    fail("{}.{}: shape {}, expected {} ({})", tensor, field, shape_of(t), want + "]", why);
  }
}

}  // namespace

at::Tensor pack_bits(const at::Tensor& values, int bits, int dim) {
  EMBEVAL_ASSERT(values.dim() == 2 && (dim == 0 || dim == 1) && bits >= 1 && bits <= 8);
  at::Tensor v = values.to(at::kLong).contiguous();
  const int64_t rows = v.size(0), cols = v.size(1), along = dim == 0 ? rows : cols;
  EMBEVAL_ASSERT(along * bits % 32 == 0);
  const int64_t words = along * bits / 32;
  std::vector<uint32_t> out(static_cast<size_t>(dim == 0 ? words * cols : rows * words), 0);
  const int64_t* src = v.data_ptr<int64_t>();
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const uint32_t x = static_cast<uint32_t>(src[r * cols + c]) & mask;
      const int64_t j = dim == 0 ? r : c, bit = j * bits, w = bit / 32, off = bit % 32;
      auto at = [&](int64_t word) -> uint32_t& {
        return dim == 0 ? out[static_cast<size_t>(word * cols + c)] : out[static_cast<size_t>(r * words + word)];
      };
      at(w) |= x << off;
      if (off + bits > 32) at(w + 1) |= x >> (32 - off);
    }
  at::Tensor t = at::empty(dim == 0 ? std::vector<int64_t>{words, cols} : std::vector<int64_t>{rows, words}, at::kInt);
  std::memcpy(t.data_ptr(), out.data(), out.size() * sizeof(uint32_t));
  return t;
}

at::Tensor unpack_bits(const at::Tensor& words, int bits, int dim, int64_t count) {
  EMBEVAL_ASSERT(words.dim() == 2 && words.scalar_type() == at::kInt && (dim == 0 || dim == 1));
  at::Tensor w = words.contiguous();
  const int64_t wr = w.size(0), wc = w.size(1);
  EMBEVAL_ASSERT(count * bits == (dim == 0 ? wr : wc) * 32);
  const int64_t rows = dim == 0 ? count : wr, cols = dim == 0 ? wc : count;
  at::Tensor out = at::empty({rows, cols}, at::kInt);
  const uint32_t* src = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  int32_t* dst = out.data_ptr<int32_t>();
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t j = dim == 0 ? r : c, bit = j * bits, k = bit / 32, off = bit % 32;
      auto word = [&](int64_t i) { return dim == 0 ? src[i * wc + c] : src[r * wc + i]; };
      uint32_t x = word(k) >> off;
      if (off + bits > 32) x |= word(k + 1) << (32 - off);
      dst[r * cols + c] = static_cast<int32_t>(x & mask);
    }
  return out;
}

GptqTensors pack_gptq(const QuantizedWeight& q, GptqFormat format, const std::string& tensor) {
  const int bits = q.bits;
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    fail("{}: AutoGPTQ stores 2, 3, 4 or 8 bits, not {}", tensor, bits);
  const int64_t in = q.in_features(), out = q.out_features();
  if (in * bits % 32 || out * bits % 32)
    fail("{}: [{}, {}] weights do not fill whole 32-bit words at {} bits (AutoGPTQ needs in and out multiples of 32)",
         tensor, out, in, bits);
  GptqTensors t;
  t.qweight = pack_bits(q.codes.t(), bits, 0);
  at::Tensor z = q.zeros.t().to(at::kInt);  // [groups, out]
  if (format == GptqFormat::v1) {
    if ((z == 0).any().item<bool>())
      fail("{}: a zero point of 0 cannot be stored in the gptq (v1) format (its field is zero - 1); write gptq_v2",
           tensor);
    z = z - 1;
  }
  t.qzeros = pack_bits(z, bits, 1);
  t.scales = q.scales.t().contiguous().to(at::kHalf);
  t.g_idx = q.column_groups().to(at::kInt);
  return t;
}

QuantizedWeight unpack_gptq(const GptqTensors& t, int bits, int64_t group_size, bool symmetric, GptqFormat format,
                            const std::string& tensor) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    fail("{}: bits {} in the quantization config; AutoGPTQ stores 2, 3, 4 or 8", tensor, bits);
  if (!t.qweight.defined()) fail("{}.qweight: missing; an AutoGPTQ layer has qweight, qzeros, scales and g_idx", tensor);
  if (t.qweight.dim() != 2 || t.qweight.scalar_type() != at::kInt)
    fail("{}.qweight: {} {}, expected int32 [in * bits / 32, out]", tensor, c10::toString(t.qweight.scalar_type()),
         shape_of(t.qweight));
  const int64_t in = t.qweight.size(0) * 32 / bits, out = t.qweight.size(1);
  if (t.qweight.size(0) * 32 % bits) fail("{}.qweight: {} rows do not hold whole {}-bit values", tensor, t.qweight.size(0), bits);
  if (out * bits % 32) fail("{}.qweight: {} output columns do not fill whole words of qzeros at {} bits", tensor, out, bits);
  const int64_t gs = group_size <= 0 || group_size >= in ? in : group_size;
  const int64_t groups = (in + gs - 1) / gs;
  const std::string why = fmt::format("in {}, out {}, {} bits, group size {}", in, out, bits, group_size <= 0 ? -1 : group_size);
  expect_tensor(t.qzeros, tensor, "qzeros", at::kInt, {groups, out * bits / 32}, why.c_str());
  if (!t.scales.defined()) fail("{}.scales: missing", tensor);
  if (t.scales.scalar_type() != at::kHalf && t.scales.scalar_type() != at::kBFloat16 && t.scales.scalar_type() != at::kFloat)
    fail("{}.scales: dtype {}, expected float16", tensor, c10::toString(t.scales.scalar_type()));
  expect_tensor(t.scales, tensor, "scales", t.scales.scalar_type(), {groups, out}, why.c_str());
  QuantizedWeight q;
  q.bits = bits;
  q.group_size = gs == in ? 0 : gs;
  q.symmetric = symmetric;
  q.codes = unpack_bits(t.qweight, bits, 0, in).t().contiguous().to(at::kByte);
  at::Tensor z = unpack_bits(t.qzeros, bits, 1, out);  // [groups, out]
  if (format == GptqFormat::v1) z = z + 1;
  q.zeros = z.t().contiguous();
  q.scales = t.scales.to(at::kFloat).t().contiguous();
  if (!at::isfinite(q.scales).all().item<bool>()) fail("{}.scales: NaN or infinite values", tensor);
  if (t.g_idx.defined()) {
    expect_tensor(t.g_idx, tensor, "g_idx", at::kInt, {in}, why.c_str());
    if ((t.g_idx < 0).any().item<bool>() || (t.g_idx >= groups).any().item<bool>())
      fail("{}.g_idx: group ids outside [0, {}) for group size {}", tensor, groups, gs);
    // A g_idx that is just i / group_size carries nothing: drop it so kernels take the plain path.
    at::Tensor plain = at::arange(in, at::kLong).div(gs, "floor");
    if (!t.g_idx.to(at::kLong).equal(plain)) q.g_idx = t.g_idx.contiguous();
  }
  if (symmetric && !(q.zeros == (1 << (bits - 1))).all().item<bool>())
    fail("{}.qzeros: the config says sym, so every zero is {} in the {} format; this file holds others (is "
         "checkpoint_format right?)",
         tensor, 1 << (bits - 1), format == GptqFormat::v1 ? "gptq" : "gptq_v2");
  return q;
}

}  // namespace embeval
