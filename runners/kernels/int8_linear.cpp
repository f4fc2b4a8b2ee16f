#include "runners/kernels/int8_linear.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "harness/error.h"
#include "runners/kernels/amx_s8_gemm.h"
#include "runners/kernels/cpu_dispatch.h"
#include "runners/kernels/vec_math.h"

#ifdef EMBEVAL_HAVE_DNNL
#include "runners/kernels/onednn_util.h"
#include "runners/kernels/s8_gemm.h"
#endif

namespace embeval {

bool onednn_int8_gemm_is_exact() {
#ifdef EMBEVAL_HAVE_DNNL
  static bool exact = false;
  static std::once_flag once;
  std::call_once(once, [] {
    try {
      // Extremes of both signs: 16-bit pair sums of u8 x s8 products (what
      // non-VNNI kernels do after shifting s8 sources by 128) overflow here.
      const int64_t k = 256, n = 16;
      at::Tensor w = at::full({n, k}, 127, at::kChar);
      w.narrow(0, 0, n / 2).fill_(-127);
      at::Tensor x = at::full({4, k}, 127, at::kChar);
      x[1].fill_(-127);
      x[2].copy_(at::where(at::arange(k) % 2 == 0, at::full({k}, 127, at::kChar), at::full({k}, -127, at::kChar)));
      x[3].fill_(1);
      at::Tensor got = S8Gemm(w)(x.contiguous());
      at::Tensor want = at::mm(x.to(at::kDouble), w.to(at::kDouble).t()).to(at::kInt);
      exact = got.equal(want);
    } catch (const dnnl::error&) {
      exact = false;
    }
  });
  return exact;
#else
  return false;
#endif
}

namespace {

// Rows each thread needs before the threads take runs of rows of their
// own: with fewer, each thread reading every weight costs more than the
// barriers it saves.
constexpr int64_t ROWS_PER_THREAD_MIN = 64;

// Rows a block of Int8Linear::fused_with: its fp32 intermediate (rows x 3072
// for bert-base, 1.5 MB at 128 rows) and codes stay near a core's 2 MB L2
// (bf16+w8a8 FFN at batch 32, ms: 64 rows 21.2, 128 rows 20.4, 256 rows
// 20.7, 32 rows 24.7; the two calls 21.7-23.1 in the same runs; on the AMX
// kernel, three alternating runs: 64 rows 13.6-15.2, 128 rows 14.6-15.6,
// 256 rows 13.7-16.4, no difference beyond the noise).
constexpr int64_t FUSED_BLOCK_ROWS = 128;

// 16 floats, 16 int32: the element loops below are written in GCC vector
// types because plain loops with eight scalar "lanes" came out scalar in the
// v4 clone (perf on the 3072 -> 768 layer put 29% of its time in these two
// functions; see attention.cpp's softmax for the same finding).
typedef EmbevalFloats16 F16;
typedef int32_t I16 __attribute__((vector_size(64)));
typedef int8_t B16 __attribute__((vector_size(16)));
typedef uint16_t H16 __attribute__((vector_size(32)));

// bf16 bits -> float (the bf16 is the float's upper half): exact.
inline float widen(float x) { return x; }
inline float widen(uint16_t h) {
  const uint32_t u = uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// OUT (F16) = 16 floats at P, from float or bf16 (a macro so that it expands
// inside each clone; runners/kernels/vec_math.h says why).
#define EMBEVAL_LOAD16(OUT, P)                                                                           \
  do {                                                                                                   \
    if constexpr (sizeof(*(P)) == sizeof(float)) { /* float; else bf16 bits */                        \
      __builtin_memcpy(&(OUT), (P), sizeof(F16));                                                        \
    } else {                                                                                             \
      H16 h_;                                                                                            \
      __builtin_memcpy(&h_, (P), sizeof h_);                                                             \
      (OUT) = reinterpret_cast<F16>(__builtin_convertvector(h_, I16) << 16);                             \
    }                                                                                                    \
  } while (0)

// The same divided by 16 smoothing factors at S when SMOOTH (x / smooth[k]).
#define EMBEVAL_LOAD16_SMOOTHED(OUT, P, S, SMOOTH) \
  do {                                             \
    EMBEVAL_LOAD16(OUT, P);                        \
    if (SMOOTH) {                                  \
      F16 d_;                                      \
      __builtin_memcpy(&d_, (S), sizeof d_);       \
      (OUT) = (OUT) / d_;                          \
    }                                              \
  } while (0)

// max_k |x[k] / smooth[k]| (no smooth: |x[k]|) over one row, NaN when any
// element is NaN or infinite (v * 0 is NaN exactly then; the sum of such
// probes stays NaN).
template <bool SMOOTH, typename T>
EMBEVAL_CLONES float row_absmax(const T* __restrict__ x, const float* __restrict__ sm, int64_t n) {
  F16 m = {}, probe = {};
  const I16 abs_mask = I16{} + 0x7fffffff;
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    F16 v;
    EMBEVAL_LOAD16_SMOOTHED(v, x + k, sm + k, SMOOTH);
    const F16 a = reinterpret_cast<F16>(reinterpret_cast<I16>(v) & abs_mask);
    m = m > a ? m : a;
    probe += v * 0.f;
  }
  float r = 0, p = 0;
  for (; k < n; ++k) {
    const float v = SMOOTH ? widen(x[k]) / sm[k] : widen(x[k]);
    r = std::max(r, std::fabs(v));
    p += v * 0.f;
  }
  const float lanes_max = embeval_hmax16(m);
  r = r > lanes_max ? r : lanes_max;
  return p + embeval_hsum16(probe) == 0 ? r : NAN;
}

// codes = round-half-even(x / scale) clamped to +-127. Adding and
// subtracting 1.5 * 2^23 rounds a float below 2^22 in magnitude to the
// nearest integer, ties to even, in the default rounding mode: what
// torch.round does, without a libm call per element. The division (not a
// multiplication by 1 / scale) keeps the quotient torch computes.
template <bool SMOOTH, typename T>
EMBEVAL_CLONES void row_quantize(const T* __restrict__ x, const float* __restrict__ sm, int64_t n, float scale,
                                 int8_t* __restrict__ out) {
  const float magic = 12582912.f;
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    F16 v;
    EMBEVAL_LOAD16_SMOOTHED(v, x + k, sm + k, SMOOTH);
    F16 q = (v / scale + magic) - magic;
    q = q > 127.f ? F16{} + 127.f : q;
    q = q < -127.f ? F16{} - 127.f : q;
    const B16 c = __builtin_convertvector(__builtin_convertvector(q, I16), B16);
    __builtin_memcpy(out + k, &c, sizeof c);
  }
  for (; k < n; ++k) {
    const float v = (SMOOTH ? widen(x[k]) / sm[k] : widen(x[k])) / scale;
    float q = (v + magic) - magic;
    q = q > 127.f ? 127.f : (q < -127.f ? -127.f : q);
    out[k] = static_cast<int8_t>(q);
  }
}

// y[n] = act(acc[n] * sx + b[n]) in one pass, acc holding acc * sw[n]
// already; y float, or bf16 bits rounded to nearest even (NaN stays NaN).
// acc and y may be the same floats. ACT is the LinearActivation, fixed at
// compile time so the loop has no branch.
template <int ACT, typename OutT>
EMBEVAL_CLONES void finish_row(const float* acc, OutT* y, int64_t out, float sx, const float* __restrict__ bias) {
  for (int64_t n = 0; n < out; ++n) {
    float v = acc[n] * sx + (bias ? bias[n] : 0.0f);
    EMBEVAL_ACTIVATE(ACT, v);
    if constexpr (sizeof(OutT) == sizeof(float)) {
      y[n] = v;
    } else {
      EMBEVAL_ROUND_BF16(v, y[n]);
    }
  }
}

template <typename OutT>
void finish_rows(const float* acc, OutT* y, int64_t rows, int64_t out, const float* sx, const float* bias,
                 LinearActivation act) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* a = acc + r * out;
    OutT* row = y + r * out;
    switch (act) {
      case LinearActivation::none: finish_row<0>(a, row, out, sx[r], bias); break;
      case LinearActivation::gelu_erf: finish_row<1>(a, row, out, sx[r], bias); break;
      case LinearActivation::gelu_tanh: finish_row<2>(a, row, out, sx[r], bias); break;
      case LinearActivation::relu: finish_row<3>(a, row, out, sx[r], bias); break;
    }
  }
}

// Rows [begin, end) of x quantized per token: codes into cp + r * in, scales
// into scp[r] (indices from `begin`, so a caller may pass a block's own buffers).
template <typename T>
void quantize_rows(const T* xp, int64_t begin, int64_t end, int64_t in, const float* sp, int8_t* cp, float* scp) {
  for (int64_t r = begin; r < end; ++r) {
    const T* xr = xp + r * in;
    int8_t* cr = cp + (r - begin) * in;
    const float amax = sp ? row_absmax<true>(xr, sp, in) : row_absmax<false>(xr, nullptr, in);
    if (std::isnan(amax)) {  // NaN in, NaN out: never a silently finite vector
      std::fill(cr, cr + in, int8_t{0});
      scp[r - begin] = NAN;
      continue;
    }
    const float scale = std::max(amax, 1e-5f) / 127.f;
    if (sp)
      row_quantize<true>(xr, sp, in, scale, cr);
    else
      row_quantize<false>(xr, nullptr, in, scale, cr);
    scp[r - begin] = scale;
  }
}

// Rows [r0, r0 + n) of x2 (float32 or bf16, [rows, in], contiguous) into the
// AMX kernel's codes (its own activation step, with the layer's smoothing).
void amx_quantize(const AmxS8Gemm& g, const at::Tensor& x2, int64_t r0, int64_t n, int8_t* codes, float* scales) {
  const int64_t in = x2.size(1);
  if (x2.scalar_type() == at::kBFloat16)
    g.quantize(reinterpret_cast<const uint16_t*>(x2.data_ptr<at::BFloat16>()) + r0 * in, n, codes, scales);
  else
    g.quantize(x2.data_ptr<float>() + r0 * in, n, codes, scales);
}

// A thread's codes for `rows` rows of the AMX kernel's padded width: 64-byte
// aligned (ATen's CPU allocator), zeros where never written.
at::Tensor amx_codes(const AmxS8Gemm& g, int64_t rows) {
  return at::zeros({AmxS8Gemm::rows_padded(rows), g.lda()}, at::kChar);
}

#ifdef EMBEVAL_HAVE_DNNL
// Rows [r0, r0 + n) of x2 (float32 or bf16, [rows, in], contiguous)
// quantized per token into codes and scales indexed from r0 (the oneDNN
// paths' blocks; built without oneDNN nothing calls it).
void quantize_block(const at::Tensor& x2, int64_t r0, int64_t n, const float* sp, int8_t* codes, float* scales) {
  const int64_t in = x2.size(1);
  if (x2.scalar_type() == at::kBFloat16)
    quantize_rows(reinterpret_cast<const uint16_t*>(x2.data_ptr<at::BFloat16>()) + r0 * in, 0, n, in, sp, codes, scales);
  else
    quantize_rows(x2.data_ptr<float>() + r0 * in, 0, n, in, sp, codes, scales);
}
#endif

}  // namespace

std::pair<at::Tensor, at::Tensor> quantize_per_token(const at::Tensor& x_in, const at::Tensor& smooth_in) {
  EMBEVAL_ASSERT(x_in.dim() == 2 && (x_in.scalar_type() == at::kFloat || x_in.scalar_type() == at::kBFloat16));
  at::Tensor x = x_in.contiguous();
  const int64_t rows = x.size(0), in = x.size(1);
  at::Tensor smooth = smooth_in.defined() ? smooth_in.to(at::kFloat).contiguous() : smooth_in;
  EMBEVAL_ASSERT(!smooth.defined() || smooth.numel() == in);
  at::Tensor codes = at::empty({rows, in}, at::kChar), scales = at::empty({rows}, at::kFloat);
  const float* sp = smooth.defined() ? smooth.data_ptr<float>() : nullptr;
  int8_t* cp = codes.data_ptr<int8_t>();
  float* scp = scales.data_ptr<float>();
  // bf16 rows are read as they are, widened in registers: no fp32 copy.
  auto run = [&](const auto* xp) {
    at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
      quantize_rows(xp, begin, end, in, sp, cp + begin * in, scp + begin);
    });
  };
  if (x.scalar_type() == at::kBFloat16)
    run(reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()));
  else
    run(x.data_ptr<float>());
  return {codes, scales};
}

struct Int8Linear::Impl {
  int64_t in = 0, out = 0;
  at::Tensor weight_scales, bias, smooth;  // float [out], float [out] or undefined, float [in] or undefined
  LinearActivation activation = LinearActivation::none;
  PackedLinear emulated;                   // the int8 values as fp32, when no exact int8 GEMM
  std::unique_ptr<AmxS8Gemm> amx;          // embeval's AMX kernel, where the CPU has it
  bool use_int8 = false;
  std::string why;
#ifdef EMBEVAL_HAVE_DNNL
  std::unique_ptr<S8Gemm> gemm;
#endif
};

Int8Linear::Int8Linear() = default;
Int8Linear::~Int8Linear() = default;
Int8Linear::Int8Linear(Int8Linear&&) noexcept = default;
Int8Linear& Int8Linear::operator=(Int8Linear&&) noexcept = default;

Int8Linear::Int8Linear(const at::Tensor& weight, const at::Tensor& weight_scales, const at::Tensor& bias,
                       LinearActivation activation, const at::Tensor& smooth)
    : impl_(std::make_unique<Impl>()) {
  if (weight.dim() != 2 || weight.scalar_type() != at::kChar)
    fail("Int8Linear: weight must be int8 [out, in], got {} with {} dimensions", c10::toString(weight.scalar_type()),
         weight.dim());
  Impl& m = *impl_;
  m.out = weight.size(0);
  m.in = weight.size(1);
  if (weight_scales.numel() != m.out) fail("Int8Linear: {} weight scales for {} outputs", weight_scales.numel(), m.out);
  if (bias.defined() && bias.numel() != m.out) fail("Int8Linear: bias of {} values for {} outputs", bias.numel(), m.out);
  if (smooth.defined() && smooth.numel() != m.in) fail("Int8Linear: {} smoothing factors for {} inputs", smooth.numel(), m.in);
  // The codes as given are needed only here: each path keeps its own copy
  // (packed tiles, oneDNN's layout, or fp32 for the emulated product).
  const at::Tensor codes = weight.contiguous();
  m.weight_scales = weight_scales.to(at::kFloat).contiguous();
  m.bias = bias.defined() ? bias.to(at::kFloat).contiguous() : bias;
  m.smooth = smooth.defined() ? smooth.to(at::kFloat).contiguous() : smooth;
  m.activation = activation;
  if (AmxS8Gemm::available()) {
    m.amx = std::make_unique<AmxS8Gemm>(codes, m.weight_scales, m.bias, m.activation, m.smooth);
    m.use_int8 = true;
    return;
  }
#ifdef EMBEVAL_HAVE_DNNL
  if (onednn_int8_gemm_is_exact()) {
    try {
      m.gemm = std::make_unique<S8Gemm>(codes, m.weight_scales);
      if (onednn::is_reference_kernel(m.gemm->kernel().c_str())) {
        m.why = "oneDNN has only its reference int8 kernel here";
        m.gemm.reset();
      } else {
        m.use_int8 = true;
      }
    } catch (const dnnl::error&) {
      m.why = "oneDNN has no int8 kernel for this layer";
    }
  } else {
    m.why = "this CPU's oneDNN int8 kernel saturates 16-bit pair sums (no VNNI)";
  }
#else
  m.why = "built without oneDNN";
#endif
  if (!m.use_int8) m.emulated = PackedLinear(codes.to(at::kFloat), at::Tensor(), LinearActivation::none);
}

at::Tensor Int8Linear::operator()(const at::Tensor& x) const {
  const Impl& m = *impl_;
  if (x.size(-1) != m.in) fail("Int8Linear: input has {} features, the layer takes {}", x.size(-1), m.in);
  const bool bf16 = x.scalar_type() == at::kBFloat16;
  if ((x.scalar_type() != at::kFloat && !bf16) || !x.device().is_cpu())
    fail("Int8Linear: input is {} on {}; the layer takes float32 or bfloat16 on cpu", c10::toString(x.scalar_type()),
         x.device().str());
  const at::Tensor x2 = x.reshape({-1, m.in}).contiguous();
  const int64_t rows = x2.size(0), out = m.out;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  at::Tensor y = at::empty({rows, out}, bf16 ? at::kBFloat16 : at::kFloat);
  const float* bp = m.bias.defined() ? m.bias.data_ptr<float>() : nullptr;
  // The output as float or bf16 bits (bf16 in, bf16 out: the input quantized
  // as it is, widened in registers; the output rounded once).
  auto finish = [&](const float* acc, int64_t r0, int64_t n, const float* sx) {
    if (bf16)
      finish_rows(acc, reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>()) + r0 * out, n, out, sx, bp, m.activation);
    else
      finish_rows(acc, y.data_ptr<float>() + r0 * out, n, out, sx, bp, m.activation);
  };
  if (m.amx) {
    if (rows > 0) run_amx(x2, y);
    return y.view(shape);
  }
#ifdef EMBEVAL_HAVE_DNNL
  if (m.use_int8 && m.gemm->scaled() && rows > 0) {
    const float* sp = m.smooth.defined() ? m.smooth.data_ptr<float>() : nullptr;
    // Blocks of rows, one after another, each quantized, multiplied and
    // finished (all threads on each step) while its codes and fp32 products
    // are in cache: the input is read once and the output written once. One
    // product over all rows wrote the fp32 products (50 MB for bert-base's
    // FFN-in at 4096 rows) and read them back at memory speed. Measured on
    // bert-base, batch 32 x 128, 2 threads, AMX Xeon, forward ms (fp32 out /
    // bf16 out): all rows at once 831-835 / 728-738, blocks of 256 791-800 /
    // 622-637, when embeval's own loops still ran on one thread (built
    // without OpenMP, until session 14); with them on both threads, three
    // alternating runs each: blocks of 256 657-659 / 545-550, of 1024
    // 655-705 / 549-565.
    constexpr int64_t BLOCK_ROWS = 256;
    const int threads = at::get_num_threads();
    if (threads > 1 && rows >= ROWS_PER_THREAD_MIN * threads) {
      // Each thread takes its own run of rows through every step, block by
      // block, its products on its own core: no barrier inside the layer.
      at::parallel_for(0, rows, (rows + threads - 1) / threads, [&](int64_t begin, int64_t end) {
        const int64_t block = std::min(end - begin, BLOCK_ROWS);
        std::vector<int8_t> codes(static_cast<size_t>(block * m.in));
        std::vector<float> sx(static_cast<size_t>(block)), acc(static_cast<size_t>(block * out));
        at::Tensor pad;
        for (int64_t r0 = begin; r0 < end; r0 += block) {
          const int64_t n = std::min(block, end - r0);
          quantize_block(x2, r0, n, sp, codes.data(), sx.data());
          m.gemm->run(codes.data(), n, acc.data(), &pad);
          finish(acc.data(), r0, n, sx.data());
        }
      });
      return y.view(shape);
    }
    const int64_t block = std::min(rows, BLOCK_ROWS);
    at::Tensor codes = at::empty({block, m.in}, at::kChar);
    at::Tensor sx = at::empty({block}, at::kFloat), acc = at::empty({block, out}, at::kFloat);
    int8_t* cp = codes.data_ptr<int8_t>();
    float* sxp = sx.data_ptr<float>();
    float* ap = acc.data_ptr<float>();
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
      const int64_t n = std::min(block, rows - r0);
      at::parallel_for(0, n, 8, [&](int64_t begin, int64_t end) {
        if (bf16)
          quantize_rows(reinterpret_cast<const uint16_t*>(x2.data_ptr<at::BFloat16>()) + r0 * m.in, begin, end, m.in,
                        sp, cp + begin * m.in, sxp + begin);
        else
          quantize_rows(x2.data_ptr<float>() + r0 * m.in, begin, end, m.in, sp, cp + begin * m.in, sxp + begin);
      });
      m.gemm->run(cp, n, ap);
      at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
        finish(ap + begin * out, r0 + begin, end - begin, sxp + begin);
      });
    }
    return y.view(shape);
  }
#endif
  // One product over all rows: the emulated path (no exact int8 GEMM), or
  // oneDNN 3 (its s32 products scaled here, in the same order as oneDNN 2's
  // output scales), finished in blocks of 16 rows.
  auto [codes, sx] = quantize_per_token(x2, m.smooth);
  at::Tensor acc;
#ifdef EMBEVAL_HAVE_DNNL
  if (m.use_int8) acc = (*m.gemm)(codes).to(at::kFloat).mul_(m.weight_scales);
#endif
  if (!acc.defined()) acc = m.emulated(codes.to(at::kFloat)).mul_(m.weight_scales);
  const float* sxp = sx.data_ptr<float>();
  const float* ap = acc.data_ptr<float>();
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) { finish(ap + begin * out, begin, end - begin, sxp + begin); });
  return y.view(shape);
}

void Int8Linear::run_amx(const at::Tensor& x2, at::Tensor& y) const {
  const Impl& m = *impl_;
  const AmxS8Gemm& g = *m.amx;
  const int64_t rows = x2.size(0), out = m.out, lda = g.lda();
  const bool bf16 = y.scalar_type() == at::kBFloat16;
  // Rows [r0, r0 + n) of the output from their codes, columns [c0, c1).
  auto multiply = [&](const int8_t* codes, int64_t r0, int64_t n, const float* sx, int64_t c0, int64_t c1) {
    if (bf16)
      g.run(codes, n, sx, reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>()) + r0 * out, out, c0, c1);
    else
      g.run(codes, n, sx, y.data_ptr<float>() + r0 * out, out, c0, c1);
  };
  // Rows a call: the block's codes (256 x 3072 at most for bert-base, 768 KB)
  // stay in L2.
  constexpr int64_t BLOCK_ROWS = 256;
  const int threads = at::get_num_threads();
  if (threads > 1 && rows >= ROWS_PER_THREAD_MIN * threads) {
    // Each thread takes its own run of rows, block by block, from the input
    // to the output: no barrier inside the layer.
    at::parallel_for(0, rows, (rows + threads - 1) / threads, [&](int64_t begin, int64_t end) {
      const int64_t block = std::min(end - begin, BLOCK_ROWS);
      at::Tensor codes = amx_codes(g, block);
      std::vector<float> sx(static_cast<size_t>(block));
      for (int64_t r0 = begin; r0 < end; r0 += block) {
        const int64_t n = std::min(block, end - r0);
        amx_quantize(g, x2, r0, n, codes.data_ptr<int8_t>(), sx.data());
        multiply(codes.data_ptr<int8_t>(), r0, n, sx.data(), 0, out);
      }
    });
    return;
  }
  // Few rows (one text) or one thread: every row quantized once, then the
  // threads share out the columns in blocks of 32.
  at::Tensor codes = amx_codes(g, rows);
  std::vector<float> sx(static_cast<size_t>(rows));
  int8_t* cp = codes.data_ptr<int8_t>();
  at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
    amx_quantize(g, x2, begin, end - begin, cp + begin * lda, sx.data() + begin);
  });
  at::parallel_for(0, (out + 31) / 32, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t r0 = 0; r0 < rows; r0 += BLOCK_ROWS)
      multiply(cp + r0 * lda, r0, std::min(BLOCK_ROWS, rows - r0), sx.data() + r0, b0 * 32, std::min(b1 * 32, out));
  });
}

at::Tensor Int8Linear::fused_with(const Linear& next_linear, const at::Tensor& x) const {
  const auto* next = dynamic_cast<const Int8Linear*>(&next_linear);
  if (!next || !impl_ || !next->impl_) return at::Tensor();
  const Impl& a = *impl_;
  const Impl& b = *next->impl_;
  const bool bf16 = x.scalar_type() == at::kBFloat16;
  if (x.size(-1) != a.in || b.in != a.out || a.in <= 0 || (x.scalar_type() != at::kFloat && !bf16) ||
      !x.device().is_cpu())
    return at::Tensor();
  const int64_t rows = x.numel() / a.in, out = b.out;
  const int threads = at::get_num_threads();
  if (threads < 2 || rows < ROWS_PER_THREAD_MIN * threads) return at::Tensor();
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  const at::Tensor x2 = x.reshape({-1, a.in}).contiguous();
  if (a.amx && b.amx) return fused_amx(*next, x2).view(shape);
#ifdef EMBEVAL_HAVE_DNNL
  if (!a.use_int8 || !b.use_int8 || !a.gemm->scaled() || !b.gemm->scaled()) return at::Tensor();
  const int64_t mid = a.out;
  at::Tensor y = at::empty({rows, out}, x.scalar_type());
  const float* sa = a.smooth.defined() ? a.smooth.data_ptr<float>() : nullptr;
  const float* sb = b.smooth.defined() ? b.smooth.data_ptr<float>() : nullptr;
  const float* ba = a.bias.defined() ? a.bias.data_ptr<float>() : nullptr;
  const float* bb = b.bias.defined() ? b.bias.data_ptr<float>() : nullptr;
  at::parallel_for(0, rows, (rows + threads - 1) / threads, [&](int64_t begin, int64_t end) {
    const int64_t block = std::min(end - begin, FUSED_BLOCK_ROWS);
    std::vector<int8_t> codes_a(static_cast<size_t>(block * a.in)), codes_b(static_cast<size_t>(block * mid));
    std::vector<float> sx_a(static_cast<size_t>(block)), sx_b(static_cast<size_t>(block));
    std::vector<float> acc_a(static_cast<size_t>(block * mid)), acc_b(static_cast<size_t>(block * out));
    std::vector<uint16_t> mid16(bf16 ? static_cast<size_t>(block * mid) : 0);
    at::Tensor pad;
    for (int64_t r0 = begin; r0 < end; r0 += block) {
      const int64_t n = std::min(block, end - r0);
      quantize_block(x2, r0, n, sa, codes_a.data(), sx_a.data());
      a.gemm->run(codes_a.data(), n, acc_a.data(), &pad);
      // The intermediate as the two calls hand it over: bf16 bits, or fp32 in place.
      if (bf16) {
        finish_rows(acc_a.data(), mid16.data(), n, mid, sx_a.data(), ba, a.activation);
        quantize_rows(mid16.data(), 0, n, mid, sb, codes_b.data(), sx_b.data());
      } else {
        finish_rows(acc_a.data(), acc_a.data(), n, mid, sx_a.data(), ba, a.activation);
        quantize_rows(acc_a.data(), 0, n, mid, sb, codes_b.data(), sx_b.data());
      }
      b.gemm->run(codes_b.data(), n, acc_b.data(), &pad);
      if (bf16)
        finish_rows(acc_b.data(), reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>()) + r0 * out, n, out,
                    sx_b.data(), bb, b.activation);
      else
        finish_rows(acc_b.data(), y.data_ptr<float>() + r0 * out, n, out, sx_b.data(), bb, b.activation);
    }
  });
  return y.view(shape);
#else
  return at::Tensor();
#endif
}

bool Int8Linear::map_row_blocks(const at::Tensor& x, int64_t block_rows, const RowBlockUse& use) const {
  if (!impl_ || !impl_->amx || block_rows <= 0) return false;
  const Impl& m = *impl_;
  const bool bf16 = x.scalar_type() == at::kBFloat16;
  if ((!bf16 && x.scalar_type() != at::kFloat) || !x.device().is_cpu() || x.dim() == 0 || x.size(-1) != m.in)
    return false;
  const at::Tensor x2 = x.reshape({-1, m.in}).contiguous();
  const int64_t rows = x2.size(0), blocks = (rows + block_rows - 1) / block_rows;
  if (blocks < 2 * at::get_num_threads()) return false;
  const AmxS8Gemm& g = *m.amx;
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    at::Tensor codes = amx_codes(g, block_rows);
    std::vector<float> sx(static_cast<size_t>(block_rows));
    at::Tensor y = at::empty({block_rows, m.out}, x2.options());
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * block_rows, n = std::min(block_rows, rows - r0);
      amx_quantize(g, x2, r0, n, codes.data_ptr<int8_t>(), sx.data());
      if (bf16)
        g.run(codes.data_ptr<int8_t>(), n, sx.data(), reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>()), m.out, 0,
              m.out);
      else
        g.run(codes.data_ptr<int8_t>(), n, sx.data(), y.data_ptr<float>(), m.out, 0, m.out);
      use(r0, y.narrow(0, 0, n));
    }
  });
  return true;
}

at::Tensor Int8Linear::fused_amx(const Int8Linear& next, const at::Tensor& x2) const {
  const Impl& a = *impl_;
  const Impl& b = *next.impl_;
  const bool bf16 = x2.scalar_type() == at::kBFloat16;
  const int64_t rows = x2.size(0), mid = a.out, out = b.out;
  const int threads = at::get_num_threads();
  at::Tensor y = at::empty({rows, out}, x2.scalar_type());
  at::parallel_for(0, rows, (rows + threads - 1) / threads, [&](int64_t begin, int64_t end) {
    const int64_t block = std::min(end - begin, FUSED_BLOCK_ROWS);
    at::Tensor codes_a = amx_codes(*a.amx, block), codes_b = amx_codes(*b.amx, block);
    int8_t* ca = codes_a.data_ptr<int8_t>();
    int8_t* cb = codes_b.data_ptr<int8_t>();
    std::vector<float> sx_a(static_cast<size_t>(block)), sx_b(static_cast<size_t>(block));
    // The intermediate as the two calls hand it over: bf16 bits or fp32.
    // (Its rows 64-byte aligned measured no faster: 12.9-13.2 ms against
    // 12.2-13.2 for bert-base's FFN at batch 32.)
    std::vector<uint16_t> mid16v(bf16 ? static_cast<size_t>(block * mid) : 0);
    std::vector<float> mid32v(bf16 ? 0 : static_cast<size_t>(block * mid));
    uint16_t* mid16 = mid16v.data();
    float* mid32 = mid32v.data();
    for (int64_t r0 = begin; r0 < end; r0 += block) {
      const int64_t n = std::min(block, end - r0);
      amx_quantize(*a.amx, x2, r0, n, ca, sx_a.data());
      if (bf16) {
        a.amx->run(ca, n, sx_a.data(), mid16, mid, 0, mid);
        b.amx->quantize(mid16, n, cb, sx_b.data());
        b.amx->run(cb, n, sx_b.data(), reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>()) + r0 * out, out, 0, out);
      } else {
        a.amx->run(ca, n, sx_a.data(), mid32, mid, 0, mid);
        b.amx->quantize(mid32, n, cb, sx_b.data());
        b.amx->run(cb, n, sx_b.data(), y.data_ptr<float>() + r0 * out, out, 0, out);
      }
    }
  });
  return y;
}

std::string Int8Linear::implementation() const {
  if (impl_ && impl_->amx) return AmxS8Gemm::uses_tiles() ? "amx:embeval s8s8s32" : "avx512_vnni:embeval u8s8s32";
#ifdef EMBEVAL_HAVE_DNNL
  if (impl_ && impl_->use_int8) return "onednn:" + impl_->gemm->kernel() + " s8s8s32";
#endif
  return impl_ ? "fp32-emulated (" + impl_->why + ")" : "none";
}

int64_t Int8Linear::weight_bytes() const { return impl_ ? impl_->in * impl_->out + impl_->out * 4 : 0; }

}  // namespace embeval
