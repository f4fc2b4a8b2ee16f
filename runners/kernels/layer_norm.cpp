#include "runners/kernels/layer_norm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "runners/kernels/cpu_dispatch.h"
#include "runners/kernels/vec_math.h"

namespace embeval {
namespace {

// Rows [0, rows) of out = bf16(LayerNorm(a + r) * w + b), rows h wide,
// each row's sum a + r kept in v (h floats, in L1) for the three passes:
// the sum (fp32) and its total, the squared deviations from the mean (two
// passes: no cancellation from a sum of squares), then the normalised
// values rounded to bf16 (nearest even; NaN stays NaN). Four 16-lane
// accumulators a pass, not one: a single chain of dependent adds (4 cycles
// each, 48 a row at h = 768, twice) bound the whole LayerNorm (bench
// a LayerNorm of bert-base's 4,096 x 768: see layer_norm.h). out may be a
// (in place: a row is read whole before it is written), so neither is
// __restrict__.
typedef EmbevalFloats16 F16;
EMBEVAL_CLONES void add_norm_rows(const uint16_t* a, const uint16_t* r,
                                  int64_t rows, int64_t h, const float* __restrict__ w, const float* __restrict__ b,
                                  float eps, float* __restrict__ v, uint16_t* out) {
  const int64_t whole = h / 64 * 64;
  for (int64_t row = 0; row < rows; ++row, a += h, r += h, out += h) {
    F16 s0 = {}, s1 = {}, s2 = {}, s3 = {};
    float total = 0;
    int64_t i = 0;
    for (; i < whole; i += 64) {
      F16 x[4];
      for (int q = 0; q < 4; ++q)
        for (int l = 0; l < 16; ++l) {
          const uint32_t ua = uint32_t{a[i + 16 * q + l]} << 16, ur = uint32_t{r[i + 16 * q + l]} << 16;
          float fa, fr;
          std::memcpy(&fa, &ua, 4);
          std::memcpy(&fr, &ur, 4);
          x[q][l] = fa + fr;
        }
      std::memcpy(v + i, x, sizeof x);
      s0 += x[0];
      s1 += x[1];
      s2 += x[2];
      s3 += x[3];
    }
    for (; i < h; ++i) {
      const uint32_t ua = uint32_t{a[i]} << 16, ur = uint32_t{r[i]} << 16;
      float fa, fr;
      std::memcpy(&fa, &ua, 4);
      std::memcpy(&fr, &ur, 4);
      v[i] = fa + fr;
      total += v[i];
    }
    total += embeval_hsum16((s0 + s1) + (s2 + s3));
    const float mean = total / static_cast<float>(h);
    F16 q0 = {}, q1 = {}, q2 = {}, q3 = {};
    float sq = 0;
    for (i = 0; i < whole; i += 64) {
      F16 x[4];
      std::memcpy(x, v + i, sizeof x);
      const F16 d0 = x[0] - mean, d1 = x[1] - mean, d2 = x[2] - mean, d3 = x[3] - mean;
      q0 += d0 * d0;
      q1 += d1 * d1;
      q2 += d2 * d2;
      q3 += d3 * d3;
    }
    for (; i < h; ++i) sq += (v[i] - mean) * (v[i] - mean);
    sq += embeval_hsum16((q0 + q1) + (q2 + q3));
    const float rstd = 1.0f / std::sqrt(sq / static_cast<float>(h) + eps);
    for (i = 0; i < h; ++i) EMBEVAL_ROUND_BF16((v[i] - mean) * rstd * w[i] + b[i], out[i]);
  }
}

}  // namespace

at::Tensor add_layer_norm(at::Tensor x, const at::Tensor& residual, const at::Tensor& weight, const at::Tensor& bias,
                          double eps) {
  const int64_t h = x.size(-1);
  if (x.scalar_type() != at::kBFloat16 || residual.scalar_type() != at::kBFloat16 || !x.device().is_cpu() ||
      !x.is_contiguous() || !residual.is_contiguous() || x.sizes() != residual.sizes() || h == 0)
    return at::layer_norm(x.add_(residual), {h}, weight, bias, eps);
  const at::Tensor w = weight.to(at::kFloat).contiguous(), b = bias.to(at::kFloat).contiguous();
  // The result goes over x, each row once it is whole in v: a fresh tensor
  // costs a read of each of its lines before the write (bert-base bf16,
  // batch 32, 2 threads, three alternating runs: the two adds + LayerNorms
  // of a layer 1.78-2.01 ms in place, 1.99-2.05 into a new tensor).
  at::Tensor out = x;
  const int64_t rows = x.numel() / h;
  const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  const auto* rp = reinterpret_cast<const uint16_t*>(residual.data_ptr<at::BFloat16>());
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  const float* wp = w.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  const float feps = static_cast<float>(eps);
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> v(static_cast<size_t>(h));
    add_norm_rows(xp + begin * h, rp + begin * h, end - begin, h, wp, bp, feps, v.data(), op + begin * h);
  });
  return out;
}

}  // namespace embeval
