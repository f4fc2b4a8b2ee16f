#pragma once
// The one embedding container every layer shares: rows x cols float32,
// row-major, row i contiguous at values[i * cols].
#include <cstdint>
#include <vector>

namespace embeval {

struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;

  Matrix() = default;
  Matrix(int64_t r, int64_t c) : rows(r), cols(c), values(static_cast<size_t>(r * c), 0.0f) {}
  float* row(int64_t i) { return values.data() + i * cols; }
  const float* row(int64_t i) const { return values.data() + i * cols; }
};

}  // namespace embeval
