#pragma once
// np.sum of a contiguous 1-d array, rounding step for rounding step: numpy's
// pairwise summation (blocks of up to 128 summed with 8 accumulators, larger
// runs split in halves), started from the identity 0. sklearn's k-means++
// compares float32 sums computed this way, so mirroring the order keeps its
// near-tie decisions; for double sums it only matters at the 1e-16 level.
#include <cstdint>

namespace embeval::metrics {

template <class T>
T numpy_pairwise_sum(const T* a, int64_t n) {
  if (n < 8) {
    T res = 0;
    for (int64_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    T r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    int64_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return numpy_pairwise_sum(a, n2) + numpy_pairwise_sum(a + n2, n - n2);
}

}  // namespace embeval::metrics
