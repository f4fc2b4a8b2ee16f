#include <string>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

#include "datasets/task_data.h"
#include "datasets/task_spec.h"
#include "tasks/metrics/numpy_random.h"
#include "tests/test_util.h"

using embeval::test::evaluate_with_vectors;
using embeval::test::mteb_reference;

namespace {

void expect_scores(const nlohmann::ordered_json& got, const std::vector<double>& v_measures, double mean,
                   double std_dev, double tol) {
  std::vector<std::string> keys;
  for (auto it = got.begin(); it != got.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"v_measure", "v_measure_std", "v_measures", "main_score"}));
  ASSERT_EQ(got["v_measures"].size(), v_measures.size());
  for (size_t i = 0; i < v_measures.size(); ++i)
    EXPECT_NEAR(got["v_measures"][i].get<double>(), v_measures[i], tol) << "set " << i;
  EXPECT_NEAR(got["v_measure"].get<double>(), mean, tol);
  EXPECT_NEAR(got["v_measure_std"].get<double>(), std_dev, tol);
  EXPECT_NEAR(got["main_score"].get<double>(), mean, tol);
}

// task_vectors() of tests/data/clustering/make_sklearn_expectations.py, draw
// for draw: one vector per distinct text (first-appearance order over the
// sets) = spread * U(0,1)^dim center of its first label + noise * (U - 0.5).
// Written as JSONL for the precomputed encoder; each float32 is printed as
// the shortest double that holds it, so it reads back bit for bit.
std::filesystem::path write_task_vectors(const std::filesystem::path& task_dir, uint32_t seed, int64_t dim,
                                         double spread, double noise, const std::string& scratch) {
  auto sets = embeval::data::load_clustering(embeval::data::read_task_spec(task_dir));
  std::unordered_map<std::string, int64_t> label_id, text_label;
  std::vector<std::string> texts;
  for (const auto& s : sets)
    for (size_t i = 0; i < s.sentences.size(); ++i) {
      int64_t id = label_id.emplace(s.labels[i], static_cast<int64_t>(label_id.size())).first->second;
      if (text_label.emplace(s.sentences[i], id).second) texts.push_back(s.sentences[i]);
    }
  embeval::metrics::NumpyRandomState rs(seed);
  std::vector<double> centers(label_id.size() * static_cast<size_t>(dim));
  for (double& c : centers) c = rs.random_sample() * spread;
  std::string jsonl;
  for (const std::string& t : texts) {
    nlohmann::json row;
    row["text"] = t;
    std::vector<double> v(static_cast<size_t>(dim));
    for (int64_t f = 0; f < dim; ++f) {
      double u = rs.random_sample();
      v[f] = static_cast<float>(centers[text_label[t] * dim + f] + (u - 0.5) * noise);
    }
    row["embedding"] = v;
    jsonl += row.dump() + "\n";
  }
  auto file = embeval::test::scratch_dir(scratch) / "vectors.jsonl";
  embeval::test::write_file(file, jsonl);
  return file;
}

}  // namespace

// MTEB 1.39.7 on fixed 128-d vectors (tests/data/mteb_reference): every key
// of "scores", in MTEB's order, to 1e-6. The k-means protocol is replicated
// draw for draw, so the match is exact up to summation order (~1e-16).
TEST(ClusteringParity, MatchesMtebReference) {
  auto ref = mteb_reference("CLSClusteringS2S-mini");
  nlohmann::ordered_json got = evaluate_with_vectors(ref.task_dir, ref.vectors);
  std::vector<double> v;
  for (const auto& x : ref.scores["v_measures"]) v.push_back(x.get<double>());
  expect_scores(got, v, ref.scores["v_measure"], ref.scores["v_measure_std"], 1e-6);
  EXPECT_EQ(ref.scores["main_score"].get<double>(), ref.scores["v_measure"].get<double>());
}

// ThuNewsClusteringS2S mini (2 sets of 100, 10 labels) on 24-d vectors from
// write_task_vectors(seed 11, spread 1, noise 2.5). Expected: MTEB's protocol
// run with sklearn 1.2.1 / numpy 1.24 by make_sklearn_expectations.py
// (np.random.seed(42) per set, MiniBatchKMeans(n_clusters=10, batch_size=500,
// n_init="auto"), v_measure_score, np.mean / np.std).
TEST(ClusteringParity, ThuNewsMiniMatchesSklearn) {
  auto dir = embeval::test::task_dir("ThuNewsClusteringS2S/mini");
  auto vectors = write_task_vectors(dir, 11, 24, 1.0, 2.5, "clustering_thunews_mini");
  expect_scores(evaluate_with_vectors(dir, vectors), {0.3034491925353903, 0.3020000422768858}, 0.3027246174061381,
                0.0007245751292522529, 1e-6);
}

// The full ThuNewsClusteringS2S (10 sets of 1000) on 48-d vectors from
// write_task_vectors(seed 12, spread 1, noise 2.5): several mini-batch steps
// per set with the real batch size 500. Expected values as above.
TEST(ClusteringParity, ThuNewsFullMatchesSklearn) {
  auto dir = embeval::test::task_dir("ThuNewsClusteringS2S");
  auto vectors = write_task_vectors(dir, 12, 48, 1.0, 2.5, "clustering_thunews_full");
  expect_scores(evaluate_with_vectors(dir, vectors),
                {0.4799366781383627, 0.4064600701279669, 0.3615608157409088, 0.4227674253825054,
                 0.3838041125731054, 0.47868456354492156, 0.43685475037154525, 0.33992794290553413,
                 0.34415811901968757, 0.4117262540207121},
                0.406588073182525, 0.04761283142537365, 1e-6);
}

// A set with a single label: k = 1, every point in one cluster; sklearn's
// v_measure is 1 (both entropies 0), and the std of one set is 0.
TEST(ClusteringParity, SingleLabelSet) {
  auto dir = embeval::test::scratch_dir("clustering_single_label");
  embeval::test::write_file(dir / "task.json",
                            R"({"name": "One", "type": "Clustering", "language": "zh", "main_score": "v_measure"})");
  embeval::test::write_file(dir / "test.jsonl", R"({"sentences": ["a", "b", "c"], "labels": [1, 1, 1]})"
                                                "\n");
  embeval::test::write_file(dir / "vectors.jsonl", R"({"text": "a", "embedding": [0.0, 1.0]})"
                                                   "\n"
                                                   R"({"text": "b", "embedding": [1.0, 0.0]})"
                                                   "\n"
                                                   R"({"text": "c", "embedding": [1.0, 1.0]})"
                                                   "\n");
  expect_scores(evaluate_with_vectors(dir, dir / "vectors.jsonl"), {1.0}, 1.0, 0.0, 0.0);
}
