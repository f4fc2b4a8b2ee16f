// Per-query retrieval measures (trec_eval semantics), MTEB's rounding and
// averaging, and the nAUC abstention metric. Expected values are worked out
// by hand in the comments, or computed with numpy 1.24 / sklearn 1.2 running
// MTEB 1.39.7's own nAUC code (said where so). Tolerance 1e-12 unless stated.
#include <cmath>
#include <string>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

#include "tasks/metrics/nauc.h"
#include "tasks/metrics/numpy_sum.h"
#include "tasks/metrics/retrieval_metrics.h"

using namespace embeval::metrics;

namespace {

constexpr double TOL = 1e-12;

std::vector<std::string> ids(const std::vector<ScoredDoc>& run) {
  std::vector<std::string> out;
  for (const auto& d : run) out.push_back(d.id);
  return out;
}

// Graded judgements (d1 = 2, d2 and d9 = 1), a retrieved document judged 0
// (d3), unjudged ones (d4, d5) and a tie at 0.8 that trec_eval breaks by id
// descending (d4 before d1). d9 is relevant but not retrieved.
struct GradedCase {
  std::unordered_map<std::string, int> qrels = {{"d1", 2}, {"d2", 1}, {"d3", 0}, {"d9", 1}};
  JudgedRun judged;
  GradedCase() {
    std::vector<ScoredDoc> run = {{"d1", 0.8}, {"d2", 0.5}, {"d3", 0.9}, {"d4", 0.8}, {"d5", 0.1}};
    trec_eval_sort(run);
    judged = judge_run(run, qrels);
  }
};

}  // namespace

TEST(RetrievalMetrics, TrecEvalOrder) {
  // Score descending, ties by id descending in byte order ('B' < 'a').
  std::vector<ScoredDoc> run = {{"b", 0.5}, {"a", 0.5}, {"x", 0.7}, {"c", 0.5}, {"B", 0.5}, {"y", 0.1}};
  trec_eval_sort(run);
  EXPECT_EQ(ids(run), (std::vector<std::string>{"x", "c", "b", "a", "B", "y"}));
}

TEST(RetrievalMetrics, JudgedRun) {
  GradedCase c;
  // Ranked: d3 (0), d4 (unjudged), d1 (2), d2 (1), d5 (unjudged).
  EXPECT_EQ(c.judged.rel, (std::vector<int>{0, 0, 2, 1, 0}));
  EXPECT_EQ(c.judged.ideal, (std::vector<int>{2, 1, 1}));
}

TEST(RetrievalMetrics, NdcgGradedAndTies) {
  GradedCase c;
  const double idcg3 = 2.0 / std::log2(2.0) + 1.0 / std::log2(3.0) + 1.0 / std::log2(4.0);
  EXPECT_NEAR(ndcg_cut(c.judged, 1), 0.0, TOL);
  EXPECT_NEAR(ndcg_cut(c.judged, 2), 0.0, TOL);
  // d1 (gain 2) at rank 3: 2 / log2(4) = 1.
  EXPECT_NEAR(ndcg_cut(c.judged, 3), 1.0 / idcg3, TOL);
  // + d2 (gain 1) at rank 4; the ideal keeps all three positives.
  EXPECT_NEAR(ndcg_cut(c.judged, 5), (1.0 + 1.0 / std::log2(5.0)) / idcg3, TOL);
  EXPECT_NEAR(ndcg_cut(c.judged, 1000), (1.0 + 1.0 / std::log2(5.0)) / idcg3, TOL);  // k beyond the run
  EXPECT_NEAR(ndcg_cut(c.judged, 3), 0.31939394323979897, TOL);                      // same, evaluated in Python
}

TEST(RetrievalMetrics, MapRecallPrecisionMrr) {
  GradedCase c;
  // Relevant at ranks 3 and 4, 3 relevant in all.
  EXPECT_NEAR(map_cut(c.judged, 1), 0.0, TOL);
  EXPECT_NEAR(map_cut(c.judged, 3), (1.0 / 3.0) / 3.0, TOL);
  EXPECT_NEAR(map_cut(c.judged, 5), (1.0 / 3.0 + 2.0 / 4.0) / 3.0, TOL);
  EXPECT_NEAR(map_cut(c.judged, 100), (1.0 / 3.0 + 2.0 / 4.0) / 3.0, TOL);
  EXPECT_NEAR(recall_at(c.judged, 3), 1.0 / 3.0, TOL);
  EXPECT_NEAR(recall_at(c.judged, 5), 2.0 / 3.0, TOL);
  EXPECT_NEAR(recall_at(c.judged, 1000), 2.0 / 3.0, TOL);
  EXPECT_NEAR(precision_at(c.judged, 1), 0.0, TOL);
  EXPECT_NEAR(precision_at(c.judged, 3), 1.0 / 3.0, TOL);
  EXPECT_NEAR(precision_at(c.judged, 5), 2.0 / 5.0, TOL);
  EXPECT_NEAR(precision_at(c.judged, 10), 2.0 / 10.0, TOL);  // k beyond the run still divides by k
  EXPECT_NEAR(mrr_at(c.judged, 1), 0.0, TOL);
  EXPECT_NEAR(mrr_at(c.judged, 3), 1.0 / 3.0, TOL);
  EXPECT_NEAR(mrr_at(c.judged, 1000), 1.0 / 3.0, TOL);
}

TEST(RetrievalMetrics, QueryWithoutPositives) {
  // Only a 0 judgement (and a negative one): every measure is 0.
  std::unordered_map<std::string, int> qrels = {{"d1", 0}, {"d2", -1}};
  std::vector<ScoredDoc> run = {{"d1", 0.9}, {"d2", 0.5}, {"d3", 0.1}};
  trec_eval_sort(run);
  JudgedRun r = judge_run(run, qrels);
  for (int64_t k : {1, 3, 10}) {
    EXPECT_EQ(ndcg_cut(r, k), 0.0);
    EXPECT_EQ(map_cut(r, k), 0.0);
    EXPECT_EQ(recall_at(r, k), 0.0);
    EXPECT_EQ(precision_at(r, k), 0.0);
    EXPECT_EQ(mrr_at(r, k), 0.0);
  }
}

TEST(RetrievalMetrics, EmptyRun) {
  std::unordered_map<std::string, int> qrels = {{"d1", 1}};
  JudgedRun r = judge_run({}, qrels);
  EXPECT_EQ(ndcg_cut(r, 10), 0.0);
  EXPECT_EQ(map_cut(r, 10), 0.0);
  EXPECT_EQ(recall_at(r, 10), 0.0);
  EXPECT_EQ(precision_at(r, 10), 0.0);
  EXPECT_EQ(mrr_at(r, 10), 0.0);
}

TEST(RetrievalMetrics, SingleRelevantAtTop) {
  std::unordered_map<std::string, int> qrels = {{"a", 1}};
  JudgedRun r = judge_run({{"a", 0.3}}, qrels);
  EXPECT_EQ(ndcg_cut(r, 1), 1.0);
  EXPECT_EQ(map_cut(r, 1), 1.0);
  EXPECT_EQ(recall_at(r, 1), 1.0);
  EXPECT_EQ(precision_at(r, 1), 1.0);
  EXPECT_EQ(precision_at(r, 3), 1.0 / 3.0);
  EXPECT_EQ(mrr_at(r, 1), 1.0);
}

TEST(RetrievalMetrics, PythonRoundAndMean) {
  // Values from CPython 3.11: round() works on the exact binary value.
  EXPECT_EQ(python_round(2.675, 2), 2.67);  // 2.67499999...
  EXPECT_EQ(python_round(0.125, 2), 0.12);  // exact tie, to even
  EXPECT_EQ(python_round(0.135, 2), 0.14);  // 0.13500000000000000888
  EXPECT_EQ(python_round(1.0 / 3.0, 5), 0.33333);
  EXPECT_EQ(python_round(0.123455, 5), 0.12345);
  EXPECT_EQ(python_round(0.1234550000001, 5), 0.12346);
  EXPECT_EQ(python_round(0.7350000000000001, 5), 0.735);
  // sum([0.1, 0.2, 0.3]) / 3 left to right in Python.
  EXPECT_EQ(python_mean({0.1, 0.2, 0.3}), 0.20000000000000004);
  EXPECT_TRUE(std::isnan(python_mean({})));
}

TEST(Nauc, NumpySumIsPairwise) {
  // np.sum([1e16] + [1.0] * 9) = 1.0000000000000008e+16; a left-to-right sum gives 1e16.
  std::vector<double> a(10, 1.0);
  a[0] = 1e16;
  EXPECT_EQ(numpy_sum(a.data(), a.size()), 1.0000000000000008e+16);
  // np.sum / np.mean of [0.1 * i for i in range(200)] (the 128+ split path): 1990.0, 9.95;
  // Python's sum() gives 1990.0000000000002.
  std::vector<double> b;
  for (int i = 0; i < 200; ++i) b.push_back(0.1 * i);
  EXPECT_EQ(numpy_sum(b.data(), b.size()), 1990.0);
  EXPECT_EQ(numpy_mean(b.data(), b.size()), 9.95);
  EXPECT_TRUE(std::isnan(numpy_mean(nullptr, 0)));
}

TEST(Nauc, ConfidenceScores) {
  // np.std([0.5, 0.2, 0.9, 0.1]) = 0.3112474899497183.
  std::vector<double> s = {0.5, 0.2, 0.9, 0.1};
  Confidence c = confidence_scores(s.data(), s.size());
  EXPECT_EQ(c.max, 0.9);
  EXPECT_NEAR(c.diff1, 0.4, TOL);
  EXPECT_EQ(c.std, 0.3112474899497183);
  double one = 0.7;
  Confidence single = confidence_scores(&one, 1);
  EXPECT_EQ(single.max, 0.7);
  EXPECT_EQ(single.std, 0.0);
  EXPECT_EQ(single.diff1, 0.0);
  Confidence none = confidence_scores(nullptr, 0);
  EXPECT_EQ(none.max, 0.0);
}

TEST(Nauc, AgainstMtebCode) {
  // Values from MTEB 1.39.7's nAUC() run with numpy 1.24 / sklearn 1.2
  // (argsort kind="stable", as MTEB requests on numpy >= 2).
  std::vector<double> metric = {0.0, 1.0, 0.5, 1.0, 0.0};
  EXPECT_NEAR(nauc({0.3, 0.9, 0.5, 0.7, 0.1}, metric), 1.0, TOL);  // confidence orders like the oracle
  EXPECT_NEAR(nauc({0.9, 0.1, 0.5, 0.7, 0.3}, metric), -0.4782608695652176, TOL);
  // Ties in confidence: the stable order decides.
  std::vector<double> conf3 = {0.5, 0.5, 0.5, 0.2, 0.2, 0.9, 0.9, 0.1, 0.1, 0.5, 0.3, 0.3};
  std::vector<double> met3 = {1, 0, 0.5, 0, 1, 1, 0, 0, 0.25, 1, 0, 1.0};
  EXPECT_NEAR(nauc(conf3, met3), 0.1386816936171757, TOL);
}

TEST(Nauc, DegenerateMetricsFollowNumpyRounding) {
  // A metric constant over the queries: the oracle curve is flat unless
  // numpy's rounding says otherwise. MTEB gives NaN for 0.5 x 5 and 0.001 x 50
  // but exactly 1.0 for 0.01 x 50 (nauc_precision_at_100 in the CMRC reference).
  EXPECT_TRUE(std::isnan(nauc({0.3, 0.9, 0.5, 0.7, 0.1}, std::vector<double>(5, 0.5))));
  std::vector<double> conf;
  for (int i = 0; i < 50; ++i) conf.push_back(std::fmod(i * 0.6180339887, 1.0));
  EXPECT_EQ(nauc(conf, std::vector<double>(50, 0.01)), 1.0);
  EXPECT_TRUE(std::isnan(nauc(conf, std::vector<double>(50, 0.001))));
  EXPECT_TRUE(std::isnan(nauc(conf, std::vector<double>(50, 1.0))));
  EXPECT_TRUE(std::isnan(nauc({}, {})));
  EXPECT_TRUE(std::isnan(nauc({0.2}, {1.0})));  // one query: nothing to abstain on
}
