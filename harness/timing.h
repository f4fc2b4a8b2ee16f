#pragma once
// Wall-clock timing and the percentile convention used for latencies.
#include <chrono>
#include <vector>

namespace embeval {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  void restart() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

// numpy.percentile(values, q) with its default linear interpolation
// (q in [0, 100]); NaN for an empty input.
double percentile(std::vector<double> values, double q);

}  // namespace embeval
