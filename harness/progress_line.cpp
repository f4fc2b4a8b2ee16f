#include "harness/progress_line.h"

#include <fmt/format.h>

namespace embeval {

void ProgressLine::start(const std::string& label) {
  clear();
  label_ = label;
  t0_ = std::chrono::steady_clock::now();
  last_ = t0_;
}

void ProgressLine::update(int64_t done, int64_t total) {
  const auto now = std::chrono::steady_clock::now();
  if (done < total && now - last_ < std::chrono::milliseconds(250)) return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - t0_).count();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  const std::string eta = rate > 0 && done < total ? fmt::format(", ETA {:.0f} s", static_cast<double>(total - done) / rate) : "";
  // \r and erase-to-end-of-line: the line is redrawn in place.
  std::fputs(fmt::format("\r{}: {}/{} texts, {:.0f}/s{}\x1b[K", label_, done, total, rate, eta).c_str(), out_);
  std::fflush(out_);
  shown_ = true;
}

void ProgressLine::clear() {
  if (!shown_) return;
  std::fputs("\r\x1b[K", out_);
  std::fflush(out_);
  shown_ = false;
}

}  // namespace embeval
