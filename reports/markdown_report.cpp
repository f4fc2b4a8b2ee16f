#include "reports/markdown_report.h"

#include <array>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

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

// A code span shows its text literally; only a backtick (which would end it),
// a pipe (which GFM tables split on even there) and newlines need care.
std::string code(const std::string& text) {
  std::string s;
  for (char c : text) {
    if (c == '`') s += '\'';
    else if (c == '|') s += "\\|";
    else if (c == '\n' || c == '\r') s += ' ';
    else s += c;
  }
  return "`" + s + "`";
}

std::string label(const LeaderboardRow& row) { return markdown_cell(model_label(row.model.info)); }

std::string int_or_blank(int64_t v) { return v > 0 ? std::to_string(v) : ""; }

void summary(const Leaderboard& lb, std::string& md) {
  md += "## Summary\n\n";
  std::vector<std::string> head = {"Rank", "Model", "Spec", "Params", "Dim", "Max tokens", "Tasks", "Mean (Task)",
                                   "Mean (TaskType)"};
  for (const auto& t : lb.types) head.push_back(fmt::format("{} ({})", markdown_cell(t.type), t.n_tasks));
  md += row_line(head) + separator(3, head.size() - 3);
  for (const auto& row : lb.rows) {
    const EncoderInfo& m = row.model.info;
    std::vector<std::string> cells = {std::to_string(row.rank),
                                      label(row),
                                      code(m.spec),
                                      format_params(m.n_parameters),
                                      int_or_blank(m.dim),
                                      int_or_blank(m.max_tokens),
                                      fmt::format("{}/{}", row.n_tasks, lb.tasks.size()),
                                      format_score(row.mean_task),
                                      format_score(row.mean_type)};
    for (const auto& t : lb.types) cells.push_back(format_score(row.type_mean.at(t.type)));
    md += row_line(cells);
  }
}

void performance(const Leaderboard& lb, std::string& md) {
  md += "\n## Performance\n\n";
  md += "Throughput is encoded texts (tokens) per second of encoding over all tasks; latency is one text at a time "
        "(batch size 1); memory is the peak of the process (or the accelerator, where measured). Pareto: no other "
        "model is both faster and better on Mean (Task).\n\n";
  std::vector<std::string> head = {"Model", "Device", "Threads", "texts/s", "tokens/s", "p50 ms", "p95 ms",
                                   "Peak memory (MB)", "Pareto"};
  md += row_line(head) + separator(3, head.size() - 3);
  std::vector<bool> pareto(lb.rows.size(), false);
  for (const auto& p : lb.points) pareto[p.row] = p.pareto;
  double busiest = 0;
  for (size_t i = 0; i < lb.rows.size(); ++i) {
    const LeaderboardRow& row = lb.rows[i];
    const std::string mark = row.timed_on_busy_machine() ? " \\*" : "";
    if (row.timed_on_busy_machine()) busiest = std::max(busiest, *row.background_cpu_share);
    md += row_line({label(row), markdown_cell(row.model.info.device), fmt::format("{}", fmt::join(row.threads, ", ")),
                    format_rate(row.items_per_second) + mark, format_rate(row.tokens_per_second),
                    format_ms(row.latency_p50_ms) + mark, format_ms(row.latency_p95_ms),
                    format_mb(row_peak_memory(row)), pareto[i] ? "yes" : ""});
  }
  if (busiest > 0)
    md += fmt::format("\n\\* Timed while other processes kept up to {:.0f}% of the CPUs busy: slower and noisier than "
                      "on an idle machine; compare speeds from runs on an idle one.\n",
                      100 * busiest);
}

void quantization(const Leaderboard& lb, std::string& md) {
  if (lb.quant_groups.empty()) return;
  const bool fidelity = lb.has_fidelity(), paired = lb.has_paired_latency();
  md += "\n## Quantization\n\n";
  md += "Each spec against the fp32 run of the same model: score differences in points (x100), speed-up in texts/s, "
        "peak memory ratio";
  if (paired)
    md += ", batch-1 time (one text's p50 over fp32's, both timed in turn on the same texts; the median over the "
          "tasks; below 1x is faster)";
  md += fidelity ? ", and fidelity (mean cosine of each embedding to the fp32 one; the least of any one embedding "
                  "after the slash).\n"
                : ".\n";
  for (const auto& g : lb.quant_groups) {
    md += "\n### " + markdown_cell(g.name) + (g.revision.empty() ? "" : " @ " + markdown_cell(g.revision)) + "\n\n";
    std::vector<std::string> head = {"Spec", "Device", "Mean (Task)", "Δ Mean (Task)", "Δ Mean (TaskType)"};
    for (const auto& t : lb.types) head.push_back("Δ " + markdown_cell(t.type));
    if (fidelity) head.push_back("Fidelity");
    head.push_back("Speed-up");
    if (paired) head.push_back("Batch-1 time");
    head.push_back("Memory");
    md += row_line(head) + separator(2, head.size() - 2);
    for (const auto& v : g.variants) {
      const LeaderboardRow& row = lb.rows[v.row];
      const bool self = v.reference && *v.reference == v.row;
      std::vector<std::string> cells = {code(variant_label(row.model.info)) + (self ? " (reference)" : ""),
                                        markdown_cell(row.model.info.device), format_score(row.mean_task),
                                        format_delta(v.mean_task_delta), format_delta(v.mean_type_delta)};
      for (const auto& t : lb.types) cells.push_back(format_delta(v.type_delta.count(t.type) ? v.type_delta.at(t.type) : std::nullopt));
      if (fidelity)
        cells.push_back(row.fidelity ? fmt::format("{:.4f}", *row.fidelity) +
                                           (row.fidelity_min ? fmt::format(" / {:.4f}", *row.fidelity_min) : "")
                                     : "");
      cells.push_back(format_ratio(v.speedup));
      if (paired) cells.push_back(format_ratio(v.latency_ratio));
      cells.push_back(format_ratio(v.memory_ratio));
      md += row_line(cells);
    }
    if (!g.variants.empty() && !g.variants.front().reference) md += "\nNo fp32 run of this model is recorded: no deltas.\n";
  }
}

void per_type(const Leaderboard& lb, std::string& md) {
  for (const auto& type : lb.types) {
    md += "\n## " + markdown_cell(type.type) + "\n\n";
    std::vector<std::string> h = {"Model"};
    for (const auto& t : lb.tasks)
      if (t.type == type.type) h.push_back(markdown_cell(t.key) + " (" + markdown_cell(t.main_score) + ")");
    md += row_line(h) + separator(1, h.size() - 1);
    for (const auto& row : lb.rows) {
      std::vector<std::string> cells = {label(row)};
      for (const auto& t : lb.tasks)
        if (t.type == type.type) cells.push_back(format_score(lb.main_score(row, t)));
      md += row_line(cells);
    }
  }
}

void runs(const Leaderboard& lb, std::string& md) {
  md += "\n## Runs\n\n";
  md += row_line({"Run", "Started (UTC)", "Status", "embeval", "Host", "CPU", "Threads", "GPU", "libtorch", "BLAS"});
  md += separator(10, 0);
  for (const auto& r : lb.runs) {
    md += row_line({std::to_string(r.id), markdown_cell(r.started_at), markdown_cell(r.status),
                    markdown_cell(r.run.harness_version + " " + r.run.git_revision), markdown_cell(r.run.host),
                    markdown_cell(r.run.cpu_model), std::to_string(r.run.threads), markdown_cell(r.run.gpu),
                    markdown_cell(r.run.libtorch_version), markdown_cell(r.run.blas)});
  }
}

// The data behind the scores (as the HTML report's Datasets table) and the
// prompts every task's text sets got.
void datasets_and_prompts(const Leaderboard& lb, std::string& md) {
  md += "\n## Datasets\n\n";
  md += row_line({"Task", "Type", "Split", "C-MTEB", "SHA-256 of the files", "Source", "License"});
  md += separator(7, 0);
  std::set<int64_t> seen;
  std::vector<std::array<std::string, 3>> prompts;  // task, role, prompt
  std::set<std::string> prompt_seen;
  for (const auto& t : lb.tasks)
    for (const auto& row : lb.rows) {
      const StoredResult* r = lb.result(row, t);
      if (!r) continue;
      if (r->prompts.is_object())
        for (const auto& [role, text] : r->prompts.items()) {
          std::string s = text.is_string() ? text.get<std::string>() : text.dump();
          if (prompt_seen.insert(t.key + '\n' + role + '\n' + s).second) prompts.push_back({t.key, role, s});
        }
      if (!seen.insert(r->task.id).second) continue;
      const TaskRecord& d = r->task.task;
      md += row_line({markdown_cell(d.name), markdown_cell(d.type), markdown_cell(d.split), markdown_cell(mteb_relation(d)),
                      "`" + d.dataset_checksum + "`", markdown_cell(d.source_repo), markdown_cell(d.license)});
    }
  md += "\n## Prompts\n\n";
  if (prompts.empty()) {
    md += "No task used a prompt: every text was encoded as it is.\n";
    return;
  }
  md += row_line({"Task", "Text set", "Prompt"}) + separator(3, 0);
  for (const auto& [task, role, text] : prompts)
    md += row_line({markdown_cell(task), markdown_cell(role), "`" + markdown_cell(text) + "`"});
}

}  // namespace

std::string markdown_report(const Leaderboard& lb, const std::string& title) {
  std::string md = "# " + markdown_cell(title) + "\n\n";
  if (lb.rows.empty()) return md + "No results recorded yet: run `embeval run` first.\n";

  md += fmt::format("{} model(s), {} task(s). Rank is the MTEB leaderboard's Borda rank over tasks. Scores are main "
                    "scores x100; Mean (TaskType) averages the per-type means. A blank means the model has no result "
                    "for that task (or an average that would need it).\n\n",
                    lb.rows.size(), lb.tasks.size());
  for (const auto& n : lb.notices) md += "> **Note:** " + markdown_cell(n) + "\n>\n";
  if (!lb.notices.empty()) md.resize(md.size() - 2), md += "\n";
  summary(lb, md);
  performance(lb, md);
  quantization(lb, md);
  per_type(lb, md);
  runs(lb, md);
  datasets_and_prompts(lb, md);
  return md;
}

}  // namespace embeval::reports
