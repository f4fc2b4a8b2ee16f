// STS and PairClassification against MTEB 1.39.7's own scores on fixed
// 128-d embeddings (tests/data/mteb_reference/<task>/), plus checks of the
// model-similarity keys, encoding role and undefined values.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "datasets/task_spec.h"
#include "harness/task_type.h"
#include "runners/precomputed_encoder.h"
#include "tests/test_util.h"

namespace {
using nlohmann::ordered_json;
using namespace embeval;

// Keys MTEB writes that the harness, not the plugin, adds.
bool harness_key(const std::string& key) { return key == "main_score" || key == "hf_subset" || key == "languages"; }
bool is_threshold(const std::string& key) { return key.find("threshold") != std::string::npos; }

// Tolerances. Correlations, accuracy, F1, precision, recall and AP: 1e-6.
// Thresholds are similarity values, which MTEB computed in float32 (sklearn
// on float32 embeddings, sums of 128 terms) and we in double; they may differ
// by float32 rounding, so they get 1e-6 relative to their size (an ulp of a
// float32 near 8.5 is already 9.5e-7).
constexpr double k_tolerance = 1e-6;
double tolerance_for(const std::string& key, double expected) {
  return is_threshold(key) ? k_tolerance * std::max(1.0, std::fabs(expected)) : k_tolerance;
}

void expect_parity(const std::string& name) {
  test::MtebReference ref = test::mteb_reference(name);
  // Re-read as ordered_json: the order of keys is part of MTEB's layout.
  std::ifstream in(test::data_path("mteb_reference/" + name + "/mteb_scores.json"));
  ordered_json expected = ordered_json::parse(in)["scores"];
  ordered_json got = test::evaluate_with_vectors(ref.task_dir, ref.vectors);

  std::vector<std::string> expected_keys, got_keys;
  for (const auto& item : expected.items())
    if (!harness_key(item.key())) expected_keys.push_back(item.key());
  for (const auto& item : got.items()) got_keys.push_back(item.key());
  EXPECT_EQ(got_keys, expected_keys) << name << ": keys or their order differ from MTEB's";

  data::TaskSpec spec = data::read_task_spec(ref.task_dir);
  EXPECT_EQ(find_task_type(spec.type).metric_names(), got_keys) << name << ": metric_names() vs evaluate()";

  double worst_metric = 0, worst_threshold = 0;
  for (const std::string& key : expected_keys) {
    ASSERT_TRUE(got.contains(key)) << name << ": missing " << key;
    ASSERT_TRUE(got[key].is_number()) << name << ": " << key << " = " << got[key].dump();
    double want = expected[key].get<double>(), have = got[key].get<double>();
    double diff = std::fabs(have - want);
    EXPECT_NEAR(have, want, tolerance_for(key, want)) << name << ": " << key;
    std::printf("  %-14s %-28s ours %.17g  mteb %.17g  |diff| %.3g\n", name.c_str(), key.c_str(), have, want, diff);
    (is_threshold(key) ? worst_threshold : worst_metric) = std::max(is_threshold(key) ? worst_threshold : worst_metric, diff);
  }
  std::printf("%s: max |diff| %.3g over metrics, %.3g over thresholds\n", name.c_str(), worst_metric, worst_threshold);

  // The harness reports task.json's main_score; it must be MTEB's main score.
  EXPECT_EQ(spec.main_score, ref.file["main_score_name"].get<std::string>());
  EXPECT_NEAR(got[spec.main_score].get<double>(), ref.file["main_score"].get<double>(), k_tolerance);
}

TEST(StsPairParity, LcqmcMini) { expect_parity("LCQMC-mini"); }
TEST(StsPairParity, Stsb) { expect_parity("STSB"); }
TEST(StsPairParity, OcnliMini) { expect_parity("Ocnli-mini"); }

TEST(StsPairParity, Describe) {
  EXPECT_EQ(find_task_type("STS").describe(data::read_task_spec(test::mteb_reference("LCQMC-mini").task_dir)),
            "200 pairs");
  EXPECT_EQ(find_task_type("STS").describe(data::read_task_spec(test::mteb_reference("STSB").task_dir)), "1354 pairs");
  EXPECT_EQ(find_task_type("PairClassification")
                .describe(data::read_task_spec(test::mteb_reference("Ocnli-mini").task_dir)),
            "200 pairs");
}

// Forwards to precomputed vectors but claims another similarity function, and
// records the roles it was asked to encode with.
class SimilarityOverride : public Encoder {
 public:
  SimilarityOverride(Encoder& inner, Similarity similarity) : inner_(inner), info_(inner.info()) {
    info_.similarity = similarity;
  }
  Matrix encode(const std::vector<std::string>& texts, const EncodeOptions& options) override {
    roles.push_back(options.role);
    return inner_.encode(texts, options);
  }
  const EncoderInfo& info() const override { return info_; }
  std::vector<Role> roles;

 private:
  Encoder& inner_;
  EncoderInfo info_;
};

ordered_json evaluate_as(const std::string& name, Similarity similarity, std::vector<Role>* roles = nullptr) {
  test::MtebReference ref = test::mteb_reference(name);
  data::TaskSpec spec = data::read_task_spec(ref.task_dir);
  PrecomputedEncoder vectors(ref.vectors);
  SimilarityOverride encoder(vectors, similarity);
  EvalContext ctx(encoder, spec);
  ordered_json out = find_task_type(spec.type).evaluate(spec, ctx);
  if (roles) *roles = encoder.roles;
  return out;
}

// MTEB encodes STS and pair sentences with no prompt type (neither query nor passage).
TEST(StsPairParity, EncodesWithNoPromptType) {
  std::vector<Role> roles;
  evaluate_as("LCQMC-mini", SIMILARITY_COSINE, &roles);
  EXPECT_EQ(roles, std::vector<Role>{ROLE_NONE});
  evaluate_as("Ocnli-mini", SIMILARITY_COSINE, &roles);
  EXPECT_EQ(roles, std::vector<Role>{ROLE_NONE});
}

// "pearson"/"spearman" and "similarity_*" follow the model's similarity;
// sentence-transformers' euclidean/manhattan similarities are negated distances.
TEST(StsPairParity, StsModelSimilarity) {
  const std::pair<Similarity, const char*> cases[] = {
      {SIMILARITY_EUCLIDEAN, "euclidean"}, {SIMILARITY_MANHATTAN, "manhattan"}, {SIMILARITY_COSINE, "cosine"}};
  for (const auto& [similarity, family] : cases) {
    ordered_json out = evaluate_as("LCQMC-mini", similarity);
    EXPECT_EQ(out["pearson"], out[std::string(family) + "_pearson"]) << family;
    EXPECT_EQ(out["spearman"], out[std::string(family) + "_spearman"]) << family;
  }
  // Dot product has no fixed-family key in STS; on these vectors it is defined and
  // differs from cosine (the vectors are not unit length).
  ordered_json dot = evaluate_as("LCQMC-mini", SIMILARITY_DOT);
  ASSERT_TRUE(dot["pearson"].is_number());
  EXPECT_NE(dot["pearson"], dot["cosine_pearson"]);
}

TEST(StsPairParity, PairModelSimilarity) {
  const std::pair<Similarity, const char*> cases[] = {{SIMILARITY_EUCLIDEAN, "euclidean"},
                                                      {SIMILARITY_MANHATTAN, "manhattan"},
                                                      {SIMILARITY_DOT, "dot"},
                                                      {SIMILARITY_COSINE, "cosine"}};
  for (const auto& [similarity, family] : cases) {
    ordered_json out = evaluate_as("Ocnli-mini", similarity);
    const std::string f = family;
    // A negated distance sorts into the same order, so only the thresholds change sign.
    double sign = (similarity == SIMILARITY_EUCLIDEAN || similarity == SIMILARITY_MANHATTAN) ? -1.0 : 1.0;
    for (const char* metric : {"accuracy", "f1", "precision", "recall", "ap"})
      EXPECT_EQ(out[std::string("similarity_") + metric], out[f + "_" + metric]) << f << " " << metric;
    EXPECT_EQ(out["similarity_accuracy_threshold"].get<double>(), sign * out[f + "_accuracy_threshold"].get<double>())
        << f;
    EXPECT_EQ(out["similarity_f1_threshold"].get<double>(), sign * out[f + "_f1_threshold"].get<double>()) << f;
  }
}

// Constant gold scores: scipy returns NaN for every correlation; we report null.
TEST(StsPairParity, ConstantGoldScoresGiveNull) {
  auto dir = test::scratch_dir("sts_constant_gold");
  test::write_file(dir / "task.json",
                   R"({"name": "ConstantGold", "type": "STS", "language": "zh", "main_score": "cosine_spearman"})");
  test::write_file(dir / "test.jsonl",
                   "{\"sentence1\": \"a\", \"sentence2\": \"b\", \"score\": 3.0}\n"
                   "{\"sentence1\": \"a\", \"sentence2\": \"c\", \"score\": 3.0}\n"
                   "{\"sentence1\": \"b\", \"sentence2\": \"c\", \"score\": 3.0}\n");
  test::write_file(dir / "vectors.jsonl",
                   "{\"text\": \"a\", \"embedding\": [1.0, 0.0]}\n"
                   "{\"text\": \"b\", \"embedding\": [0.6, 0.8]}\n"
                   "{\"text\": \"c\", \"embedding\": [0.0, 2.0]}\n");
  ordered_json out = test::evaluate_with_vectors(dir, dir / "vectors.jsonl");
  ASSERT_EQ(out.size(), 8u);
  for (const auto& item : out.items()) EXPECT_TRUE(item.value().is_null()) << item.key();
}

}  // namespace
