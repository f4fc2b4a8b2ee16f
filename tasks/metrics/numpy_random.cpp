#include "tasks/metrics/numpy_random.h"

#include <numeric>

#include "harness/error.h"

namespace embeval::metrics {

NumpyRandomState::NumpyRandomState(uint32_t seed) {
  // numpy's _legacy_seeding for an integer seed: Knuth's init_genrand.
  mt_[0] = seed;
  for (int i = 1; i < 624; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  pos_ = 624;
}

void NumpyRandomState::reload() {
  constexpr uint32_t upper = 0x80000000u, lower = 0x7fffffffu, matrix_a = 0x9908b0dfu;
  for (int i = 0; i < 624; ++i) {
    uint32_t y = (mt_[i] & upper) | (mt_[(i + 1) % 624] & lower);
    mt_[i] = mt_[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? matrix_a : 0u);
  }
  pos_ = 0;
}

uint32_t NumpyRandomState::next_uint32() {
  if (pos_ == 624) reload();
  uint32_t y = mt_[pos_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint64_t NumpyRandomState::next_uint64() {
  uint64_t hi = next_uint32();
  return (hi << 32) | next_uint32();
}

double NumpyRandomState::random_sample() {
  uint32_t a = next_uint32() >> 5, b = next_uint32() >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

double NumpyRandomState::uniform(double low, double high) { return low + (high - low) * random_sample(); }

uint64_t NumpyRandomState::random_interval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  uint64_t value;
  if (max <= 0xffffffffULL) {
    while ((value = (next_uint32() & mask)) > max) {
    }
  } else {
    while ((value = (next_uint64() & mask)) > max) {
    }
  }
  return value;
}

int64_t NumpyRandomState::randint(int64_t low, int64_t high) {
  EMBEVAL_ASSERT(high > low);
  uint64_t rng = static_cast<uint64_t>(high - low - 1);
  if (rng == 0) return low;
  // random_bounded_uint64 with use_masked: 32-bit draws while the range fits.
  if (rng == 0xffffffffULL) return low + static_cast<int64_t>(next_uint32());
  return low + static_cast<int64_t>(random_interval(rng));
}

std::vector<int64_t> NumpyRandomState::randint(int64_t low, int64_t high, int64_t size) {
  std::vector<int64_t> out(static_cast<size_t>(size));
  for (auto& v : out) v = randint(low, high);
  return out;
}

std::vector<int64_t> NumpyRandomState::permutation(int64_t n) {
  std::vector<int64_t> x(static_cast<size_t>(n));
  std::iota(x.begin(), x.end(), 0);
  shuffle(x);
  return x;
}

}  // namespace embeval::metrics
