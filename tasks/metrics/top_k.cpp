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

// The kk best (score descending, index ascending) columns of each row of s.
// at::topk is a partial selection, but among values equal to the kk-th
// largest it keeps an arbitrary subset; rows where such ties cross the cut
// are redone exactly (rare: it needs equal scores at the boundary).
void select_block(const at::Tensor& s, int64_t kk, at::Tensor* values, at::Tensor* columns) {
  const int64_t m = s.size(1);
  if (kk == m) {  // the whole chunk survives: no selection needed
    *values = s.cpu().contiguous();
    *columns = at::arange(m, at::kLong).unsqueeze(0).expand({s.size(0), m}).contiguous();
    return;
  }
  auto top = at::topk(s, kk, /*dim=*/1, /*largest=*/true, /*sorted=*/false);
  at::Tensor v = std::get<0>(top), c = std::get<1>(top);
  at::Tensor kth = std::get<0>(v.min(1, /*keepdim=*/true));
  at::Tensor tied_rows = at::nonzero((s >= kth).sum(1) > kk).flatten().cpu();
  *values = v.cpu().contiguous();
  *columns = c.cpu().contiguous();
  const int64_t* tied = tied_rows.data_ptr<int64_t>();
  for (int64_t t = 0; t < tied_rows.numel(); ++t) {
    const int64_t r = tied[t];
    at::Tensor row = s[r], cut = kth[r][0];
    at::Tensor above = at::nonzero(row > cut).flatten();
    at::Tensor equal = at::nonzero(row == cut).flatten();  // ascending column order
    at::Tensor pick = at::cat({above, equal.narrow(0, 0, kk - above.size(0))});
    values->select(0, r).copy_(row.index_select(0, pick).cpu());
    columns->select(0, r).copy_(pick.cpu());
  }
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

  for (int64_t c0 = 0; c0 < n_corpus; c0 += options.corpus_chunk) {
    const int64_t m = std::min(options.corpus_chunk, n_corpus - c0);
    const int64_t kk = std::min(k_out, m);
    // Normalise one chunk at a time: a normalised copy of the whole corpus
    // would double its memory.
    at::Tensor c = prepare(corpus_all.narrow(0, c0, m).to(device), options.score);
    for (int64_t q0 = 0; q0 < n_queries; q0 += options.query_chunk) {
      const int64_t b = std::min(options.query_chunk, n_queries - q0);
      at::Tensor s = at::mm(q.narrow(0, q0, b), c.t());
      s.nan_to_num_(-1.0, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity());
      at::Tensor values, columns;
      select_block(s, kk, &values, &columns);
      const float* v = values.data_ptr<float>();
      const int64_t* col = columns.data_ptr<int64_t>();

      at::parallel_for(0, b, 16, [&](int64_t begin, int64_t end) {
        std::vector<Candidate> merged;
        for (int64_t i = begin; i < end; ++i) {
          const int64_t r = q0 + i;
          Candidate* row_best = best.data() + r * k_out;
          merged.assign(row_best, row_best + filled[r]);
          for (int64_t j = 0; j < kk; ++j) merged.push_back({v[i * kk + j], c0 + col[i * kk + j]});
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
