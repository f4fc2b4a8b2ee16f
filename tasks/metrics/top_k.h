#pragma once
// Exact top-k by similarity, the way MTEB's DenseRetrievalExactSearch does it:
// a block of queries against a chunk of the corpus by one matrix product, then
// a partial selection merged into each query's running best, so the
// queries x corpus score matrix never exists whole. Runs on ATen (CPU, or
// CUDA when asked); this header stays free of torch.
//
// Inputs are n x dim float32, row-major. Scores are float32 as torch computes
// them: cosine = rows L2-normalised (torch's F.normalize, eps 1e-12) then a
// dot product, exactly as MTEB's cos_sim; NaN scores become -1 as in MTEB.
//
// Ties are ordered by lower corpus index first, at every rank including the
// k-th: the result is the first k entries of the corpus sorted by (score
// descending, index ascending), whatever the chunk sizes or thread count.
// (The scores themselves can differ in the last bit between backends or block
// shapes, as any GEMM's do.)
#include <cstdint>
#include <vector>

namespace embeval::metrics {

enum TopKScore {
  TOP_K_SCORE_COSINE,
  TOP_K_SCORE_DOT,
};

struct TopKOptions {
  TopKScore score = TOP_K_SCORE_COSINE;
  int64_t corpus_chunk = 50000;  // MTEB's corpus_chunk_size
  int64_t query_chunk = 1024;    // caps one score block at query_chunk x corpus_chunk floats
  bool cuda = false;             // compute on the GPU; throws std::runtime_error when ATen has none
};

// rows x k, row-major, best first; k = min(requested k, corpus rows).
struct TopK {
  int64_t rows = 0, k = 0;
  std::vector<float> scores;
  std::vector<int64_t> index;  // corpus row of each score
};

TopK top_k_similarity(const float* queries, int64_t n_queries, const float* corpus, int64_t n_corpus, int64_t dim,
                      int64_t k, const TopKOptions& options = {});

// The whole n_queries x n_corpus score matrix (row-major), for small problems
// such as one query against its reranking candidates.
std::vector<float> similarity_scores(const float* queries, int64_t n_queries, const float* corpus, int64_t n_corpus,
                                     int64_t dim, TopKScore score);

}  // namespace embeval::metrics
