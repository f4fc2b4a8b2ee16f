#pragma once
// np.sum / np.mean of a contiguous 1-d array in numpy's own order of
// additions (pairwise_sum in numpy/core/src/umath/loops_utils.h.src: blocks
// of up to 128 items summed with 8 interleaved accumulators, longer runs
// split in halves on a multiple of 8). sklearn and MTEB sum losses, average
// scores and compare k-means++ potentials with these; the same order keeps
// results equal to the last bit, and keeps float32 near-tie decisions.
#include <cstddef>
#include <limits>

namespace embeval::metrics {

template <class T>
T numpy_pairwise_sum(const T* a, size_t n) {
  if (n < 8) {
    T res = 0;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    T r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return numpy_pairwise_sum(a, n2) + numpy_pairwise_sum(a + n2, n - n2);
}

// A reduction starts from the identity 0 (so -0.0 sums to +0.0, as in numpy).
template <class T>
T numpy_sum(const T* a, size_t n) {
  return T(0) + numpy_pairwise_sum(a, n);
}

// np.mean: NaN for an empty array.
inline double numpy_mean(const double* a, size_t n) {
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  return numpy_sum(a, n) / static_cast<double>(n);
}

}  // namespace embeval::metrics
