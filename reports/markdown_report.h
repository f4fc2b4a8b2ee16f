#pragma once
// GitHub-flavoured Markdown leaderboard: summary (per-type averages like the
// MTEB leaderboard), one table per task type, and the runs behind the numbers.
#include <string>
#include <vector>

#include "harness/result_store.h"
#include "reports/leaderboard.h"

namespace embeval::reports {

std::string markdown_report(const Leaderboard& board, const std::vector<StoredRun>& runs, const std::string& title);
// Escapes a table cell: pipes, newlines, and characters Markdown would interpret.
std::string markdown_cell(const std::string& text);

}  // namespace embeval::reports
