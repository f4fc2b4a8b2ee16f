#pragma once
// Long-format CSV for spreadsheets and pandas: one row per model x task x
// scalar metric, RFC 4180 (CRLF line ends; a field with a comma, quote, CR or
// LF is quoted, quotes doubled). Values are the recorded fractions, unrounded.
#include <string>

#include "reports/leaderboard.h"

namespace embeval::reports {

// Columns: model, spec, device, dtype, quantization, fingerprint, task, type,
// split, dataset_checksum, metric, value, is_main. Rows in leaderboard order,
// tasks in column order, metrics as recorded; "main_score" (a copy of the
// main metric) is left out, is_main marks the main metric instead.
std::string csv_report(const Leaderboard& board);
std::string csv_field(const std::string& text);

}  // namespace embeval::reports
