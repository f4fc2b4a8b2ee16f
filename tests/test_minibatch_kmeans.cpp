#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tasks/metrics/minibatch_kmeans.h"
#include "tasks/metrics/numpy_random.h"
#include "tests/test_util.h"

using embeval::metrics::KmeansProtocol;
using embeval::metrics::minibatch_kmeans;
using embeval::metrics::MiniBatchKMeansParams;
using embeval::metrics::MiniBatchKMeansResult;
using embeval::metrics::NumpyRandomState;

namespace {

// The generator's make_blobs, draw for draw: RandomState(seed) gives the
// class centers (spread * random_sample), the classes (randint) and the
// noise (noise * (random_sample - 0.5)); summed in double, stored as float32.
std::vector<float> make_blobs(const nlohmann::json& d, int64_t* n_out, int64_t* dim_out) {
  const int64_t n = d["n"], dim = d["dim"], k_true = d["k_true"];
  const double spread = d["spread"], noise = d["noise"];
  NumpyRandomState rs(d["seed"].get<uint32_t>());
  std::vector<double> centers(static_cast<size_t>(k_true * dim));
  for (double& c : centers) c = rs.random_sample() * spread;
  std::vector<int64_t> y = rs.randint(0, k_true, n);
  std::vector<float> x(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t f = 0; f < dim; ++f) {
      double u = rs.random_sample();
      x[i * dim + f] = static_cast<float>(centers[y[i] * dim + f] + (u - 0.5) * noise);
    }
  *n_out = n, *dim_out = dim;
  return x;
}

std::string label_string(const std::vector<int32_t>& labels) {
  std::string s;
  for (int32_t l : labels) s += static_cast<char>('A' + l);
  return s;
}

}  // namespace

// Every case of tests/data/clustering/minibatch_kmeans_sklearn.json: sklearn
// 1.2.1's MiniBatchKMeans(n_init="auto", random_state=RandomState(fit_seed))
// on the same float32 blobs (see make_sklearn_expectations.py; the
// sklearn_1_3 cases run sklearn 1.3's k-means++ transcribed into 1.2.1).
// labels_ and n_steps_ must match exactly, the random state must end where
// numpy's did, and inertia_ (a float32 sum in sklearn) to 1e-5 relative.
// On identical rows the step count is float32 noise (see the generator).
TEST(MiniBatchKMeans, MatchesSklearnCases) {
  nlohmann::json file = embeval::test::read_json(embeval::test::data_path("clustering/minibatch_kmeans_sklearn.json"));
  ASSERT_GE(file["cases"].size(), 8u);
  for (const auto& c : file["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    int64_t n = 0, dim = 0;
    std::vector<float> x = make_blobs(c["data"], &n, &dim);
    MiniBatchKMeansParams params;
    const auto& p = c["params"];
    params.n_clusters = p["n_clusters"];
    params.batch_size = p["batch_size"];
    if (p.contains("max_iter")) params.max_iter = p["max_iter"];
    if (p.contains("max_no_improvement")) params.max_no_improvement = p["max_no_improvement"];
    if (p.contains("n_init")) params.n_init = p["n_init"];
    params.protocol = c["protocol"] == "sklearn_1_2" ? embeval::metrics::KMEANS_PROTOCOL_SKLEARN_1_2
                                                     : embeval::metrics::KMEANS_PROTOCOL_SKLEARN_1_3;
    NumpyRandomState rs(c["fit_seed"].get<uint32_t>());
    MiniBatchKMeansResult r = minibatch_kmeans(x.data(), n, dim, params, rs);

    EXPECT_EQ(label_string(r.labels), c["labels"].get<std::string>());
    if (!c["steps_are_rounding_noise"].get<bool>()) {
      EXPECT_EQ(r.n_steps, c["n_steps"].get<int64_t>());
      EXPECT_DOUBLE_EQ(rs.random_sample(), c["next_random_sample"].get<double>());
    }
    const double inertia = c["inertia"];
    EXPECT_NEAR(r.inertia, inertia, 1e-5 * std::max(1.0, inertia));
    EXPECT_EQ(r.centers.size(), static_cast<size_t>(params.n_clusters * dim));
  }
}

// The two protocols differ only in the first k-means++ draw, yet that is
// enough to change the clustering of the same data with the same seed.
TEST(MiniBatchKMeans, ProtocolsDrawDifferentFirstCenters) {
  nlohmann::json d = {{"seed", 2}, {"n", 300}, {"dim", 8}, {"k_true", 6}, {"spread", 1.0}, {"noise", 1.5}};
  int64_t n = 0, dim = 0;
  std::vector<float> x = make_blobs(d, &n, &dim);
  MiniBatchKMeansParams params;
  params.n_clusters = 6;
  params.batch_size = 100;
  NumpyRandomState a(42), b(42);
  MiniBatchKMeansResult r12 = minibatch_kmeans(x.data(), n, dim, params, a);
  params.protocol = embeval::metrics::KMEANS_PROTOCOL_SKLEARN_1_3;
  MiniBatchKMeansResult r13 = minibatch_kmeans(x.data(), n, dim, params, b);
  EXPECT_NE(r12.centers, r13.centers);
}

// Two well separated groups of identical points: any correct k-means puts
// each group in its own cluster, whatever the draws.
TEST(MiniBatchKMeans, SeparatesObviousClusters) {
  const int64_t n = 40, dim = 3;
  std::vector<float> x(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t f = 0; f < dim; ++f) x[i * dim + f] = i < 25 ? 0.0f : 10.0f;
  MiniBatchKMeansParams params;
  params.n_clusters = 2;
  params.batch_size = 16;
  NumpyRandomState rs(0);
  MiniBatchKMeansResult r = minibatch_kmeans(x.data(), n, dim, params, rs);
  for (int64_t i = 1; i < n; ++i) EXPECT_EQ(r.labels[i] == r.labels[0], i < 25) << i;
  EXPECT_NEAR(r.inertia, 0.0, 1e-9);
}
