#ifdef EMBEVAL_HAVE_DNNL
#include "runners/kernels/onednn_util.h"

#include <optional>

#include "harness/error.h"

namespace embeval::onednn {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

namespace {
// Rows of the probe that asks which kernel a fixed M gets: a batch of a few
// hundred tokens, the encoder's usual case.
constexpr dnnl::memory::dim PROBE_ROWS = 512;
// Distinct row counts kept: a run sorted by length meets one per batch shape.
constexpr size_t MAX_CACHED_ROWS = 512;

// Only the AMX brgemm kernels beat the runtime-M gemm:jit ones: on AVX-512
// without AMX, fp32 brgemm ran at 356 GFLOP/s against gemm:jit's 373 (2
// threads, 4096 x 1024 x 1024), so fp32 keeps one runtime-M primitive.
}  // namespace

std::vector<std::pair<int64_t, int64_t>> input_slices(int64_t n) {
  const int64_t count = (n + SLICE_WIDTH - 1) / SLICE_WIDTH;
  std::vector<std::pair<int64_t, int64_t>> out;
  int64_t start = 0;
  for (int64_t i = 1; i <= count; ++i) {
    const int64_t end = i == count ? n : n * i / count / 64 * 64;
    out.emplace_back(start, end - start);
    start = end;
  }
  return out;
}

RowsMatmul::RowsMatmul(MakePd make, const dnnl::memory::desc& weights_any) : make_(std::move(make)) {
  // A product whose post-ops read a [rows, n] operand has no runtime-M form
  // (oneDNN 2.6 refuses one): then the fixed-M form only.
  std::optional<dnnl::matmul::primitive_desc> runtime_pd;
  try {
    runtime_pd = make_(DNNL_RUNTIME_DIM_VAL, weights_any);
  } catch (const dnnl::error&) {
    const dnnl::matmul::primitive_desc fixed_pd = make_(PROBE_ROWS, weights_any);
    per_rows_ = true;
    weights_ = fixed_pd.weights_desc();
    kernel_ = fixed_pd.impl_info_str();
    by_rows_.emplace(PROBE_ROWS, made_from(fixed_pd));
    return;
  }
  std::string runtime_kernel = runtime_pd->impl_info_str();
  if (!is_amx_kernel(runtime_kernel)) {
    try {
      const dnnl::matmul::primitive_desc fixed_pd = make_(PROBE_ROWS, weights_any);
      const std::string fixed_kernel = fixed_pd.impl_info_str();
      if (is_amx_kernel(fixed_kernel)) {
        per_rows_ = true;
        weights_ = fixed_pd.weights_desc();
        kernel_ = fixed_kernel;
        by_rows_.emplace(PROBE_ROWS, made_from(fixed_pd));
        return;
      }
    } catch (const dnnl::error&) {
      // no fixed-M kernel: the runtime-M one below
    }
  }
  weights_ = runtime_pd->weights_desc();
  kernel_ = std::move(runtime_kernel);
  runtime_ = made_from(*runtime_pd);
}

RowsMatmul::Made RowsMatmul::made_from(const dnnl::matmul::primitive_desc& pd) {
  return {dnnl::matmul(pd), static_cast<int64_t>(pd.scratchpad_desc().get_size())};
}

dnnl::matmul RowsMatmul::get(dnnl::memory::dim rows, int64_t* scratchpad_bytes) const {
  auto give = [scratchpad_bytes](const Made& m) {
    if (scratchpad_bytes) *scratchpad_bytes = m.scratchpad_bytes;
    return m.matmul;
  };
  if (!per_rows_) return give(runtime_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_rows_.find(rows);
    if (it != by_rows_.end()) return give(it->second);
  }
  // Given the packed layout, oneDNN picks a kernel that reads it (brgemm for
  // every M tried; its reference kernel otherwise, slow but exact).
  Made made;
  try {
    made = made_from(make_(rows, weights_));
  } catch (const dnnl::error& e) {
    fail("oneDNN: no kernel for a product of {} rows with the packed weights ({})", rows, e.what());
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (by_rows_.size() >= MAX_CACHED_ROWS) by_rows_.clear();
  by_rows_.emplace(rows, made);
  return give(made);
}

}  // namespace embeval::onednn
#endif
