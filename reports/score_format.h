#pragma once
// How numbers are shown in every report: MTEB leaderboards print fractions
// x100 with two decimals; a missing value is a blank, never a zero.
#include <cstdint>
#include <optional>
#include <string>

namespace embeval::reports {

std::string format_score(std::optional<double> fraction);  // 0.40996 -> "41.00"
// A difference of fractions in points x100, signed: -0.0123 -> "-1.23", 0 -> "0.00".
std::string format_delta(std::optional<double> fraction_delta);
std::string format_rate(std::optional<double> per_second);  // 1234.56 -> "1234.6"
std::string format_ms(std::optional<double> ms);            // 3.14159 -> "3.14"
std::string format_ratio(std::optional<double> ratio);      // 1.8512 -> "1.85x"
std::string format_mb(int64_t bytes);                       // MiB, no decimals; -1 -> ""
// Parameter count the way the MTEB leaderboard abbreviates it: 102M, 1.5B; 0 -> "".
std::string format_params(int64_t n);

}  // namespace embeval::reports
