#include "harness/error.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace embeval {
namespace {

// Levenshtein distance.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string did_you_mean(const std::string& token, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = 3;  // suggest only near misses
  for (const auto& k : known) {
    size_t d = edit_distance(token, k);
    if (d < best_d) best_d = d, best = k;
  }
  return best.empty() ? "" : fmt::format("; did you mean {}?", best);
}

void assert_failed(const char* cond, const char* file, int line, const char* func) {
  std::fprintf(stderr, "embeval: internal error: %s:%d: %s: assertion `%s' failed\n", file, line, func, cond);
  std::abort();
}

}  // namespace embeval
