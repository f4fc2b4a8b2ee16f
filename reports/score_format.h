#pragma once
// How scores are shown in every report: MTEB leaderboards print fractions
// x100 with two decimals; a missing score is a blank, never a zero.
#include <optional>
#include <string>

namespace embeval::reports {

std::string format_score(std::optional<double> fraction);  // 0.40996 -> "41.00"

}  // namespace embeval::reports
