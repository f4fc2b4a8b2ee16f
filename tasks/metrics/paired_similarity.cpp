#include "tasks/metrics/paired_similarity.h"

#include <cfloat>
#include <cmath>

namespace embeval::metrics {
namespace {

// sklearn's _handle_zeros_in_scale: a norm below 10 * eps of the input dtype
// (float32 for embeddings) is replaced by 1, i.e. the row is not scaled.
double safe_norm(const float* v, int64_t dim) {
  double sq = 0.0;
  for (int64_t k = 0; k < dim; ++k) sq += static_cast<double>(v[k]) * static_cast<double>(v[k]);
  double norm = std::sqrt(sq);
  return norm < 10.0 * static_cast<double>(FLT_EPSILON) ? 1.0 : norm;
}

}  // namespace

std::vector<double> paired_cosine_similarity(const float* x, const float* y, int64_t n, int64_t dim) {
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* a = x + i * dim;
    const float* b = y + i * dim;
    const double na = safe_norm(a, dim), nb = safe_norm(b, dim);
    double sq = 0.0;
    for (int64_t k = 0; k < dim; ++k) {
      double d = static_cast<double>(a[k]) / na - static_cast<double>(b[k]) / nb;
      sq += d * d;
    }
    out[static_cast<size_t>(i)] = 1.0 - 0.5 * sq;
  }
  return out;
}

std::vector<double> paired_euclidean_distance(const float* x, const float* y, int64_t n, int64_t dim) {
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* a = x + i * dim;
    const float* b = y + i * dim;
    double sq = 0.0;
    for (int64_t k = 0; k < dim; ++k) {
      double d = static_cast<double>(a[k]) - static_cast<double>(b[k]);
      sq += d * d;
    }
    out[static_cast<size_t>(i)] = std::sqrt(sq);
  }
  return out;
}

std::vector<double> paired_manhattan_distance(const float* x, const float* y, int64_t n, int64_t dim) {
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* a = x + i * dim;
    const float* b = y + i * dim;
    double sum = 0.0;
    for (int64_t k = 0; k < dim; ++k) sum += std::fabs(static_cast<double>(a[k]) - static_cast<double>(b[k]));
    out[static_cast<size_t>(i)] = sum;
  }
  return out;
}

std::vector<double> paired_dot_product(const float* x, const float* y, int64_t n, int64_t dim) {
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* a = x + i * dim;
    const float* b = y + i * dim;
    double sum = 0.0;
    for (int64_t k = 0; k < dim; ++k) sum += static_cast<double>(a[k]) * static_cast<double>(b[k]);
    out[static_cast<size_t>(i)] = sum;
  }
  return out;
}

}  // namespace embeval::metrics
