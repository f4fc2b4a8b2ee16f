// Retrieval and Reranking against MTEB 1.39.7's own scores on fixed
// embeddings (tests/data/mteb_reference/*): every metric of the reference,
// tolerance 1e-6 (the project's bar for deterministic metrics); nulls (values
// MTEB leaves undefined) must be null here too.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness/task_type.h"
#include "tests/test_util.h"

namespace {

using embeval::test::evaluate_with_vectors;
using embeval::test::mteb_reference;

// Keys the harness adds itself, not the plugin.
bool added_by_harness(const std::string& key) {
  return key == "main_score" || key == "hf_subset" || key == "languages";
}

void expect_parity(const std::string& reference_name, const char* type_name) {
  auto ref = mteb_reference(reference_name);
  nlohmann::ordered_json got = evaluate_with_vectors(ref.task_dir, ref.vectors);

  // Re-read in file order: MtebReference keeps a key-sorted copy.
  std::ifstream in(embeval::test::data_path("mteb_reference/" + reference_name + "/mteb_scores.json"));
  nlohmann::ordered_json scores = nlohmann::ordered_json::parse(in)["scores"];

  std::vector<std::string> expected_keys;
  double max_diff = 0.0;
  std::string worst;
  for (const auto& [key, want] : scores.items()) {
    if (added_by_harness(key)) continue;
    expected_keys.push_back(key);
    ASSERT_TRUE(got.contains(key)) << reference_name << ": missing key " << key;
    const auto& have = got[key];
    if (want.is_null()) {
      EXPECT_TRUE(have.is_null()) << reference_name << ": " << key << " should be null, got " << have.dump();
      continue;
    }
    ASSERT_TRUE(have.is_number()) << reference_name << ": " << key << " = " << have.dump();
    double diff = std::fabs(have.get<double>() - want.get<double>());
    EXPECT_LE(diff, 1e-6) << reference_name << ": " << key << " expected " << want.get<double>() << " got "
                          << have.get<double>();
    if (diff > max_diff) max_diff = diff, worst = key;
  }
  // Same keys, same order as MTEB writes them.
  std::vector<std::string> got_keys;
  for (const auto& [key, value] : got.items()) got_keys.push_back(key);
  EXPECT_EQ(got_keys, expected_keys);
  // metric_names() lists exactly the scalar keys evaluate() returns.
  EXPECT_EQ(embeval::find_task_type(type_name).metric_names(), got_keys);
  EXPECT_NE(std::find(got_keys.begin(), got_keys.end(), ref.file["main_score_name"].get<std::string>()),
            got_keys.end());
  std::printf("[ parity ] %s: %zu metrics, max abs diff %.3g (%s)\n", reference_name.c_str(), expected_keys.size(),
              max_diff, worst.empty() ? "-" : worst.c_str());
}

TEST(RetrievalParity, Cmrc2018RetrievalMini) { expect_parity("CMRC2018Retrieval-mini", "Retrieval"); }

TEST(RerankingParity, MedicalDialogueRerankingMini) { expect_parity("MedicalDialogueReranking-mini", "Reranking"); }

}  // namespace
