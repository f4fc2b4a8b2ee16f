#include "reports/csv_report.h"

#include <fmt/format.h>

namespace embeval::reports {

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string s = "\"";
  for (char c : text) {
    if (c == '"') s += '"';
    s += c;
  }
  return s + "\"";
}

namespace {

void line(std::string& out, const std::vector<std::string>& fields) {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += csv_field(fields[i]);
  }
  out += "\r\n";
}

}  // namespace

std::string csv_report(const Leaderboard& lb) {
  std::string out;
  // mteb_name: the C-MTEB task the data is the split of (== task) or a
  // subset of; empty for substitutes. protocol: the scoring protocol of
  // Classification and Clustering results (datasets/scoring_protocol.h).
  line(out, {"model", "spec", "device", "dtype", "quantization", "fingerprint", "task", "type", "split",
             "dataset_checksum", "mteb_name", "protocol", "metric", "value", "is_main"});
  for (const auto& row : lb.rows) {
    const EncoderInfo& m = row.model.info;
    for (const auto& t : lb.tasks) {
      const StoredResult* r = lb.result(row, t);
      if (!r) continue;
      for (const auto& [metric, value] : r->scores.items()) {
        if (metric == "main_score" || !(value.is_number() || value.is_null())) continue;
        // Shortest text that reads back as the same double, like Python's repr.
        std::string v = value.is_null() ? "" : value.is_number_float() ? fmt::format("{}", value.get<double>())
                                                                        : value.dump();
        line(out, {m.name, m.spec, m.device, m.dtype, m.quantization, m.fingerprint, t.name, t.type,
                   r->task.task.split, r->task.task.dataset_checksum, r->task.task.mteb_name, r->protocol, metric, v,
                   metric == t.main_score ? "1" : "0"});
      }
    }
  }
  return out;
}

}  // namespace embeval::reports
