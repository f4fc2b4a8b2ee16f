#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "tasks/metrics/v_measure.h"

using embeval::metrics::homogeneity_completeness_v_measure;
using embeval::metrics::v_measure_score;
using embeval::metrics::VMeasure;

namespace {

VMeasure hcv(const std::vector<int64_t>& truth, const std::vector<int64_t>& pred) {
  EXPECT_EQ(truth.size(), pred.size());
  return homogeneity_completeness_v_measure(truth.data(), pred.data(), truth.size());
}

}  // namespace

// Same partition under other names: H(C|K) = H(K|C) = 0, everything is 1.
TEST(VMeasure, PerfectClusteringIsOne) {
  VMeasure m = hcv({0, 0, 1, 1, 2}, {5, 5, -3, -3, 9});
  EXPECT_NEAR(m.homogeneity, 1.0, 1e-15);
  EXPECT_NEAR(m.completeness, 1.0, 1e-15);
  EXPECT_NEAR(m.v_measure, 1.0, 1e-15);
}

// One cluster for two classes: H(K) = 0 so completeness is 1 by definition,
// MI = 0 so homogeneity is 0, and V = 2*0*1/(0+1) = 0 (sklearn: 0.0, 1.0, 0.0).
TEST(VMeasure, AllInOneCluster) {
  VMeasure m = hcv({0, 0, 1, 1}, {0, 0, 0, 0});
  EXPECT_EQ(m.homogeneity, 0.0);
  EXPECT_EQ(m.completeness, 1.0);
  EXPECT_EQ(m.v_measure, 0.0);
}

// Every point its own cluster: homogeneity 1, completeness MI / H(K) =
// ln 2 / ln 4 = 1/2, V = 2 * 1 * 0.5 / 1.5 = 2/3.
TEST(VMeasure, SingletonClusters) {
  VMeasure m = hcv({0, 0, 1, 1}, {0, 1, 2, 3});
  EXPECT_NEAR(m.homogeneity, 1.0, 1e-15);
  EXPECT_NEAR(m.completeness, 0.5, 1e-15);
  EXPECT_NEAR(m.v_measure, 2.0 / 3.0, 1e-15);
}

// By hand: N = 6, classes {3, 3}, clusters {2, 2, 2}; cells (c0,k0)=2,
// (c0,k1)=1, (c1,k1)=1, (c1,k2)=2. MI = 2 * (2/6) ln(6*2/(3*2)) + 2 * (1/6)
// ln(6*1/(3*2)) = (2/3) ln 2; H(C) = ln 2, H(K) = ln 3. So h = 2/3,
// c = (2/3) ln 2 / ln 3, V = 2hc / (h + c) (sklearn: 0.6666666666666666,
// 0.420619835714305, 0.5158037429793888).
TEST(VMeasure, HandComputedSplit) {
  VMeasure m = hcv({0, 0, 0, 1, 1, 1}, {0, 0, 1, 1, 2, 2});
  const double h = 2.0 / 3.0, c = (2.0 / 3.0) * std::log(2.0) / std::log(3.0);
  EXPECT_NEAR(m.homogeneity, h, 1e-15);
  EXPECT_NEAR(m.completeness, c, 1e-15);
  EXPECT_NEAR(m.v_measure, 2 * h * c / (h + c), 1e-15);
}

// Renaming clusters or classes changes nothing; swapping the two labelings
// swaps homogeneity and completeness (V is symmetric for beta = 1). Expected
// values from sklearn 1.2.1 homogeneity_completeness_v_measure on these lists.
TEST(VMeasure, PermutationInvarianceAndSklearnValues) {
  std::vector<int64_t> a = {3, 2, 3, 1, 2, 2, 0, 1, 0, 0, 3, 2, 3, 0, 2, 0, 3, 0, 3, 1,
                            1, 3, 0, 3, 0, 1, 3, 1, 3, 2, 0, 2, 1, 2, 2, 1, 1, 2, 1, 1};
  std::vector<int64_t> b = {3, 3, 1, 2, 2, 4, 3, 1, 0, 2, 1, 3, 3, 0, 3, 0, 0, 0, 3, 1,
                            2, 3, 0, 3, 4, 1, 3, 1, 3, 2, 0, 2, 2, 1, 1, 4, 1, 2, 1, 1};
  VMeasure m = hcv(a, b);
  EXPECT_NEAR(m.homogeneity, 0.39651802018273924, 1e-14);
  EXPECT_NEAR(m.completeness, 0.35834057935350994, 1e-14);
  EXPECT_NEAR(m.v_measure, 0.376463875919761, 1e-14);

  std::vector<int64_t> renamed = b;
  for (auto& v : renamed) v = 100 - 7 * v;  // a bijection on cluster ids
  VMeasure r = hcv(a, renamed);
  EXPECT_NEAR(r.homogeneity, m.homogeneity, 1e-15);
  EXPECT_NEAR(r.completeness, m.completeness, 1e-15);
  EXPECT_NEAR(r.v_measure, m.v_measure, 1e-15);

  VMeasure s = hcv(b, a);
  EXPECT_NEAR(s.homogeneity, m.completeness, 1e-15);
  EXPECT_NEAR(s.completeness, m.homogeneity, 1e-15);
  EXPECT_NEAR(s.v_measure, m.v_measure, 1e-15);
}

// One element: both entropies are 0, so sklearn defines h = c = 1 and V = 1;
// no element: sklearn returns 1, 1, 1.
TEST(VMeasure, SingleAndNoElement) {
  VMeasure one = hcv({7}, {3});
  EXPECT_EQ(one.homogeneity, 1.0);
  EXPECT_EQ(one.completeness, 1.0);
  EXPECT_EQ(one.v_measure, 1.0);
  VMeasure none = homogeneity_completeness_v_measure(nullptr, nullptr, 0);
  EXPECT_EQ(none.v_measure, 1.0);
  EXPECT_EQ(v_measure_score(nullptr, nullptr, 0), 1.0);
}

// beta weighs completeness: V_beta = (1 + beta) h c / (beta h + c).
TEST(VMeasure, BetaWeighsCompleteness) {
  std::vector<int64_t> t = {0, 0, 1, 1}, p = {0, 1, 2, 3};  // h = 1, c = 1/2
  EXPECT_NEAR(v_measure_score(t.data(), p.data(), 4, 2.0), 3.0 * 0.5 / (2.0 + 0.5), 1e-15);
}
