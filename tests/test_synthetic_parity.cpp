// Classification and Clustering on synthetic tasks with fixed vectors
// (tests/data/synthetic, made by scripts/make_synthetic_tasks.py) against
// MTEB's protocols run with numpy 1.24.2 / scikit-learn 1.2.1
// (scripts/sklearn_protocol_expectations.py -> expected_sklearn_1.2.1.json).
// SynthMulti's test split has a label absent from training (never predicted,
// still counted by macro F1). Tolerance 1e-9: the logistic-regression fit is
// rounding-close to scipy's (not bit-equal), predictions are identical.
#include <cmath>

#include <gtest/gtest.h>

#include "tests/test_util.h"

using embeval::test::data_path;
using embeval::test::evaluate_with_vectors;

namespace {

const nlohmann::json& expected() {
  static nlohmann::json j = embeval::test::read_json(data_path("synthetic/expected_sklearn_1.2.1.json"));
  return j;
}

void expect_same(const nlohmann::ordered_json& got, const nlohmann::json& want, const std::string& where) {
  for (auto it = want.begin(); it != want.end(); ++it) {
    ASSERT_TRUE(got.contains(it.key())) << where << ": missing " << it.key();
    const auto& g = got[it.key()];
    if (it->is_array()) {
      ASSERT_EQ(g.size(), it->size()) << where << "." << it.key();
      for (size_t i = 0; i < it->size(); ++i) {
        if ((*it)[i].is_object()) expect_same(g[i], (*it)[i], where + "." + it.key() + "[" + std::to_string(i) + "]");
        else EXPECT_NEAR(g[i].get<double>(), (*it)[i].get<double>(), 1e-9) << where << "." << it.key() << "[" << i << "]";
      }
    } else {
      EXPECT_NEAR(g.get<double>(), it->get<double>(), 1e-9) << where << "." << it.key();
    }
  }
}

}  // namespace

TEST(SyntheticParity, BinaryClassificationWithAp) {
  auto got = evaluate_with_vectors(data_path("synthetic/SynthBinary"), data_path("synthetic/SynthBinary/vectors.jsonl"));
  expect_same(got, expected()["SynthBinary"], "SynthBinary");
}

TEST(SyntheticParity, MulticlassWithUnseenTestLabel) {
  auto got = evaluate_with_vectors(data_path("synthetic/SynthMulti"), data_path("synthetic/SynthMulti/vectors.jsonl"));
  EXPECT_FALSE(got.contains("ap"));  // multiclass: MTEB reports no ap
  expect_same(got, expected()["SynthMulti"], "SynthMulti");
}

TEST(SyntheticParity, ClusteringSetsOfSeveralSizes) {
  auto got = evaluate_with_vectors(data_path("synthetic/SynthClusters"), data_path("synthetic/SynthClusters/vectors.jsonl"));
  expect_same(got, expected()["SynthClusters"], "SynthClusters");
}
