#include "tasks/metrics/top_k.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace embeval::metrics {
namespace {

// torch.nn.functional.normalize(x, p=2, dim=1) op for op, so the scores are
// the bits MTEB's cos_sim produces.
at::Tensor prepare(const at::Tensor& x, TopKScore score) {
  if (score == TOP_K_SCORE_DOT) return x;
  return x / x.norm(2, {1}, true).clamp_min(1e-12).expand_as(x);
}

at::Tensor wrap(const float* p, int64_t rows, int64_t dim) {
  return at::from_blob(const_cast<float*>(p), {rows, dim}, at::TensorOptions().dtype(at::kFloat));
}

struct Candidate {
  float score;
  int64_t index;
};

bool better(const Candidate& a, const Candidate& b) {
  return a.score > b.score || (a.score == b.score && a.index < b.index);
}

// Exact selection for one row: NaN counts as -1 (MTEB's search), then every
// column above the kk-th best value plus the lowest columns equal to it.
void select_row_exact(const at::Tensor& row_in, int64_t kk, Candidate* out) {
  const double inf = std::numeric_limits<double>::infinity();
  at::Tensor row = row_in.nan_to_num(-1.0, inf, -inf);
  at::Tensor cut = std::get<0>(at::topk(row, kk)).min();
  at::Tensor above = at::nonzero(row > cut).flatten();
  at::Tensor equal = at::nonzero(row == cut).flatten();  // ascending column order
  at::Tensor pick = at::cat({above, equal.narrow(0, 0, kk - above.size(0))}).cpu();
  at::Tensor vals = row.index_select(0, pick.to(row.device())).cpu().contiguous();
  for (int64_t j = 0; j < kk; ++j) out[j] = {vals.data_ptr<float>()[j], pick.data_ptr<int64_t>()[j]};
}

// The kk best columns (score descending, column ascending) of each row of s,
// in any order, into out (rows x kk). at::topk keeps an arbitrary subset of
// the values equal to its last one, so, like MTEB, one more than needed is
// taken: when the (kk+1)-th value is strictly below the kk-th, the first kk
// are exactly the columns scoring at least the kk-th value. Rows where they
// tie, or that hold a NaN (at::topk ranks NaN first), are redone exactly;
// both are rare.
void select_block(const at::Tensor& s, int64_t kk, Candidate* out) {
  const int64_t b = s.size(0), m = s.size(1);
  if (kk == m) {  // the whole chunk survives: no selection needed
    at::Tensor all = s.cpu().contiguous();
    const float* v = all.data_ptr<float>();
    for (int64_t i = 0; i < b * m; ++i) out[i] = {std::isnan(v[i]) ? -1.0f : v[i], i % m};
    return;
  }
  auto top = at::topk(s, kk + 1, /*dim=*/1, /*largest=*/true, /*sorted=*/false);
  at::Tensor values = std::get<0>(top).cpu().contiguous(), columns = std::get<1>(top).cpu().contiguous();
  const float* v = values.data_ptr<float>();
  const int64_t* col = columns.data_ptr<int64_t>();
  std::vector<int64_t> redo;
  for (int64_t r = 0; r < b; ++r) {
    const float* rv = v + r * (kk + 1);
    // Position of the smallest value and the second smallest value.
    int64_t lowest = 0;
    bool nan = std::isnan(rv[0]);
    for (int64_t j = 1; j <= kk; ++j) {
      nan = nan || std::isnan(rv[j]);
      if (rv[j] < rv[lowest]) lowest = j;
    }
    float second = std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j <= kk; ++j)
      if (j != lowest) second = std::min(second, rv[j]);
    if (nan || !(rv[lowest] < second)) {
      redo.push_back(r);
      continue;
    }
    Candidate* o = out + r * kk;
    for (int64_t j = 0; j <= kk; ++j)
      if (j != lowest) *o++ = {rv[j], col[r * (kk + 1) + j]};
  }
  for (int64_t r : redo) select_row_exact(s[r], kk, out + r * kk);
}

}  // namespace

TopK top_k_similarity(const float* queries, int64_t n_queries, const float* corpus, int64_t n_corpus, int64_t dim,
                      int64_t k, const TopKOptions& options) {
  if (n_queries < 0 || n_corpus < 0 || dim < 0) throw std::invalid_argument("top_k_similarity: negative size");
  if (options.corpus_chunk <= 0 || options.query_chunk <= 0)
    throw std::invalid_argument("top_k_similarity: chunk sizes must be positive");
  TopK out;
  out.rows = n_queries;
  out.k = std::max<int64_t>(0, std::min(k, n_corpus));
  out.scores.assign(static_cast<size_t>(out.rows * out.k), 0.0f);
  out.index.assign(static_cast<size_t>(out.rows * out.k), 0);
  if (out.rows == 0 || out.k == 0) return out;

  at::Device device(at::kCPU);
  if (options.cuda) {
    if (!at::hasCUDA()) throw std::runtime_error("top_k_similarity: CUDA requested but ATen has no CUDA device");
    device = at::Device(at::kCUDA);
  }
  const int64_t k_out = out.k;
  at::Tensor q = prepare(wrap(queries, n_queries, dim).to(device), options.score);
  at::Tensor corpus_all = wrap(corpus, n_corpus, dim);

  // Each query's best so far, best first; filled[r] entries are valid.
  std::vector<Candidate> best(static_cast<size_t>(out.rows * k_out));
  std::vector<int64_t> filled(static_cast<size_t>(out.rows), 0);

  // One score buffer for every block: a fresh block per product would be
  // paged in again each time.
  const int64_t max_b = std::min(options.query_chunk, n_queries), max_m = std::min(options.corpus_chunk, n_corpus);
  at::Tensor buffer = at::empty({max_b * max_m}, q.options());
  std::vector<Candidate> block(static_cast<size_t>(max_b * std::min(k_out, max_m)));

  for (int64_t c0 = 0; c0 < n_corpus; c0 += options.corpus_chunk) {
    const int64_t m = std::min(options.corpus_chunk, n_corpus - c0);
    const int64_t kk = std::min(k_out, m);
    // Normalise one chunk at a time: a normalised copy of the whole corpus
    // would double its memory.
    at::Tensor c = prepare(corpus_all.narrow(0, c0, m).to(device), options.score);
    for (int64_t q0 = 0; q0 < n_queries; q0 += options.query_chunk) {
      const int64_t b = std::min(options.query_chunk, n_queries - q0);
      at::Tensor s = buffer.narrow(0, 0, b * m).view({b, m});
      at::mm_out(s, q.narrow(0, q0, b), c.t());
      select_block(s, kk, block.data());

      at::parallel_for(0, b, 16, [&](int64_t begin, int64_t end) {
        std::vector<Candidate> merged;
        for (int64_t i = begin; i < end; ++i) {
          const int64_t r = q0 + i;
          Candidate* row_best = best.data() + r * k_out;
          merged.assign(row_best, row_best + filled[r]);
          for (int64_t j = 0; j < kk; ++j) merged.push_back({block[i * kk + j].score, c0 + block[i * kk + j].index});
          const int64_t keep = std::min<int64_t>(k_out, static_cast<int64_t>(merged.size()));
          std::partial_sort(merged.begin(), merged.begin() + keep, merged.end(), better);
          std::copy(merged.begin(), merged.begin() + keep, row_best);
          filled[r] = keep;
        }
      });
    }
  }
  for (size_t i = 0; i < best.size(); ++i) {
    out.scores[i] = best[i].score;
    out.index[i] = best[i].index;
  }
  return out;
}

std::vector<float> similarity_scores(const float* queries, int64_t n_queries, const float* corpus, int64_t n_corpus,
                                     int64_t dim, TopKScore score) {
  std::vector<float> out(static_cast<size_t>(n_queries * n_corpus), 0.0f);
  if (n_queries == 0 || n_corpus == 0) return out;
  at::Tensor s = at::mm(prepare(wrap(queries, n_queries, dim), score), prepare(wrap(corpus, n_corpus, dim), score).t());
  s = s.contiguous();
  std::memcpy(out.data(), s.data_ptr<float>(), out.size() * sizeof(float));
  return out;
}

}  // namespace embeval::metrics
