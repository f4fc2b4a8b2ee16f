#pragma once
// Packers for the quantized layouts written from their documentation
// (runners/quant/FORMATS.md: AutoGPTQ's QuantLinear.pack and AutoAWQ's
// WQLinear_GEMM.from_linear, read, not run), one value at a time, so tests
// check the product's readers and writers against something other than
// themselves.
#include <cstdint>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/Half.h>

#include "runners/quant/quantized_weight.h"

namespace embeval::test {

inline float fp16(double x) { return static_cast<float>(c10::Half(static_cast<float>(x))); }

// A quantized weight with every field chosen by hand (codes and zeros random
// in range, scales positive fp16 numbers).
inline QuantizedWeight random_quantized(int64_t out, int64_t in, int bits, int64_t group, uint64_t seed) {
  at::manual_seed(seed);
  const int64_t groups = group > 0 ? in / group : 1;
  QuantizedWeight q;
  q.bits = bits;
  q.group_size = group;
  q.codes = at::randint(0, 1 << bits, {out, in}, at::kLong).to(at::kByte);
  q.zeros = at::randint(1, 1 << bits, {out, groups}, at::kLong).to(at::kInt);
  q.scales = (at::rand({out, groups}) * 0.1 + 1e-3).to(at::kHalf).to(at::kFloat);
  return q;
}

// AutoGPTQ's layout as its documentation states it: qweight[i * bits / 32][o]
// holds input row i at bits (i * bits) % 32 of a little-endian bit stream
// down the rows; qzeros[g][o * bits / 32] likewise along the columns.
inline std::vector<uint32_t> doc_pack_gptq_qweight(const at::Tensor& codes /* [out, in] */, int bits) {
  const int64_t out = codes.size(0), in = codes.size(1);
  std::vector<uint32_t> w(static_cast<size_t>(in * bits / 32 * out), 0);
  auto c = codes.to(at::kLong);
  for (int64_t i = 0; i < in; ++i)
    for (int64_t o = 0; o < out; ++o) {
      const uint64_t v = static_cast<uint64_t>(c[o][i].item<int64_t>());
      for (int b = 0; b < bits; ++b) {  // bit by bit: the stream definition itself
        const int64_t pos = i * bits + b;
        if ((v >> b) & 1) w[static_cast<size_t>((pos / 32) * out + o)] |= uint32_t{1} << (pos % 32);
      }
    }
  return w;
}

inline std::vector<uint32_t> doc_pack_gptq_qzeros(const at::Tensor& zeros /* [out, groups] */, int bits, bool v1) {
  const int64_t out = zeros.size(0), groups = zeros.size(1), words = out * bits / 32;
  std::vector<uint32_t> w(static_cast<size_t>(groups * words), 0);
  auto z = zeros.to(at::kLong);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t o = 0; o < out; ++o) {
      const uint64_t v = static_cast<uint64_t>(z[o][g].item<int64_t>() - (v1 ? 1 : 0));
      for (int b = 0; b < bits; ++b) {
        const int64_t pos = o * bits + b;
        if ((v >> b) & 1) w[static_cast<size_t>(g * words + pos / 32)] |= uint32_t{1} << (pos % 32);
      }
    }
  return w;
}

inline std::vector<uint32_t> words_of(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  const uint32_t* p = reinterpret_cast<const uint32_t*>(c.data_ptr<int32_t>());
  return std::vector<uint32_t>(p, p + c.numel());
}

inline at::Tensor tensor_of(const std::vector<uint32_t>& w, int64_t rows, int64_t cols) {
  at::Tensor t = at::empty({rows, cols}, at::kInt);
  std::memcpy(t.data_ptr(), w.data(), w.size() * 4);
  return t;
}

// AutoAWQ's GEMM order: nibble k of word c holds output column 8c +
// [0, 2, 4, 6, 1, 3, 5, 7][k]; values [rows, cols] -> words [rows, cols / 8].
inline std::vector<uint32_t> doc_pack_awq(const at::Tensor& values /* [rows, cols] */) {
  const int64_t rows = values.size(0), cols = values.size(1);
  auto v = values.to(at::kLong);
  std::vector<uint32_t> w(static_cast<size_t>(rows * cols / 8), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols / 8; ++c) {
      auto x = [&](int k) { return static_cast<uint32_t>(v[r][8 * c + k].item<int64_t>()); };
      w[static_cast<size_t>(r * (cols / 8) + c)] = x(0) | x(2) << 4 | x(4) << 8 | x(6) << 12 | x(1) << 16 |
                                                   x(3) << 20 | x(5) << 24 | x(7) << 28;
    }
  return w;
}

}  // namespace embeval::test
