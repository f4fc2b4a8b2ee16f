#pragma once
// np.sum / np.mean of a contiguous float64 array, in numpy's own order of
// additions (pairwise_sum in numpy/core/src/umath/loops_utils.h). sklearn
// sums losses and averages scores with these, so using the same order keeps
// results equal to the last bit rather than to a few ulps.
#include <cstddef>

namespace embeval::metrics {

inline double numpy_sum(const double* a, size_t n) {
  if (n < 8) {
    double res = 0.0;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {  // numpy's PW_BLOCKSIZE: eight interleaved partial sums
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;  // split on a multiple of the unroll factor, as numpy does
  return numpy_sum(a, n2) + numpy_sum(a + n2, n - n2);
}

inline double numpy_mean(const double* a, size_t n) { return numpy_sum(a, n) / static_cast<double>(n); }

}  // namespace embeval::metrics
