// The Reranking and Retrieval plugins on tiny hand-made tasks whose scores
// can be worked out by hand: dropped queries, ties, graded runs,
// ignore_identical_ids, a query without positives, dot similarity. Tolerance
// 1e-12 unless stated.
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "datasets/task_spec.h"
#include "harness/error.h"
#include "harness/task_type.h"
#include "tests/test_util.h"

using namespace embeval;

namespace {

constexpr double TOL = 1e-12;

// Vectors by text, with a chosen similarity.
class MapEncoder : public Encoder {
 public:
  MapEncoder(std::map<std::string, std::vector<float>> vectors, Similarity similarity) : vectors_(std::move(vectors)) {
    info_.spec = "map";
    info_.name = "map";
    info_.dim = static_cast<int64_t>(vectors_.begin()->second.size());
    info_.similarity = similarity;
  }
  Matrix encode(const std::vector<std::string>& texts, const EncodeOptions&) override {
    Matrix m(static_cast<int64_t>(texts.size()), info_.dim);
    for (size_t i = 0; i < texts.size(); ++i) {
      const auto& v = vectors_.at(texts[i]);
      std::copy(v.begin(), v.end(), m.row(static_cast<int64_t>(i)));
    }
    return m;
  }
  const EncoderInfo& info() const override { return info_; }

 private:
  std::map<std::string, std::vector<float>> vectors_;
  EncoderInfo info_;
};

nlohmann::ordered_json run_task(const std::filesystem::path& dir, MapEncoder& encoder) {
  data::TaskSpec spec = data::read_task_spec(dir);
  EvalContext ctx(encoder, spec);
  return find_task_type(spec.type).evaluate(spec, ctx);
}

std::filesystem::path reranking_task(const std::string& name, const std::string& rows) {
  auto dir = test::scratch_dir(name);
  test::write_file(dir / "task.json",
                   R"({"name": ")" + name + R"(", "type": "Reranking", "language": "zh", "main_score": "map"})");
  test::write_file(dir / "test.jsonl", rows);
  return dir;
}

std::filesystem::path retrieval_task(const std::string& name, bool ignore_identical_ids) {
  auto dir = test::scratch_dir(name);
  test::write_file(dir / "task.json", R"({"name": ")" + name +
                                          R"(", "type": "Retrieval", "language": "zh", "main_score": "ndcg_at_10", )"
                                          R"("ignore_identical_ids": )" +
                                          (ignore_identical_ids ? "true" : "false") + "}");
  test::write_file(dir / "corpus.jsonl",
                   "{\"_id\": \"q1\", \"text\": \"alpha doc\"}\n"
                   "{\"_id\": \"d1\", \"text\": \"one\"}\n"
                   "{\"_id\": \"d2\", \"title\": \"two\", \"text\": \"2\"}\n"
                   "{\"_id\": \"d3\", \"text\": \"three\"}\n");
  test::write_file(dir / "queries.jsonl",
                   "{\"_id\": \"q1\", \"text\": \"alpha\"}\n"
                   "{\"_id\": \"q2\", \"text\": \"beta\"}\n"
                   "{\"_id\": \"q3\", \"text\": \"not judged\"}\n");
  // q2 has only a 0 judgement: it has no positive and counts as 0 everywhere.
  test::write_file(dir / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td1\t0\n");
  return dir;
}

std::map<std::string, std::vector<float>> retrieval_vectors(float d2_scale) {
  return {{"alpha", {1, 0}},     {"beta", {0, 1}},      {"not judged", {1, 1}},
          {"alpha doc", {1, 0}}, {"one", {0.8f, 0.6f}}, {"two 2", {0.6f * d2_scale, 0.8f * d2_scale}},
          {"three", {0, 1}}};
}

}  // namespace

TEST(Reranking, HandComputed) {
  // q (1,0): p1 0.6, n1 1.0, n2 0 -> positive at rank 2: AP 1/2, MRR 1/2.
  // r (0,1): p2 1.0, p3 0, n3 0.8 -> positives at ranks 1 and 3: AP (1 + 2/3)/2, MRR 1.
  // s has no negative: dropped, as MTEB does.
  // t (1,0): p5 and n4 are the same vector, a tie: AP 1/2 (sklearn: one step),
  //   MRR 1 (ties keep the positive first).
  auto dir = reranking_task("rerank_hand", R"({"query": "q", "positive": ["p1"], "negative": ["n1", "n2"]})"
                                           "\n"
                                           R"({"query": "r", "positive": ["p2", "p3"], "negative": ["n3"]})"
                                           "\n"
                                           R"({"query": "s", "positive": ["p1"], "negative": []})"
                                           "\n"
                                           R"({"query": "t", "positive": ["p5"], "negative": ["n4"]})"
                                           "\n");
  MapEncoder enc({{"q", {1, 0}},
                  {"r", {0, 1}},
                  {"s", {1, 1}},
                  {"t", {1, 0}},
                  {"p1", {0.6f, 0.8f}},
                  {"n1", {1, 0}},
                  {"n2", {0, 1}},
                  {"p2", {0, 1}},
                  {"p3", {1, 0}},
                  {"n3", {0.6f, 0.8f}},
                  {"p5", {1, 1}},
                  {"n4", {1, 1}}},
                 SIMILARITY_COSINE);
  nlohmann::ordered_json got = run_task(dir, enc);
  EXPECT_NEAR(got["map"].get<double>(), (0.5 + 5.0 / 6.0 + 0.5) / 3.0, TOL);
  EXPECT_NEAR(got["mrr"].get<double>(), (0.5 + 1.0 + 1.0) / 3.0, TOL);
  EXPECT_NEAR(got["recall_at_10"].get<double>(), 1.0, TOL);
  // nAUC values from MTEB 1.39.7's code on the same float32 scores (numpy 1.24).
  EXPECT_NEAR(got["nAUC_map_max"].get<double>(), 1.0, TOL);
  EXPECT_NEAR(got["nAUC_map_diff1"].get<double>(), -0.28571428571428586, TOL);
  EXPECT_NEAR(got["nAUC_mrr_std"].get<double>(), 0.40000000000000036, TOL);
  EXPECT_NEAR(got["nAUC_mrr_diff1"].get<double>(), -1.3999999999999986, TOL);
  // recall_at_10 is 1 everywhere: the oracle curve is flat, MTEB writes null.
  EXPECT_TRUE(got["nAUC_recall_at_10_max"].is_null());

  data::TaskSpec spec = data::read_task_spec(dir);
  EXPECT_EQ(find_task_type("Reranking").describe(spec), "3 queries, 8 candidates");
}

TEST(Reranking, NothingScorableIsAUserError) {
  auto dir = reranking_task("rerank_empty", R"({"query": "q", "positive": [], "negative": ["n1"]})"
                                            "\n");
  MapEncoder enc({{"q", {1, 0}}, {"n1", {1, 0}}}, SIMILARITY_COSINE);
  EXPECT_THROW(run_task(dir, enc), UserError);
}

TEST(RetrievalTask, IgnoreIdenticalIdsAndQueryWithoutPositives) {
  // q1 (1,0): doc "q1" 1.0, d1 0.8, d2 0.6, d3 0; relevant: d2.
  // With ignore_identical_ids the doc "q1" is dropped: d2 is at rank 2.
  // q2 has no positive: 0 on every measure, but it counts in the mean.
  // q3 has no judgement at all: not evaluated (MTEB keeps only qrels' queries).
  MapEncoder enc(retrieval_vectors(1.0f), SIMILARITY_COSINE);
  nlohmann::ordered_json got = run_task(retrieval_task("retrieval_ignore", true), enc);
  EXPECT_EQ(got["ndcg_at_1"].get<double>(), 0.0);
  // (1 / log2(3)) / 2 = 0.3154648767857287, rounded to 5 decimals by MTEB.
  EXPECT_EQ(got["ndcg_at_3"].get<double>(), 0.31546);
  EXPECT_EQ(got["map_at_3"].get<double>(), 0.25);
  EXPECT_EQ(got["recall_at_1"].get<double>(), 0.0);
  EXPECT_EQ(got["recall_at_3"].get<double>(), 0.5);
  EXPECT_EQ(got["precision_at_3"].get<double>(), 0.16667);    // (1/3) / 2, rounded
  EXPECT_EQ(got["precision_at_1000"].get<double>(), 0.0005);  // k beyond the 3-doc run
  EXPECT_EQ(got["mrr_at_3"].get<double>(), 0.25);             // (1/2) / 2, not rounded
  EXPECT_TRUE(got["nauc_ndcg_at_1_max"].is_null());           // ndcg_at_1 is 0 for both queries

  // Without the flag the identical doc stays at rank 1 and d2 falls to rank 3.
  nlohmann::ordered_json kept = run_task(retrieval_task("retrieval_keep", false), enc);
  EXPECT_EQ(kept["ndcg_at_3"].get<double>(), 0.25);  // (1 / log2(4)) / 2
  EXPECT_NEAR(kept["mrr_at_3"].get<double>(), (1.0 / 3.0) / 2.0, TOL);

  data::TaskSpec spec = data::read_task_spec(retrieval_task("retrieval_describe", true));
  EXPECT_EQ(find_task_type("Retrieval").describe(spec), "2 queries, 4 documents");
}

TEST(RetrievalTask, DotSimilarity) {
  // d2 scaled by 10: by dot product it beats "q1" (1.0) for q1 (6.0), by cosine it does not.
  MapEncoder dot(retrieval_vectors(10.0f), SIMILARITY_DOT);
  nlohmann::ordered_json got = run_task(retrieval_task("retrieval_dot", false), dot);
  EXPECT_EQ(got["ndcg_at_1"].get<double>(), 0.5);
  MapEncoder cos(retrieval_vectors(10.0f), SIMILARITY_COSINE);
  EXPECT_EQ(run_task(retrieval_task("retrieval_cos", false), cos)["ndcg_at_1"].get<double>(), 0.0);
  MapEncoder euclid(retrieval_vectors(1.0f), SIMILARITY_EUCLIDEAN);
  EXPECT_THROW(run_task(retrieval_task("retrieval_euclid", false), euclid), UserError);
}
