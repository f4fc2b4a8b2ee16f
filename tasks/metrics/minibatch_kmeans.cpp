#include "tasks/metrics/minibatch_kmeans.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "harness/error.h"
#include "tasks/metrics/numpy_sum.h"

// Follows sklearn/cluster/_kmeans.py (MiniBatchKMeans.fit, _mini_batch_step,
// _kmeans_plusplus) and _k_means_minibatch.pyx / _k_means_lloyd.pyx of
// sklearn 1.2-1.7; the two releases' differences are in KmeansProtocol.

namespace embeval::metrics {
namespace {

using Rows = std::vector<const float*>;  // a subset of X, as sklearn's X[indices]

// The one kernel behind every distance: dot products of two vectors with
// four others, summed in double. Every load feeds two or four products and
// the eight independent sums keep the adders busy, which is what makes the
// 10k x 1792 sets of C-MTEB take about a second.
void dot_2x4(const float* x0, const float* x1, const float* const c[4], int64_t dim, double out0[4],
             double out1[4]) {
  const float *c0 = c[0], *c1 = c[1], *c2 = c[2], *c3 = c[3];
  double s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
  for (int64_t f = 0; f < dim; ++f) {
    double a = x0[f], b = x1[f];
    double v0 = c0[f], v1 = c1[f], v2 = c2[f], v3 = c3[f];
    s00 += a * v0, s01 += a * v1, s02 += a * v2, s03 += a * v3;
    s10 += b * v0, s11 += b * v1, s12 += b * v2, s13 += b * v3;
  }
  out0[0] = s00, out0[1] = s01, out0[2] = s02, out0[3] = s03;
  out1[0] = s10, out1[1] = s11, out1[2] = s12, out1[3] = s13;
}

// dots[a * nb + b] = xa[a] . xb[b] for all pairs, blocked 2 x 4 (edges reuse
// the last vector and drop the surplus results).
void dot_block(const float* const* xa, int64_t na, const float* const* xb, int64_t nb, int64_t dim, double* dots) {
  for (int64_t a = 0; a < na; a += 2) {
    const float* x0 = xa[a];
    const float* x1 = xa[std::min(a + 1, na - 1)];
    for (int64_t b = 0; b < nb; b += 4) {
      const float* c[4];
      for (int q = 0; q < 4; ++q) c[q] = xb[std::min(b + q, nb - 1)];
      double out0[4], out1[4];
      dot_2x4(x0, x1, c, dim, out0, out1);
      for (int64_t q = 0; q < 4 && b + q < nb; ++q) {
        dots[a * nb + b + q] = out0[q];
        if (a + 1 < na) dots[(a + 1) * nb + b + q] = out1[q];
      }
    }
  }
}

double squared_norm(const float* a, int64_t dim) {
  double s[4] = {0, 0, 0, 0};
  int64_t f = 0;
  for (; f + 4 <= dim; f += 4)
    for (int q = 0; q < 4; ++q) s[q] += static_cast<double>(a[f + q]) * a[f + q];
  for (; f < dim; ++f) s[0] += static_cast<double>(a[f]) * a[f];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

double squared_distance(const float* a, const float* b, int64_t dim) {
  double s[4] = {0, 0, 0, 0};
  int64_t f = 0;
  for (; f + 4 <= dim; f += 4)
    for (int q = 0; q < 4; ++q) {
      double d = static_cast<double>(a[f + q]) - b[f + q];
      s[q] += d * d;
    }
  for (; f < dim; ++f) {
    double d = static_cast<double>(a[f]) - b[f];
    s[0] += d * d;
  }
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// sklearn's _labels_inertia: each row goes to the center minimising
// ||c||^2 - 2 x.c, the first one on ties (lloyd_iter_chunked_dense); returns
// the sum of squared distances to the chosen centers.
//
// sklearn holds ||c||^2, x.c (its GEMM) and the score in float32. Here the
// norm and the dot product are summed in double, then rounded to float32 at
// the points where sklearn stores float32. The rounding matters: when two
// centers are a float32 ulp apart (a running mean of duplicates next to a
// point reassigned as a center), sklearn sees a tie and takes the first,
// where exact arithmetic would pick the nearer. Elsewhere the decisions are
// the exact ones, which sklearn also makes unless its own rounding flips a
// near tie.
double assign_labels(const Rows& rows, const float* centers, int64_t k, int64_t dim, int32_t* labels) {
  Rows center_rows(static_cast<size_t>(k));
  std::vector<float> center_norms(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) {
    center_rows[j] = centers + j * dim;
    center_norms[j] = static_cast<float>(squared_norm(center_rows[j], dim));
  }
  // Rows go in blocks small enough for their dot products to stay in cache.
  constexpr int64_t block = 64;
  std::vector<double> dots(static_cast<size_t>(block * k));
  double inertia = 0;
  const int64_t count = static_cast<int64_t>(rows.size());
  for (int64_t i0 = 0; i0 < count; i0 += block) {
    const int64_t n_rows = std::min(block, count - i0);
    dot_block(rows.data() + i0, n_rows, center_rows.data(), k, dim, dots.data());
    for (int64_t r = 0; r < n_rows; ++r) {
      const double* d = &dots[r * k];
      int32_t best = 0;
      float best_score = 0;
      for (int64_t j = 0; j < k; ++j) {
        float s = static_cast<float>(static_cast<double>(center_norms[j]) - 2.0 * static_cast<float>(d[j]));
        if (j == 0 || s < best_score) best_score = s, best = static_cast<int32_t>(j);
      }
      labels[i0 + r] = best;
      // The inertia only feeds the early-stopping comparisons; summing exact
      // squared differences keeps it free of cancellation.
      inertia += squared_distance(rows[i0 + r], center_rows[best], dim);
    }
  }
  return inertia;
}

// Squared distances from rows[from[t]] to every row, as sklearn's
// _euclidean_distances computes them for float32 input: upcast to double,
// (-2 x.y + ||x||^2) + ||y||^2, rounded to float32, clipped at 0.
// out is n_from x rows.size().
void distance_rows(const Rows& rows, const std::vector<double>& norms, const int64_t* from, int64_t n_from,
                   int64_t dim, float* out) {
  const int64_t m = static_cast<int64_t>(rows.size());
  Rows sources(static_cast<size_t>(n_from));
  for (int64_t t = 0; t < n_from; ++t) sources[t] = rows[from[t]];
  std::vector<double> dots(static_cast<size_t>(n_from * m));
  dot_block(sources.data(), n_from, rows.data(), m, dim, dots.data());
  for (int64_t t = 0; t < n_from; ++t)
    for (int64_t p = 0; p < m; ++p) {
      double d = -2 * dots[t * m + p] + norms[from[t]] + norms[p];
      float df = static_cast<float>(d);
      out[t * m + p] = df > 0.0f ? df : 0.0f;
    }
}

// numpy's legacy choice(m, p=w / w.sum()) for w = ones(m, float32): one
// random_sample() located in the normalised cumulative weights (side='right').
int64_t choice_uniform_weights(int64_t m, NumpyRandomState& rs) {
  const float p = 1.0f / static_cast<float>(m);  // float32 ones / float32 sum
  std::vector<double> cdf(static_cast<size_t>(m));
  double acc = 0;
  for (int64_t i = 0; i < m; ++i) cdf[i] = acc += static_cast<double>(p);
  for (double& v : cdf) v /= acc;
  double u = rs.random_sample();
  return std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
}

// sklearn's _kmeans_plusplus (greedy k-means++): each new center is the best,
// by resulting potential, of 2 + int(ln k) candidates sampled with
// probability proportional to the squared distance to the nearest center.
std::vector<float> kmeans_plusplus(const Rows& rows, int64_t dim, int64_t k, KmeansProtocol protocol,
                                   NumpyRandomState& rs) {
  const int64_t m = static_cast<int64_t>(rows.size());
  const int64_t n_local_trials = 2 + static_cast<int64_t>(std::log(static_cast<double>(k)));
  std::vector<double> norms(static_cast<size_t>(m));
  for (int64_t p = 0; p < m; ++p) norms[p] = squared_norm(rows[p], dim);

  std::vector<float> centers(static_cast<size_t>(k * dim));
  int64_t first = protocol == KMEANS_PROTOCOL_SKLEARN_1_2 ? rs.randint(0, m) : choice_uniform_weights(m, rs);
  std::copy(rows[first], rows[first] + dim, centers.begin());

  std::vector<float> closest(static_cast<size_t>(m));
  distance_rows(rows, norms, &first, 1, dim, closest.data());
  // A float32 sum, as numpy sums the float32 distances (sklearn 1.3+ uses a
  // BLAS dot with unit weights here, whose order cannot be mirrored).
  float current_pot = numpy_sum(closest.data(), static_cast<size_t>(m));

  std::vector<double> rand_vals(static_cast<size_t>(n_local_trials)), cumsum(static_cast<size_t>(m));
  std::vector<int64_t> candidates(static_cast<size_t>(n_local_trials));
  std::vector<float> trial_dist(static_cast<size_t>(n_local_trials * m));
  std::vector<float> trial_pot(static_cast<size_t>(n_local_trials));
  for (int64_t c = 1; c < k; ++c) {
    for (auto& v : rand_vals) v = rs.uniform() * static_cast<double>(current_pot);
    // stable_cumsum: float64 running sum of the float32 distances;
    // searchsorted (side='left'), clipped for the rounding at the end.
    double acc = 0;
    for (int64_t p = 0; p < m; ++p) cumsum[p] = acc += static_cast<double>(closest[p]);
    for (int64_t t = 0; t < n_local_trials; ++t) {
      int64_t id = std::lower_bound(cumsum.begin(), cumsum.end(), rand_vals[t]) - cumsum.begin();
      candidates[t] = std::min(id, m - 1);
    }
    distance_rows(rows, norms, candidates.data(), n_local_trials, dim, trial_dist.data());
    for (int64_t t = 0; t < n_local_trials; ++t) {
      float* d = trial_dist.data() + t * m;
      for (int64_t p = 0; p < m; ++p) d[p] = std::min(closest[p], d[p]);
      trial_pot[t] = numpy_sum(d, static_cast<size_t>(m));
    }
    int64_t best = 0;  // np.argmin: the first minimum
    for (int64_t t = 1; t < n_local_trials; ++t)
      if (trial_pot[t] < trial_pot[best]) best = t;
    current_pot = trial_pot[best];
    std::copy(trial_dist.begin() + best * m, trial_dist.begin() + (best + 1) * m, closest.begin());
    const float* chosen = rows[candidates[best]];
    std::copy(chosen, chosen + dim, centers.begin() + c * dim);
  }
  return centers;
}

// _minibatch_update_dense: each center becomes the running mean of all points
// it has absorbed, in float32 and in sklearn's order of operations (undo the
// previous scaling, add the batch's members in sample order, rescale).
void update_centers(const Rows& batch, const int32_t* labels, const float* centers, float* centers_new,
                    std::vector<float>& counts, int64_t dim) {
  const int64_t k = static_cast<int64_t>(counts.size());
  for (int64_t c = 0; c < k; ++c) {
    const float* old_c = centers + c * dim;
    float* new_c = centers_new + c * dim;
    float wsum = 0;
    for (size_t s = 0; s < batch.size(); ++s)
      if (labels[s] == c) wsum += 1.0f;
    if (wsum > 0) {
      for (int64_t f = 0; f < dim; ++f) new_c[f] = old_c[f] * counts[c];
      for (size_t s = 0; s < batch.size(); ++s) {
        if (labels[s] != c) continue;
        for (int64_t f = 0; f < dim; ++f) new_c[f] += batch[s][f];
      }
      counts[c] += wsum;
      const float alpha = 1.0f / counts[c];
      for (int64_t f = 0; f < dim; ++f) new_c[f] *= alpha;
    } else {
      std::copy(old_c, old_c + dim, new_c);
    }
  }
}

// The reassignment part of _mini_batch_step: centers that absorbed fewer
// than reassignment_ratio * max(counts) points jump to random batch points.
void reassign_small_clusters(const Rows& batch, float* centers_new, std::vector<float>& counts, int64_t dim,
                             double reassignment_ratio, NumpyRandomState& rs) {
  const int64_t k = static_cast<int64_t>(counts.size());
  const int64_t batch_size = static_cast<int64_t>(batch.size());
  // numpy 1.x: ratio * float32 max is a float64 scalar, which the comparison
  // with the float32 array casts back to float32.
  const float threshold =
      static_cast<float>(reassignment_ratio * static_cast<double>(*std::max_element(counts.begin(), counts.end())));
  std::vector<char> to_reassign(static_cast<size_t>(k));
  int64_t n_reassigns = 0;
  for (int64_t c = 0; c < k; ++c) {
    to_reassign[c] = counts[c] < threshold;
    n_reassigns += to_reassign[c];
  }

  // Pick at most half a batch: keep the largest clusters out. sklearn uses
  // np.argsort (quicksort, which is an insertion sort, hence stable, below
  // 17 elements); a stable sort gives the same order there.
  if (static_cast<double>(n_reassigns) > 0.5 * static_cast<double>(batch_size)) {
    std::vector<int64_t> order(static_cast<size_t>(k));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return counts[a] < counts[b]; });
    for (int64_t r = static_cast<int64_t>(0.5 * static_cast<double>(batch_size)); r < k; ++r)
      to_reassign[order[r]] = 0;
    n_reassigns = std::count(to_reassign.begin(), to_reassign.end(), 1);
  }

  if (n_reassigns > 0) {
    // random_state.choice(batch_size, replace=False, size=n): numpy's legacy
    // choice without p takes the head of a full permutation.
    std::vector<int64_t> picks = rs.permutation(batch_size);
    int64_t next = 0;
    for (int64_t c = 0; c < k; ++c) {
      if (!to_reassign[c]) continue;
      const float* x = batch[picks[next++]];
      std::copy(x, x + dim, centers_new + c * dim);
    }
  }
  // Reassigned centers restart at the smallest surviving count, not 0, so
  // they are not reassigned again at once (sklearn's "dirty hack").
  float min_kept = 0;
  bool any_kept = false;
  for (int64_t c = 0; c < k; ++c)
    if (!to_reassign[c] && (!any_kept || counts[c] < min_kept)) min_kept = counts[c], any_kept = true;
  EMBEVAL_ASSERT(any_kept);
  for (int64_t c = 0; c < k; ++c)
    if (to_reassign[c]) counts[c] = min_kept;
}

// MiniBatchKMeans._mini_batch_convergence with tol = 0: stop once the
// exponentially weighted average of the per-sample batch inertia has not
// improved for max_no_improvement consecutive steps.
struct Convergence {
  bool has_ewa = false, has_min = false;
  double ewa = 0, ewa_min = 0;
  int64_t no_improvement = 0;

  bool done(int64_t step, double batch_inertia, int64_t batch_size, int64_t n, int64_t max_no_improvement) {
    batch_inertia /= static_cast<double>(batch_size);
    if (step == 0) return false;  // the first batch measures the initialisation
    if (!has_ewa) {
      ewa = batch_inertia, has_ewa = true;
    } else {
      double alpha = std::min(static_cast<double>(batch_size) * 2.0 / static_cast<double>(n + 1), 1.0);
      ewa = ewa * (1 - alpha) + batch_inertia * alpha;
    }
    if (!has_min || ewa < ewa_min) {
      no_improvement = 0, ewa_min = ewa, has_min = true;
    } else {
      ++no_improvement;
    }
    return max_no_improvement >= 0 && no_improvement >= max_no_improvement;
  }
};

Rows gather(const float* x, int64_t dim, const std::vector<int64_t>& indices) {
  Rows rows(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) rows[i] = x + indices[i] * dim;
  return rows;
}

}  // namespace

MiniBatchKMeansResult minibatch_kmeans(const float* x, int64_t n, int64_t dim, const MiniBatchKMeansParams& params,
                                       NumpyRandomState& rs) {
  const int64_t k = params.n_clusters;
  EMBEVAL_ASSERT(k >= 1 && n >= k && dim >= 1 && params.batch_size >= 1 && params.n_init >= 1);

  // _check_params_vs_input
  const int64_t batch_size = std::min(params.batch_size, n);
  int64_t init_size = params.init_size;
  if (init_size <= 0) {
    init_size = 3 * batch_size;
    if (init_size < k) init_size = 3 * k;
  } else if (init_size < k) {
    init_size = 3 * k;
  }
  init_size = std::min(init_size, n);

  // The validation subset is drawn even when a single init makes it moot:
  // the draws advance the random state.
  Rows validation = gather(x, dim, rs.randint(0, n, init_size));

  std::vector<float> centers;
  double best_inertia = 0;
  for (int64_t init = 0; init < params.n_init; ++init) {
    std::vector<int64_t> init_indices;
    if (init_size < n) {
      init_indices = rs.randint(0, n, init_size);
    } else {
      init_indices.resize(static_cast<size_t>(n));
      std::iota(init_indices.begin(), init_indices.end(), 0);
    }
    std::vector<float> candidate = kmeans_plusplus(gather(x, dim, init_indices), dim, k, params.protocol, rs);
    if (params.n_init == 1) {
      centers = std::move(candidate);
      break;
    }
    std::vector<int32_t> labels(validation.size());
    double inertia = assign_labels(validation, candidate.data(), k, dim, labels.data());
    if (init == 0 || inertia < best_inertia) centers = std::move(candidate), best_inertia = inertia;
  }

  std::vector<float> centers_new(centers.size());
  std::vector<float> counts(static_cast<size_t>(k), 0.0f);
  std::vector<int32_t> batch_labels(static_cast<size_t>(batch_size));
  Convergence convergence;
  int64_t n_since_last_reassign = 0;

  const int64_t n_steps = params.max_iter * n / batch_size;
  int64_t step = 0;
  for (; step < n_steps; ++step) {
    Rows batch = gather(x, dim, rs.randint(0, n, batch_size));

    // _random_reassign: every 10 * k samples, or whenever a center is empty.
    n_since_last_reassign += batch_size;
    bool random_reassign = false;
    if (std::find(counts.begin(), counts.end(), 0.0f) != counts.end() || n_since_last_reassign >= 10 * k) {
      n_since_last_reassign = 0;
      random_reassign = true;
    }

    // _mini_batch_step: the inertia is measured before the centers move.
    double batch_inertia = assign_labels(batch, centers.data(), k, dim, batch_labels.data());
    update_centers(batch, batch_labels.data(), centers.data(), centers_new.data(), counts, dim);
    if (random_reassign && params.reassignment_ratio > 0)
      reassign_small_clusters(batch, centers_new.data(), counts, dim, params.reassignment_ratio, rs);
    std::swap(centers, centers_new);

    if (convergence.done(step, batch_inertia, batch_size, n, params.max_no_improvement)) break;
  }

  MiniBatchKMeansResult result;
  result.n_steps = std::min(step + 1, n_steps);
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  result.labels.resize(static_cast<size_t>(n));
  result.inertia = assign_labels(gather(x, dim, all), centers.data(), k, dim, result.labels.data());
  result.centers = std::move(centers);
  return result;
}

}  // namespace embeval::metrics
