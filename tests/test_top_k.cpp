// Exact top-k by similarity against an fp64 brute force. Each case declares
// its tolerance: random float data is compared within 1e-5 of fp64 scores
// (float32 GEMM rounding); integer-valued data is exact in float32, so ties
// are real and their order is checked exactly.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "tasks/metrics/top_k.h"

using namespace embeval::metrics;

namespace {

struct Problem {
  int64_t nq, nc, dim;
  std::vector<float> q, c;
};

Problem random_problem(int64_t nq, int64_t nc, int64_t dim, unsigned seed) {
  Problem p{nq, nc, dim, std::vector<float>(nq * dim), std::vector<float>(nc * dim)};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (float& x : p.q) x = normal(rng);
  for (float& x : p.c) x = normal(rng);
  return p;
}

// fp64 scores of every (query, doc) pair.
std::vector<double> brute_force_scores(const Problem& p, TopKScore score) {
  auto norm = [&](const float* v) {
    double s = 0;
    for (int64_t d = 0; d < p.dim; ++d) s += double(v[d]) * v[d];
    return std::max(std::sqrt(s), 1e-12);
  };
  std::vector<double> out(p.nq * p.nc);
  for (int64_t i = 0; i < p.nq; ++i) {
    const float* a = p.q.data() + i * p.dim;
    for (int64_t j = 0; j < p.nc; ++j) {
      const float* b = p.c.data() + j * p.dim;
      double dot = 0;
      for (int64_t d = 0; d < p.dim; ++d) dot += double(a[d]) * b[d];
      out[i * p.nc + j] = score == TOP_K_SCORE_COSINE ? dot / (norm(a) * norm(b)) : dot;
    }
  }
  return out;
}

void check_against_brute_force(const Problem& p, int64_t k, const TopKOptions& opt, double tol) {
  TopK top = top_k_similarity(p.q.data(), p.nq, p.c.data(), p.nc, p.dim, k, opt);
  std::vector<double> exact = brute_force_scores(p, opt.score);
  const int64_t kk = std::min(k, p.nc);
  ASSERT_EQ(top.rows, p.nq);
  ASSERT_EQ(top.k, kk);
  for (int64_t i = 0; i < p.nq; ++i) {
    std::vector<double> row(exact.begin() + i * p.nc, exact.begin() + (i + 1) * p.nc);
    std::vector<double> sorted = row;
    std::sort(sorted.begin(), sorted.end(), std::greater<double>());
    std::vector<int64_t> seen;
    for (int64_t j = 0; j < kk; ++j) {
      int64_t idx = top.index[i * kk + j];
      ASSERT_GE(idx, 0);
      ASSERT_LT(idx, p.nc);
      seen.push_back(idx);
      // The score returned is the score of the document returned ...
      EXPECT_NEAR(top.scores[i * kk + j], row[idx], tol) << "query " << i << " rank " << j;
      // ... and the j-th best score overall (the set is right up to near-ties).
      EXPECT_NEAR(top.scores[i * kk + j], sorted[j], tol) << "query " << i << " rank " << j;
      if (j > 0) {
        EXPECT_GE(top.scores[i * kk + j - 1], top.scores[i * kk + j]);
      }
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end()) << "duplicate document for query " << i;
  }
}

}  // namespace

TEST(TopK, RandomAgainstFp64) {
  Problem p = random_problem(7, 523, 16, 42);
  const double tol = 1e-5;
  for (TopKScore score : {TOP_K_SCORE_COSINE, TOP_K_SCORE_DOT}) {
    for (int64_t k : {1, 10, 100, 523, 600}) {
      for (int64_t chunk : {int64_t(50000), int64_t(100), int64_t(7)}) {
        for (int64_t qchunk : {int64_t(1024), int64_t(3)}) {
          TopKOptions opt;
          opt.score = score;
          opt.corpus_chunk = chunk;
          opt.query_chunk = qchunk;
          SCOPED_TRACE(testing::Message()
                       << "score " << score << " k " << k << " chunk " << chunk << " qchunk " << qchunk);
          check_against_brute_force(p, k, opt, score == TOP_K_SCORE_DOT ? 1e-4 : tol);
        }
      }
    }
  }
}

TEST(TopK, TiesGoToLowerIndexAcrossChunks) {
  // Dot scores are integers (exact in float32): doc i scores i % 3 for the
  // query (1, 0). The best five are the score-2 docs with the lowest indices,
  // whatever the chunking; at::topk alone would pick among ties arbitrarily.
  const int64_t n = 20;
  Problem p{1, n, 2, {1.0f, 0.0f}, std::vector<float>(n * 2)};
  for (int64_t i = 0; i < n; ++i) p.c[i * 2] = float(i % 3), p.c[i * 2 + 1] = 1.0f;
  for (int64_t chunk : {int64_t(50000), int64_t(7), int64_t(4), int64_t(1)}) {
    TopKOptions opt;
    opt.score = TOP_K_SCORE_DOT;
    opt.corpus_chunk = chunk;
    TopK top5 = top_k_similarity(p.q.data(), 1, p.c.data(), n, 2, 5, opt);
    EXPECT_EQ(top5.index, (std::vector<int64_t>{2, 5, 8, 11, 14})) << "chunk " << chunk;
    EXPECT_EQ(top5.scores, (std::vector<float>{2, 2, 2, 2, 2}));
    TopK top8 = top_k_similarity(p.q.data(), 1, p.c.data(), n, 2, 8, opt);
    EXPECT_EQ(top8.index, (std::vector<int64_t>{2, 5, 8, 11, 14, 17, 1, 4})) << "chunk " << chunk;
  }
}

TEST(TopK, ManyQueriesWithTiesInBlocks) {
  // 40 queries (a_i, 1) against docs (j % 5, 1): integer scores with many ties.
  const int64_t nq = 40, nc = 300, k = 37;
  Problem p{nq, nc, 2, std::vector<float>(nq * 2), std::vector<float>(nc * 2)};
  for (int64_t i = 0; i < nq; ++i) p.q[i * 2] = float(i % 4) - 1.0f, p.q[i * 2 + 1] = 1.0f;
  for (int64_t j = 0; j < nc; ++j) p.c[j * 2] = float(j % 5), p.c[j * 2 + 1] = 1.0f;
  TopKOptions reference;
  reference.score = TOP_K_SCORE_DOT;
  TopK want = top_k_similarity(p.q.data(), nq, p.c.data(), nc, 2, k, reference);
  // Expected order by definition: score descending, index ascending.
  for (int64_t i = 0; i < nq; ++i) {
    std::vector<int64_t> order(nc);
    std::iota(order.begin(), order.end(), 0);
    auto score = [&](int64_t j) { return p.q[i * 2] * p.c[j * 2] + p.c[j * 2 + 1]; };
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return score(a) > score(b); });
    for (int64_t j = 0; j < k; ++j) ASSERT_EQ(want.index[i * k + j], order[j]) << "query " << i << " rank " << j;
  }
  for (int64_t chunk : {int64_t(13), int64_t(37), int64_t(64)}) {
    for (int64_t qchunk : {int64_t(1), int64_t(7)}) {
      TopKOptions opt = reference;
      opt.corpus_chunk = chunk;
      opt.query_chunk = qchunk;
      TopK got = top_k_similarity(p.q.data(), nq, p.c.data(), nc, 2, k, opt);
      EXPECT_EQ(got.index, want.index) << "chunk " << chunk << " qchunk " << qchunk;
      EXPECT_EQ(got.scores, want.scores);
    }
  }
}

TEST(TopK, CosineZeroVectorAndNan) {
  // A zero document scores 0 (F.normalize clamps the norm), not NaN.
  std::vector<float> q = {3.0f, 4.0f};
  std::vector<float> c = {0.0f, 0.0f, -3.0f, -4.0f, 6.0f, 8.0f};
  TopK top = top_k_similarity(q.data(), 1, c.data(), 3, 2, 3);
  EXPECT_EQ(top.index, (std::vector<int64_t>{2, 0, 1}));
  EXPECT_NEAR(top.scores[0], 1.0f, 1e-6);
  EXPECT_EQ(top.scores[1], 0.0f);
  EXPECT_NEAR(top.scores[2], -1.0f, 1e-6);
  // NaN scores become -1 as in MTEB's search; their order is then by index.
  std::vector<float> qnan = {std::numeric_limits<float>::quiet_NaN(), 1.0f};
  TopK nan_top = top_k_similarity(qnan.data(), 1, c.data(), 3, 2, 2);
  EXPECT_EQ(nan_top.scores, (std::vector<float>{-1.0f, -1.0f}));
  EXPECT_EQ(nan_top.index, (std::vector<int64_t>{0, 1}));
  // One NaN document among finite ones (at::topk alone would rank it first):
  // it scores -1 and ties with the opposite vector, which has the lower index.
  std::vector<float> mixed = {-3.0f, -4.0f, 1.0f, 0.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f, 0.0f, 1.0f};
  TopKOptions opt;
  opt.score = TOP_K_SCORE_COSINE;
  TopK mixed_top = top_k_similarity(q.data(), 1, mixed.data(), 4, 2, 3, opt);
  EXPECT_EQ(mixed_top.index, (std::vector<int64_t>{3, 1, 0}));  // 0.8, 0.6, then -1 (doc 0) before -1 (doc 2)
  TopK mixed_all = top_k_similarity(q.data(), 1, mixed.data(), 4, 2, 4, opt);
  EXPECT_EQ(mixed_all.index, (std::vector<int64_t>{3, 1, 0, 2}));
  EXPECT_EQ(mixed_all.scores[3], -1.0f);
}

TEST(TopK, EdgeSizes) {
  Problem p = random_problem(3, 5, 4, 7);
  EXPECT_EQ(top_k_similarity(p.q.data(), 3, p.c.data(), 5, 4, 0).k, 0);
  TopK all = top_k_similarity(p.q.data(), 3, p.c.data(), 5, 4, 99);  // k larger than the corpus
  EXPECT_EQ(all.k, 5);
  EXPECT_EQ(all.index.size(), 15u);
  TopK no_queries = top_k_similarity(p.q.data(), 0, p.c.data(), 5, 4, 3);
  EXPECT_EQ(no_queries.rows, 0);
  EXPECT_TRUE(no_queries.scores.empty());
  TopK no_corpus = top_k_similarity(p.q.data(), 3, p.c.data(), 0, 4, 3);
  EXPECT_EQ(no_corpus.k, 0);
  TopKOptions bad;
  bad.corpus_chunk = 0;
  EXPECT_THROW(top_k_similarity(p.q.data(), 3, p.c.data(), 5, 4, 3, bad), std::invalid_argument);
}

TEST(TopK, SimilarityScores) {
  // (3, 4) against (1, 0) and (0, 2): cosine 0.6 and 0.8, dot 3 and 8.
  std::vector<float> q = {3.0f, 4.0f}, c = {1.0f, 0.0f, 0.0f, 2.0f};
  std::vector<float> cos = similarity_scores(q.data(), 1, c.data(), 2, 2, TOP_K_SCORE_COSINE);
  EXPECT_NEAR(cos[0], 0.6f, 1e-7);
  EXPECT_NEAR(cos[1], 0.8f, 1e-7);
  EXPECT_EQ(similarity_scores(q.data(), 1, c.data(), 2, 2, TOP_K_SCORE_DOT), (std::vector<float>{3.0f, 8.0f}));
}

// On a machine with a CUDA libtorch the same kernel runs on the GPU; its
// answer must agree with the CPU's within float32 GEMM rounding (TF32 is off
// by default for fp32 matmul in libtorch). Skipped where ATen has no CUDA.
TEST(TopKCuda, MatchesCpuAndFp64) {
  TopKOptions cuda;
  cuda.cuda = true;
  Problem small = random_problem(3, 10, 8, 7);
  try {
    top_k_similarity(small.q.data(), 3, small.c.data(), 10, 8, 2, cuda);
  } catch (const std::runtime_error& e) {
    GTEST_SKIP() << e.what();
  }
  for (TopKScore score : {TOP_K_SCORE_COSINE, TOP_K_SCORE_DOT}) {
    Problem p = random_problem(300, 20000, 96, 11);
    cuda.score = score;
    cuda.corpus_chunk = 7000;  // several chunks merged on the host
    check_against_brute_force(p, 100, cuda, score == TOP_K_SCORE_COSINE ? 1e-5 : 1e-4);
    TopKOptions cpu = cuda;
    cpu.cuda = false;
    TopK a = top_k_similarity(p.q.data(), p.nq, p.c.data(), p.nc, p.dim, 10, cpu);
    TopK b = top_k_similarity(p.q.data(), p.nq, p.c.data(), p.nc, p.dim, 10, cuda);
    size_t same = 0;
    for (size_t i = 0; i < a.index.size(); ++i) same += a.index[i] == b.index[i];
    EXPECT_GE(same, a.index.size() * 99 / 100);  // only near-ties may swap
  }
}
