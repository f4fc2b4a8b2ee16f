#pragma once
// sklearn.cluster.MiniBatchKMeans(init="k-means++", tol=0).fit(X) on float32
// data without sample weights, replicating every random draw and discrete
// decision: the validation subset, the init subset, greedy k-means++ with
// 2 + int(ln k) local trials, mini-batches drawn with randint, the dense
// center update in float32, random reassignment of small clusters, early
// stopping on the smoothed batch inertia, and the final labels_. Given the
// same RandomState it yields sklearn's labels. Distances are summed in double
// and rounded to float32 where sklearn stores float32, so an assignment can
// only differ where sklearn's own float32 GEMM rounding flips a near tie
// (none in 30 fits of 1000-3000 unit vectors of 384/768 dims; 3 of 200 fits
// of unnormalised blobs with squared norms near 100 had one such flip).
#include <cstdint>
#include <vector>

#include "tasks/metrics/numpy_random.h"

namespace embeval::metrics {

// sklearn releases draw the first k-means++ center differently, so the same
// seed gives different clusterings.
enum KmeansProtocol {
  // sklearn <= 1.2: random_state.randint(n). MTEB's reference scores in
  // tests/data/mteb_reference were produced this way.
  KMEANS_PROTOCOL_SKLEARN_1_2,
  // sklearn 1.3 - 1.7: random_state.choice(n, p=sample_weight / sum), one
  // random_sample() against the cumulative weights.
  KMEANS_PROTOCOL_SKLEARN_1_3,
};

struct MiniBatchKMeansParams {
  int64_t n_clusters = 8;
  int64_t batch_size = 1024;
  int64_t max_iter = 100;
  int64_t max_no_improvement = 10;  // -1: no early stopping (sklearn's None)
  int64_t init_size = 0;            // 0: sklearn's default, 3 * batch_size (at least 3 * n_clusters)
  int64_t n_init = 1;               // what n_init="auto" means with k-means++
  double reassignment_ratio = 0.01;
  KmeansProtocol protocol = KMEANS_PROTOCOL_SKLEARN_1_2;
};

struct MiniBatchKMeansResult {
  std::vector<int32_t> labels;  // labels_: nearest final center of each row
  std::vector<float> centers;   // cluster_centers_, n_clusters x dim, row-major
  double inertia = 0;           // inertia_: sum of squared distances to the labels' centers
  int64_t n_steps = 0;          // n_steps_: mini-batches processed
};

// x is n x dim, row-major; requires n >= n_clusters >= 1. random_state is
// advanced exactly as sklearn advances the RandomState it is given (MTEB
// passes none, so sklearn uses numpy's global one).
MiniBatchKMeansResult minibatch_kmeans(const float* x, int64_t n, int64_t dim, const MiniBatchKMeansParams& params,
                                       NumpyRandomState& random_state);

}  // namespace embeval::metrics
