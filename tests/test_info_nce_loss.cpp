// runners/train/info_nce_loss.h against the formula written out in double
// precision with explicit loops: which entries each softmax keeps (the
// duplicate-text masks) and both directions; and its gradient against
// central differences.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "runners/train/info_nce_loss.h"

using namespace embeval;

namespace {

// -log softmax of row i at column i over the columns kept[i][j].
double reference(const std::vector<std::vector<double>>& s, const std::vector<std::vector<bool>>& kept, double t) {
  double total = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    double denom = 0;
    for (size_t j = 0; j < s[i].size(); ++j)
      if (kept[i][j]) denom += std::exp(s[i][j] / t);
    total += -(s[i][i] / t - std::log(denom));
  }
  return total / static_cast<double>(s.size());
}

std::vector<std::vector<double>> cosines(const torch::Tensor& a, const torch::Tensor& b) {
  std::vector<std::vector<double>> s(static_cast<size_t>(a.size(0)), std::vector<double>(static_cast<size_t>(b.size(0))));
  for (int64_t i = 0; i < a.size(0); ++i)
    for (int64_t j = 0; j < b.size(0); ++j) {
      double d = 0;
      for (int64_t k = 0; k < a.size(1); ++k) d += a[i][k].item<double>() * b[j][k].item<double>();
      s[static_cast<size_t>(i)][static_cast<size_t>(j)] = d;
    }
  return s;
}

}  // namespace

TEST(InfoNceLoss, MatchesTheFormulaWithDuplicateTextsLeftOut) {
  torch::manual_seed(3);
  const double t = 0.05;
  // 4 queries, their 4 positives, 4 hard negatives. Text ids: positive 1 and
  // positive 3 are the same text (two pairs share it); hard negative 6 is
  // query 0's own text; query 2 and query 3 are the same text.
  const std::vector<int32_t> qid = {10, 11, 12, 12};
  const std::vector<int32_t> cid = {20, 21, 22, 21, 30, 31, 10, 33};
  const torch::Tensor q = torch::nn::functional::normalize(torch::randn({4, 8}, torch::kDouble),
                                                           torch::nn::functional::NormalizeFuncOptions().dim(1));
  const torch::Tensor c = torch::nn::functional::normalize(torch::randn({8, 8}, torch::kDouble),
                                                           torch::nn::functional::NormalizeFuncOptions().dim(1));
  std::vector<std::vector<bool>> kept(4, std::vector<bool>(8, true));
  kept[1][3] = kept[3][1] = false;  // the same text as the positive
  kept[0][6] = false;               // query 0 itself
  const double one_way = reference(cosines(q, c), kept, t);
  EXPECT_NEAR(info_nce_loss(q, c, qid, cid, t, false).item<double>(), one_way, 1e-9);

  // The other direction: positive i against the 4 queries.
  std::vector<std::vector<bool>> back(4, std::vector<bool>(4, true));
  back[2][3] = back[3][2] = false;  // queries 2 and 3 are one text
  const double other_way = reference(cosines(c.narrow(0, 0, 4), q), back, t);
  EXPECT_NEAR(info_nce_loss(q, c, qid, cid, t, true).item<double>(), 0.5 * (one_way + other_way), 1e-9);
  // Without the masks the numbers would differ: the test can tell.
  std::vector<std::vector<bool>> all(4, std::vector<bool>(8, true));
  EXPECT_GT(std::abs(reference(cosines(q, c), all, t) - one_way), 1e-3);
}

TEST(InfoNceLoss, TheGradientMatchesFiniteDifferences) {
  torch::manual_seed(4);
  const std::vector<int32_t> qid = {0, 1, 2}, cid = {3, 4, 5, 6, 7, 8};
  torch::Tensor q = torch::randn({3, 16}, torch::kDouble).requires_grad_(true);
  torch::Tensor c = torch::randn({6, 16}, torch::kDouble).requires_grad_(true);
  auto unit = [](const torch::Tensor& x) {
    return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1));
  };
  auto loss_of = [&](const torch::Tensor& qq, const torch::Tensor& cc) {
    return info_nce_loss(unit(qq), unit(cc), qid, cid, 0.1, true);
  };
  const torch::Tensor before = loss_of(q, c);
  before.backward();
  // Central differences agree with autograd on every entry of a query and of
  // a positive (the masks and the averaging keep it one smooth function).
  torch::NoGradGuard ng;
  const double h = 1e-6;
  for (int64_t k = 0; k < 16; ++k) {
    torch::Tensor up = q.detach().clone(), down = q.detach().clone();
    up[1][k] += h;
    down[1][k] -= h;
    EXPECT_NEAR((loss_of(up, c) - loss_of(down, c)).item<double>() / (2 * h), q.grad()[1][k].item<double>(), 1e-6);
    torch::Tensor cu = c.detach().clone(), cd = c.detach().clone();
    cu[2][k] += h;
    cd[2][k] -= h;
    EXPECT_NEAR((loss_of(q, cu) - loss_of(q, cd)).item<double>() / (2 * h), c.grad()[2][k].item<double>(), 1e-6);
  }
  // And a small step against the gradient lowers the loss.
  const torch::Tensor c2 = c - 0.05 * c.grad();
  EXPECT_LT(loss_of(q, c2).item<double>(), before.item<double>());
}
