#pragma once
// Row-by-row comparison of two embedding matrices, as the sklearn functions
// MTEB's STS and PairClassification evaluators call (sklearn.metrics.pairwise
// paired_cosine_distances, paired_euclidean_distances,
// paired_manhattan_distances, and np.dot per row). x and y are n x dim
// float32 row-major; element i compares row i of x with row i of y. The
// arithmetic is done in double (sklearn works in the float32 of the inputs,
// so MTEB's values differ from these by float32 rounding, ~1e-7 relative).
#include <cstdint>
#include <vector>

namespace embeval::metrics {

// 1 - paired_cosine_distances = 1 - 0.5 * |x/|x| - y/|y||^2. This form (not
// dot/(|x||y|)) gives exactly 1 for identical rows. Like sklearn's normalize(),
// a row whose norm is below 10 * float32 epsilon is left unscaled, so a zero
// vector has similarity 1 - 0.5 * 1 = 0.5 with any unit-length direction.
std::vector<double> paired_cosine_similarity(const float* x, const float* y, int64_t n, int64_t dim);
// |x - y|_2
std::vector<double> paired_euclidean_distance(const float* x, const float* y, int64_t n, int64_t dim);
// |x - y|_1
std::vector<double> paired_manhattan_distance(const float* x, const float* y, int64_t n, int64_t dim);
// x . y
std::vector<double> paired_dot_product(const float* x, const float* y, int64_t n, int64_t dim);

}  // namespace embeval::metrics
