#pragma once
// numpy's legacy RandomState (MT19937) bit for bit, so that protocols MTEB
// runs through numpy/sklearn with a fixed seed (undersampling for
// classification, k-means initialisation and mini-batches) draw the same
// numbers here. Only the calls those protocols make are provided.
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace embeval::metrics {

class NumpyRandomState {
 public:
  explicit NumpyRandomState(uint32_t seed);  // np.random.RandomState(seed)

  uint32_t next_uint32();
  uint64_t next_uint64();      // two 32-bit draws, high word first (numpy's order)
  double random_sample();      // rs.random_sample(): 53-bit double in [0, 1)
  // rs.randint(low, high): one int64 in [low, high) by masked rejection.
  int64_t randint(int64_t low, int64_t high);
  // rs.randint(low, high, size) (numpy draws the values one after another).
  std::vector<int64_t> randint(int64_t low, int64_t high, int64_t size);
  // rs.uniform(low, high): low + (high - low) * random_sample().
  double uniform(double low = 0.0, double high = 1.0);
  // rs.shuffle(x) for a 1-d array: Fisher-Yates from the end with
  // random_interval, exactly numpy's legacy order of draws.
  template <class T>
  void shuffle(std::vector<T>& x) {
    for (size_t i = x.size(); i-- > 1;) {
      size_t j = static_cast<size_t>(random_interval(i));
      std::swap(x[i], x[j]);
    }
  }
  // rs.permutation(n) = shuffle(arange(n)).
  std::vector<int64_t> permutation(int64_t n);
  // Uniform integer in [0, max] by masked rejection (numpy's random_interval).
  uint64_t random_interval(uint64_t max);

 private:
  void reload();
  uint32_t mt_[624];
  int pos_;
};

}  // namespace embeval::metrics
