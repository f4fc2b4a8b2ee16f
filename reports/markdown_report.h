#pragma once
// GitHub-flavoured Markdown leaderboard: notices, summary (Borda rank and
// per-type averages like the MTEB leaderboard), performance, quantization
// deltas, one table per task type, and the runs behind the numbers.
#include <string>

#include "reports/leaderboard.h"

namespace embeval::reports {

std::string markdown_report(const Leaderboard& board, const std::string& title);
// Escapes a table cell: pipes, newlines, and characters Markdown would interpret.
std::string markdown_cell(const std::string& text);

}  // namespace embeval::reports
