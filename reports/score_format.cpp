#include "reports/score_format.h"

#include <cmath>

#include <fmt/format.h>

namespace embeval::reports {

std::string format_score(std::optional<double> fraction) {
  if (!fraction || !std::isfinite(*fraction)) return "";
  return fmt::format("{:.2f}", *fraction * 100.0);
}

}  // namespace embeval::reports
