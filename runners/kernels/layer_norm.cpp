#include "runners/kernels/layer_norm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "harness/error.h"
#include "runners/kernels/amx_tiles.h"
#include "runners/kernels/cpu_dispatch.h"
#include "runners/kernels/vec_math.h"

#ifdef EMBEVAL_AMX_BUILD
// GCC 12's "may be used uninitialized" on the _mm512_undefined_* inside
// AVX-512 intrinsics once inlined (GCC bug 105593): not this code's.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "runners/kernels/avx512_math.h"
#endif

namespace embeval {
namespace {

// Rows [0, rows) of out = bf16(LayerNorm(a + r) * w + b), rows h wide,
// each row's sum a + r kept in v (h floats, in L1) for the three passes:
// the sum (fp32) and its total, the squared deviations from the mean (two
// passes: no cancellation from a sum of squares), then the normalised
// values rounded to bf16 (nearest even; NaN stays NaN). Four 16-lane
// accumulators a pass, not one: a single chain of dependent adds (4 cycles
// each, 48 a row at h = 768, twice) bound the whole LayerNorm (numbers:
// layer_norm.h). out may be a (in place: a row is read whole before it is
// written), so neither is __restrict__.
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

#ifdef EMBEVAL_AMX_BUILD
// add_norm_rows in AVX-512 with AVX512-BF16, for widths a multiple of 16:
// the same three passes and four accumulators, the rounding by
// VCVTNE2PS2BF16 (nearest even, NaN kept; results below 1.2e-38 flushed to
// zero, as the AMX kernels' epilogues round) where the clones' integer
// rounding took ~8 operations a 16 values, and (v - mean) * (rstd w) + b
// in two. Numbers: layer_norm.h.
EMBEVAL_AVX512_BF16_TARGET inline __m512 widen16(const uint16_t* p) {
  const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}
EMBEVAL_AVX512_BF16_TARGET inline float sum4(const __m512 (&s)[4]) {
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3])));
}
constexpr int64_t PREFETCH_ROWS = 4;
EMBEVAL_AVX512_BF16_TARGET void add_norm_rows_bf16(const uint16_t* a, const uint16_t* r, int64_t rows, int64_t h,
                                          const float* __restrict__ w, const float* __restrict__ b, float eps,
                                          float* __restrict__ v, uint16_t* out, bool far) {
  for (int64_t row = 0; row < rows; ++row, a += h, r += h, out += h) {
    // Rows PREFETCH_ROWS ahead fetched into L1 (see far_residual).
    if (far && row + PREFETCH_ROWS < rows)
      for (int64_t i = 0; i < h; i += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(r + PREFETCH_ROWS * h + i), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(a + PREFETCH_ROWS * h + i), _MM_HINT_T0);
      }
    __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= h; i += 64)
      for (int q = 0; q < 4; ++q) {
        const __m512 x = _mm512_add_ps(widen16(a + i + 16 * q), widen16(r + i + 16 * q));
        _mm512_storeu_ps(v + i + 16 * q, x);
        s[q] = _mm512_add_ps(s[q], x);
      }
    for (; i < h; i += 16) {
      const __m512 x = _mm512_add_ps(widen16(a + i), widen16(r + i));
      _mm512_storeu_ps(v + i, x);
      s[0] = _mm512_add_ps(s[0], x);
    }
    const float mean = sum4(s) / static_cast<float>(h);
    const __m512 vm = _mm512_set1_ps(mean);
    for (int q = 0; q < 4; ++q) s[q] = _mm512_setzero_ps();
    for (i = 0; i + 64 <= h; i += 64)
      for (int q = 0; q < 4; ++q) {
        const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(v + i + 16 * q), vm);
        s[q] = _mm512_fmadd_ps(d, d, s[q]);
      }
    for (; i < h; i += 16) {
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(v + i), vm);
      s[0] = _mm512_fmadd_ps(d, d, s[0]);
    }
    const float var = sum4(s) / static_cast<float>(h);
    const __m512 rstd = _mm512_set1_ps(1.0f / std::sqrt(var + eps));
    for (i = 0; i + 32 <= h; i += 32) {
      const __m512 y0 = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(v + i), vm),
                                        _mm512_mul_ps(rstd, _mm512_loadu_ps(w + i)), _mm512_loadu_ps(b + i));
      const __m512 y1 = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(v + i + 16), vm),
                                        _mm512_mul_ps(rstd, _mm512_loadu_ps(w + i + 16)), _mm512_loadu_ps(b + i + 16));
      _mm512_storeu_si512(out + i, (__m512i)_mm512_cvtne2ps_pbh(y1, y0));
    }
    if (i < h) {
      const __m512 y0 = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(v + i), vm),
                                        _mm512_mul_ps(rstd, _mm512_loadu_ps(w + i)), _mm512_loadu_ps(b + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), (__m256i)_mm512_cvtneps_pbh(y0));
    }
  }
}

#endif

// Whether rows h wide go through add_norm_rows_bf16 (this CPU and build
// have it, and EMBEVAL_NO_AVX512_LAYER_NORM=1 does not say no: read each
// call, for the tests and benchmarks to compare the two forms).
bool vector_form(int64_t h) {
#ifdef EMBEVAL_AMX_BUILD
  const char* e = std::getenv("EMBEVAL_NO_AVX512_LAYER_NORM");
  return h % 16 == 0 && !(e && *e && std::strcmp(e, "0") != 0) && cpu_has_avx512_bf16();
#else
  (void)h;
  return false;
#endif
}

void add_norm(bool vector, const uint16_t* a, const uint16_t* r, int64_t rows, int64_t h, const float* w,
              const float* b, float eps, float* v, uint16_t* out, bool far = false) {
#ifdef EMBEVAL_AMX_BUILD
  if (vector) return add_norm_rows_bf16(a, r, rows, h, w, b, eps, v, out, far);
#else
  (void)vector;
  (void)far;
#endif
  add_norm_rows(a, r, rows, h, w, b, eps, v, out);
}

}  // namespace

AddLayerNormRows::AddLayerNormRows(const at::Tensor& weight, const at::Tensor& bias, double eps, int64_t h,
                                   bool far_residual)
    : w_(weight.to(at::kFloat).contiguous()),
      b_(bias.to(at::kFloat).contiguous()),
      eps_(static_cast<float>(eps)),
      h_(h),
      vector_(vector_form(h)),
      far_(far_residual) {
  // Each row reads h weights and biases: fewer would be a read past them.
  if (w_.numel() != h || b_.numel() != h)
    fail("LayerNorm: weight has {} and bias {} values for rows {} wide", w_.numel(), b_.numel(), h);
}

void AddLayerNormRows::operator()(const uint16_t* a, const uint16_t* residual, int64_t rows, float* v,
                                  uint16_t* out) const {
  add_norm(vector_, a, residual, rows, h_, w_.data_ptr<float>(), b_.data_ptr<float>(), eps_, v, out, far_);
}

namespace {

// out = bf16(a + b) elementwise (nearest even, NaN kept): ATen's bf16 add.
EMBEVAL_CLONES void add_round(const uint16_t* __restrict__ a, const uint16_t* __restrict__ b, int64_t n,
                              uint16_t* __restrict__ out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t ua = uint32_t{a[i]} << 16, ub = uint32_t{b[i]} << 16;
    float fa, fb;
    std::memcpy(&fa, &ua, 4);
    std::memcpy(&fb, &ub, 4);
    EMBEVAL_ROUND_BF16(fa + fb, out[i]);
  }
}

}  // namespace

at::Tensor add_layer_norm(at::Tensor x, const at::Tensor& residual, const at::Tensor& weight, const at::Tensor& bias,
                          double eps) {
  const int64_t h = x.size(-1);
  if (x.scalar_type() != at::kBFloat16 || residual.scalar_type() != at::kBFloat16 || !x.device().is_cpu() ||
      !x.is_contiguous() || !residual.is_contiguous() || x.sizes() != residual.sizes() || h == 0)
    return at::layer_norm(x.add_(residual), {h}, weight, bias, eps);
  const AddLayerNormRows norm(weight, bias, eps, h);
  // The result goes over x, each row once it is whole in v: a fresh tensor
  // costs a read of each of its lines before the write (bert-base bf16,
  // batch 32, 2 threads, three alternating runs: the two adds + LayerNorms
  // of a layer 1.78-2.01 ms in place, 1.99-2.05 into a new tensor).
  at::Tensor out = x;
  const int64_t rows = x.numel() / h;
  const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  const auto* rp = reinterpret_cast<const uint16_t*>(residual.data_ptr<at::BFloat16>());
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> v(static_cast<size_t>(h));
    norm(xp + begin * h, rp + begin * h, end - begin, v.data(), op + begin * h);
  });
  return out;
}

at::Tensor embed_layer_norm(const at::Tensor& word, const at::Tensor& type_row, const at::Tensor& pos,
                            const at::Tensor& ids, const at::Tensor& positions, const at::Tensor& weight,
                            const at::Tensor& bias, double eps) {
  const int64_t h = word.dim() == 2 ? word.size(1) : 0;
  if (word.scalar_type() != at::kBFloat16 || !word.device().is_cpu() || h == 0 || !word.is_contiguous() ||
      pos.scalar_type() != at::kBFloat16 || !pos.is_contiguous() || pos.dim() != 2 || pos.size(1) != h ||
      type_row.scalar_type() != at::kBFloat16 || type_row.numel() != h || ids.dim() != 2 ||
      positions.sizes() != ids.sizes())
    return at::Tensor();
  const at::Tensor id = ids.to(at::kLong).contiguous(), place = positions.to(at::kLong).contiguous();
  const at::Tensor type = type_row.contiguous();
  const int64_t rows = id.numel(), vocab = word.size(0), places = pos.size(0), t = ids.size(1);
  const int64_t* ip = id.data_ptr<int64_t>();
  const int64_t* pp = place.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    if (ip[r] < 0 || ip[r] >= vocab)
      fail("embeddings: token id {} at [{}, {}] is outside the vocabulary [0, {})", ip[r], r / t, r % t, vocab);
    if (pp[r] < 0 || pp[r] >= places)
      fail("embeddings: position {} at [{}, {}] is outside the model's {} positions", pp[r], r / t, r % t, places);
  }
  at::Tensor out = at::empty({ids.size(0), t, h}, word.options());
  const auto* wp16 = reinterpret_cast<const uint16_t*>(word.data_ptr<at::BFloat16>());
  const auto* pp16 = reinterpret_cast<const uint16_t*>(pos.data_ptr<at::BFloat16>());
  const auto* tp16 = reinterpret_cast<const uint16_t*>(type.data_ptr<at::BFloat16>());
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  const AddLayerNormRows norm(weight, bias, eps, h);
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> v(static_cast<size_t>(h));
    std::vector<uint16_t> x(static_cast<size_t>(h));
    for (int64_t r = begin; r < end; ++r) {
      add_round(wp16 + ip[r] * h, tp16, h, x.data());
      norm(x.data(), pp16 + pp[r] * h, 1, v.data(), op + r * h);
    }
  });
  return out;
}

}  // namespace embeval
