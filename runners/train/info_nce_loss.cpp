#include "runners/train/info_nce_loss.h"

namespace embeval {

namespace {

// Cross entropy of each row i towards column i, the masked entries left out
// (a logit of -1e4 is exp() = 0 next to cosines / t, which stay within
// +-1 / t).
torch::Tensor diagonal_cross_entropy(torch::Tensor logits, const torch::Tensor& masked) {
  logits = logits.masked_fill(masked, -1e4);
  return torch::nn::functional::cross_entropy(logits, torch::arange(logits.size(0), torch::kLong));
}

}  // namespace

torch::Tensor info_nce_loss(const torch::Tensor& q, const torch::Tensor& c, const std::vector<int32_t>& query_ids,
                            const std::vector<int32_t>& candidate_ids, double temperature, bool symmetric) {
  const int64_t n = static_cast<int64_t>(query_ids.size()), m = static_cast<int64_t>(candidate_ids.size());
  TORCH_CHECK(q.size(0) == n && c.size(0) == m && m >= n, "info_nce_loss: ", n, " queries and ", m,
              " candidates do not match the embeddings");
  torch::Tensor masked = torch::zeros({n, m}, torch::kBool);
  auto mk = masked.accessor<bool, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j)
      if (j != i && (candidate_ids[j] == candidate_ids[i] || candidate_ids[j] == query_ids[i])) mk[i][j] = true;
  torch::Tensor loss = diagonal_cross_entropy(q.matmul(c.t()) / temperature, masked);
  if (!symmetric) return loss;
  torch::Tensor back_masked = torch::zeros({n, n}, torch::kBool);
  auto bk = back_masked.accessor<bool, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (j != i && (query_ids[j] == query_ids[i] || query_ids[j] == candidate_ids[i])) bk[i][j] = true;
  return 0.5 * (loss + diagonal_cross_entropy(c.narrow(0, 0, n).matmul(q.t()) / temperature, back_masked));
}

}  // namespace embeval
