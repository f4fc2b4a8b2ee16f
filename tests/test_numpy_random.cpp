#include <vector>

#include <gtest/gtest.h>

#include "tasks/metrics/numpy_random.h"

using embeval::metrics::NumpyRandomState;

// Expected values printed by numpy 1.24 (np.random.RandomState), e.g.
// RandomState(42).random_sample(3) and RandomState(42).randint(0, 1000, 5).
TEST(NumpyRandom, Uint32StreamMatchesNumpy) {
  NumpyRandomState r(42);
  EXPECT_EQ(r.next_uint32(), 1608637542u);
  EXPECT_EQ(r.next_uint32(), 3421126067u);
  EXPECT_EQ(r.next_uint32(), 4083286876u);
}

TEST(NumpyRandom, RandomSampleMatchesNumpy) {
  NumpyRandomState r(42);
  EXPECT_DOUBLE_EQ(r.random_sample(), 0.3745401188473625);
  EXPECT_DOUBLE_EQ(r.random_sample(), 0.9507143064099162);
  EXPECT_DOUBLE_EQ(r.random_sample(), 0.7319939418114051);
  NumpyRandomState r0(0);
  EXPECT_DOUBLE_EQ(r0.uniform(), 0.5488135039273248);
  EXPECT_DOUBLE_EQ(r0.uniform(), 0.7151893663724195);
}

TEST(NumpyRandom, RandintMatchesNumpy) {
  NumpyRandomState r(42);
  EXPECT_EQ(r.randint(0, 1000, 5), (std::vector<int64_t>{102, 435, 860, 270, 106}));
  EXPECT_EQ(r.randint(0, 7), 4);
  // A range above 2^32 switches to 64-bit draws.
  EXPECT_EQ(r.randint(0, 1000000000000LL, 2), (std::vector<int64_t>{86569440870LL, 520361034194LL}));
}

TEST(NumpyRandom, ShuffleAndPermutationMatchNumpy) {
  NumpyRandomState r(42);
  std::vector<int> x = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  r.shuffle(x);
  EXPECT_EQ(x, (std::vector<int>{8, 1, 5, 0, 7, 2, 9, 4, 3, 6}));
  EXPECT_EQ(r.permutation(5), (std::vector<int64_t>{1, 0, 3, 4, 2}));
}

TEST(NumpyRandom, StateReloadsAfter624Draws) {
  // The 625th draw crosses a reload; numpy: RandomState(42).randint(0, 2**32, 625, dtype=np.uint64)[-1].
  NumpyRandomState r(42);
  uint32_t last = 0;
  for (int i = 0; i < 625; ++i) last = r.next_uint32();
  EXPECT_EQ(last, 108880612u);
}
