#pragma once
// The leaderboard as one self-contained HTML page: inline CSS and a little
// inline JavaScript (sort by any column, filter by model / task type / spec,
// state kept in the URL fragment so a view can be shared), no network, prints
// on A4 landscape. Sections: notices, summary, performance, quantization,
// score-vs-throughput chart (inline SVG, Pareto front marked), one table per
// task type, per-task detail with every metric, and the runs, datasets and
// prompts behind the numbers. Every text that comes from data (model names,
// specs, task names, paths, prompts) is HTML-escaped.
#include <string>

#include "reports/leaderboard.h"

namespace embeval::reports {

struct HtmlOptions {
  std::string title = "embeval leaderboard";
  std::string source;        // the database the page was made from
  std::string generated_at;  // shown in the header; empty: not shown
  std::string generator;     // e.g. "embeval 0.1.0 (abc123)"
};

std::string html_report(const Leaderboard& board, const HtmlOptions& options);
// Escapes & < > " ' so the text is inert in element content and attribute values.
std::string html_escape(const std::string& text);

}  // namespace embeval::reports
