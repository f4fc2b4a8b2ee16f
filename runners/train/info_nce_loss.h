#pragma once
// The contrastive loss of one kind's share of a training step (InfoNCE with
// in-batch and hard negatives), apart from the trainer so that a test can
// check it against the formula.
//
// q: [n, d] query embeddings; c: [m, d] candidates, the n positives first
// (row i is query i's), then every hard negative. Both L2-normalised, so
// q c^T are cosines. query_ids / candidate_ids name each row's text: a
// candidate that is the same text as query i's positive or as query i
// itself is not a negative of query i and is left out of its softmax.
//
//   L = mean_i -log( e^{s_ii/t} / sum_{j kept} e^{s_ij/t} )
//
// symmetric: also each positive against the n queries (positive i must
// pick query i; a query that is the same text as query i or as positive i
// is left out), L = (L_q->c + L_p->q) / 2, as GTE's and E5's two-way losses.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace embeval {

torch::Tensor info_nce_loss(const torch::Tensor& q, const torch::Tensor& c, const std::vector<int32_t>& query_ids,
                            const std::vector<int32_t>& candidate_ids, double temperature, bool symmetric);

}  // namespace embeval
