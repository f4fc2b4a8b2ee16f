#include "reports/score_format.h"

#include <cmath>

#include <fmt/format.h>

namespace embeval::reports {

namespace {

bool usable(std::optional<double> v) { return v && std::isfinite(*v); }

}  // namespace

std::string format_score(std::optional<double> fraction) {
  if (!usable(fraction)) return "";
  return fmt::format("{:.2f}", *fraction * 100.0);
}

std::string format_delta(std::optional<double> fraction_delta) {
  if (!usable(fraction_delta)) return "";
  std::string s = fmt::format("{:+.2f}", *fraction_delta * 100.0);
  return s == "-0.00" || s == "+0.00" ? "0.00" : s;  // no sign on what rounds to no change
}

std::string format_rate(std::optional<double> per_second) {
  if (!usable(per_second)) return "";
  return fmt::format("{:.1f}", *per_second);
}

std::string format_ms(std::optional<double> ms) {
  if (!usable(ms)) return "";
  return fmt::format("{:.2f}", *ms);
}

std::string format_ratio(std::optional<double> ratio) {
  if (!usable(ratio)) return "";
  return fmt::format("{:.2f}x", *ratio);
}

std::string format_mb(int64_t bytes) {
  if (bytes < 0) return "";
  return fmt::format("{:.0f}", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

std::string format_params(int64_t n) {
  if (n <= 0) return "";
  double v = static_cast<double>(n);
  if (v >= 1e9) return fmt::format("{:.1f}B", v / 1e9);
  if (v >= 1e7) return fmt::format("{:.0f}M", v / 1e6);
  if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.0f}K", v / 1e3);
  return std::to_string(n);
}

}  // namespace embeval::reports
