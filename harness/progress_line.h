#pragma once
// Progress inside a long step, for a terminal: one line redrawn in place
// ("[3/14] CMRC2018Retrieval-mini corpus: 1200/7238 texts, 310/s, ETA 19 s"),
// at most a few times a second, wiped when the step ends. The caller decides
// whether to show it (a terminal, no --quiet); it is never written to a pipe.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace embeval {

class ProgressLine {
 public:
  explicit ProgressLine(std::FILE* out) : out_(out) {}
  ~ProgressLine() { clear(); }
  // A new step: its label, and the clock its rate and ETA start from.
  void start(const std::string& label);
  void update(int64_t done, int64_t total);
  void clear();

 private:
  std::FILE* out_;
  std::string label_;
  std::chrono::steady_clock::time_point t0_, last_;
  bool shown_ = false;
};

}  // namespace embeval
