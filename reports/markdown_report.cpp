#include "reports/markdown_report.h"

#include <set>

#include <fmt/format.h>

#include "reports/score_format.h"

namespace embeval::reports {

std::string markdown_cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '|': out += "\\|"; break;
      case '\n': case '\r': out += ' '; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '*': case '_': case '`': case '[': case ']': case '\\': out += '\\'; out += c; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

std::string row_line(const std::vector<std::string>& cells) {
  std::string s = "|";
  for (const auto& c : cells) s += " " + c + " |";
  return s + "\n";
}

std::string separator(size_t n_left, size_t n_right) {
  std::string s = "|";
  for (size_t i = 0; i < n_left; ++i) s += " --- |";
  for (size_t i = 0; i < n_right; ++i) s += " ---: |";
  return s + "\n";
}

std::string model_label(const StoredModel& m) {
  std::string label = m.info.name;
  if (!m.info.quantization.empty()) label += " · " + m.info.quantization;
  if (m.info.dtype != "fp32") label += " · " + m.info.dtype;
  if (m.info.device != "cpu") label += " · " + m.info.device;
  return markdown_cell(label);
}

std::string format_rate(std::optional<double> v) { return v ? fmt::format("{:.1f}", *v) : ""; }

}  // namespace

std::string markdown_report(const Leaderboard& lb, const std::vector<StoredRun>& runs, const std::string& title) {
  std::string md = "# " + markdown_cell(title) + "\n\n";
  if (lb.rows.empty()) return md + "No results recorded yet: run `embeval run` first.\n";

  md += fmt::format("{} model(s), {} task(s). Scores are main scores x100; Mean (TaskType) averages the per-type "
                    "means. A blank means the model has no result for that task (or an average that would need "
                    "it).\n\n",
                    lb.rows.size(), lb.tasks.size());
  md += "## Summary\n\n";
  std::vector<std::string> head = {"Model", "Spec", "Dim", "Tasks", "Mean (Task)", "Mean (TaskType)"};
  for (const auto& t : lb.types) head.push_back(fmt::format("{} ({})", t.type, t.n_tasks));
  head.push_back("texts/s");
  md += row_line(head) + separator(2, head.size() - 2);
  for (const auto& row : lb.rows) {
    std::vector<std::string> cells = {model_label(row.model), "`" + markdown_cell(row.model.info.spec) + "`",
                                      std::to_string(row.model.info.dim),
                                      fmt::format("{}/{}", row.n_tasks, lb.tasks.size()),
                                      format_score(row.mean_task), format_score(row.mean_type)};
    for (const auto& t : lb.types) cells.push_back(format_score(row.type_mean.at(t.type)));
    cells.push_back(format_rate(row.items_per_second));
    md += row_line(cells);
  }

  for (const auto& type : lb.types) {
    md += "\n## " + markdown_cell(type.type) + "\n\n";
    std::vector<std::string> h = {"Model"};
    for (const auto& t : lb.tasks)
      if (t.type == type.type) h.push_back(markdown_cell(t.key) + " (" + markdown_cell(t.main_score) + ")");
    md += row_line(h) + separator(1, h.size() - 1);
    for (const auto& row : lb.rows) {
      std::vector<std::string> cells = {model_label(row.model)};
      for (const auto& t : lb.tasks)
        if (t.type == type.type) cells.push_back(format_score(lb.main_score(row, t)));
      md += row_line(cells);
    }
  }

  std::set<int64_t> used_runs;
  for (const auto& r : lb.results) used_runs.insert(r.run_id);
  md += "\n## Runs\n\n";
  md += row_line({"Run", "Started (UTC)", "Status", "embeval", "Host", "CPU", "Threads", "libtorch", "BLAS"});
  md += separator(9, 0);
  for (const auto& r : runs) {
    if (!used_runs.count(r.id)) continue;
    md += row_line({std::to_string(r.id), markdown_cell(r.started_at), markdown_cell(r.status),
                    markdown_cell(r.run.harness_version + " " + r.run.git_revision), markdown_cell(r.run.host),
                    markdown_cell(r.run.cpu_model), std::to_string(r.run.threads),
                    markdown_cell(r.run.libtorch_version), markdown_cell(r.run.blas)});
  }
  return md;
}

}  // namespace embeval::reports
