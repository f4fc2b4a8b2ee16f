#include "reports/leaderboard.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "datasets/scoring_protocol.h"
#include "harness/timing.h"

namespace embeval::reports {

const std::vector<std::string>& cmteb_type_order() {
  static const std::vector<std::string> order = {"Retrieval", "STS", "PairClassification", "Classification",
                                                 "Reranking", "Clustering"};
  return order;
}

std::string variant_label(const EncoderInfo& info) {
  if (!info.quantization.empty())  // "bf16+wo-int8" as --quant spells it when the method ran in bf16
    return info.dtype.empty() || info.dtype == "fp32" ? info.quantization : info.dtype + "+" + info.quantization;
  return info.dtype.empty() ? "fp32" : info.dtype;
}

std::string mteb_relation(const TaskRecord& t) {
  if (t.is_mteb_split()) return "the C-MTEB split";
  if (!t.mteb_name.empty()) return "subset of " + t.mteb_name;
  return "no";
}

std::string model_label(const EncoderInfo& info) {
  std::string label = info.name;
  if (!info.quantization.empty()) label += " · " + info.quantization;
  if (!info.dtype.empty() && info.dtype != "fp32") label += " · " + info.dtype;
  if (info.device != "cpu") label += " · " + info.device;
  return label;
}

int64_t row_peak_memory(const LeaderboardRow& row) {
  return row.peak_device_bytes > 0 ? row.peak_device_bytes : row.peak_rss_bytes;
}

std::vector<double> borda_counts(const std::vector<std::vector<std::optional<double>>>& scores) {
  std::vector<double> counts(scores.size(), 0.0);
  // MTEB's table drops models without any score, so they do not count in n.
  size_t n = 0, n_tasks = 0;
  for (const auto& row : scores) {
    n_tasks = std::max(n_tasks, row.size());
    bool any = false;
    for (const auto& v : row) any |= v.has_value();
    n += any;
  }
  for (size_t t = 0; t < n_tasks; ++t) {
    for (size_t i = 0; i < scores.size(); ++i) {
      if (t >= scores[i].size() || !scores[i][t]) continue;
      const double v = *scores[i][t];
      // pandas rank(method="average", ascending=False) among the present values.
      size_t greater = 0, equal = 0;
      for (const auto& other : scores) {
        if (t >= other.size() || !other[t]) continue;
        greater += *other[t] > v;
        equal += *other[t] == v;
      }
      const double rank = static_cast<double>(greater) + (static_cast<double>(equal) + 1.0) / 2.0;
      counts[i] += static_cast<double>(n) - rank;
    }
  }
  return counts;
}

std::vector<int> min_rank_descending(const std::vector<double>& values) {
  std::vector<int> ranks(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    int greater = 0;
    for (double v : values) greater += v > values[i];
    ranks[i] = greater + 1;
  }
  return ranks;
}

std::vector<bool> pareto_front(const std::vector<double>& score, const std::vector<double>& speed) {
  std::vector<size_t> order(score.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Fastest first, best score first among equally fast: a point is on the
  // front when it beats every faster point's score.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (speed[a] != speed[b]) return speed[a] > speed[b];
    return score[a] > score[b];
  });
  std::vector<bool> front(score.size(), false);
  double best_score = -INFINITY, best_speed = INFINITY;
  for (size_t i : order) {
    if (score[i] > best_score) {
      front[i] = true;
      best_score = score[i];
      best_speed = speed[i];
    } else if (score[i] == best_score && speed[i] == best_speed) {
      front[i] = true;
    }
  }
  return front;
}

namespace {

int type_rank(const std::string& type) {
  const auto& order = cmteb_type_order();
  auto it = std::find(order.begin(), order.end(), type);
  return it == order.end() ? static_cast<int>(order.size()) : static_cast<int>(it - order.begin());
}

std::optional<double> mean(const std::vector<std::optional<double>>& xs) {
  if (xs.empty()) return std::nullopt;
  double sum = 0;
  for (const auto& x : xs) {
    if (!x) return std::nullopt;
    sum += *x;
  }
  return sum / static_cast<double>(xs.size());
}

std::optional<double> difference(std::optional<double> a, std::optional<double> b) {
  if (!a || !b) return std::nullopt;
  return *a - *b;
}

std::optional<double> ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b <= 0) return std::nullopt;
  return *a / *b;
}

bool is_reference(const EncoderInfo& m) { return m.quantization.empty() && (m.dtype.empty() || m.dtype == "fp32"); }

void add_performance(const Leaderboard& lb, const std::map<int64_t, const StoredRun*>& run_of, LeaderboardRow& row) {
  double items = 0, tokens = 0, seconds = 0, fidelity = 0;
  bool have_tokens = true;
  std::vector<double> paired;  // per task: p50 / fp32's p50 measured in turn
  std::set<int64_t> threads, runs;
  for (const auto& [key, index] : row.results) {
    const StoredResult& r = lb.results[index];
    const TimingRecord& g = r.timing;
    items += static_cast<double>(g.encoded_items);
    seconds += g.encode_seconds;
    if (g.encoded_tokens < 0) have_tokens = false;
    else tokens += static_cast<double>(g.encoded_tokens);
    row.peak_rss_bytes = std::max(row.peak_rss_bytes, g.peak_rss_bytes);
    row.peak_device_bytes = std::max(row.peak_device_bytes, g.peak_device_bytes);
    if (g.latency_samples > row.latency_samples && g.latency_p50_ms) {
      row.latency_samples = g.latency_samples;
      row.latency_p50_ms = g.latency_p50_ms;
      row.latency_p95_ms = g.latency_p95_ms;
    }
    if (g.latency_p50_ms && g.latency_reference_p50_ms && *g.latency_reference_p50_ms > 0)
      paired.push_back(*g.latency_p50_ms / *g.latency_reference_p50_ms);
    if (g.background_cpu_share)
      row.background_cpu_share = std::max(row.background_cpu_share.value_or(0), *g.background_cpu_share);
    runs.insert(r.run_id);
    auto run = run_of.find(r.run_id);
    if (run != run_of.end() && run->second->run.threads > 0) threads.insert(run->second->run.threads);
    auto fid = r.scores.find(FIDELITY_METRIC);
    if (fid != r.scores.end() && fid->is_number()) {
      fidelity += fid->get<double>();
      row.n_fidelity++;
    }
    auto fid_min = r.scores.find(FIDELITY_MIN_METRIC);
    if (fid_min != r.scores.end() && fid_min->is_number())
      row.fidelity_min = std::min(row.fidelity_min.value_or(1.0), fid_min->get<double>());
  }
  if (seconds > 0) {
    row.items_per_second = items / seconds;
    if (have_tokens) row.tokens_per_second = tokens / seconds;
  }
  if (row.n_fidelity > 0) row.fidelity = fidelity / row.n_fidelity;
  if (!paired.empty()) row.latency_vs_reference = percentile(paired, 50);
  row.threads.assign(threads.begin(), threads.end());
  row.run_ids.assign(runs.begin(), runs.end());
}

std::vector<QuantGroup> quant_groups(const Leaderboard& lb) {
  std::map<std::pair<std::string, std::string>, std::vector<size_t>> by_base;
  for (size_t i = 0; i < lb.rows.size(); ++i) {
    const EncoderInfo& m = lb.rows[i].model.info;
    by_base[{m.name, m.revision}].push_back(i);
  }
  std::vector<QuantGroup> groups;
  for (auto& [base, rows] : by_base) {
    bool any_variant = false;
    for (size_t i : rows) any_variant |= !is_reference(lb.rows[i].model.info);
    if (!any_variant) continue;
    std::stable_sort(rows.begin(), rows.end(), [&](size_t a, size_t b) {
      const EncoderInfo &ma = lb.rows[a].model.info, &mb = lb.rows[b].model.info;
      if (is_reference(ma) != is_reference(mb)) return is_reference(ma);
      if (ma.spec != mb.spec) return ma.spec < mb.spec;
      return ma.device < mb.device;
    });
    QuantGroup g;
    g.name = base.first;
    g.revision = base.second;
    for (size_t i : rows) {
      const LeaderboardRow& row = lb.rows[i];
      QuantVariant v;
      v.row = i;
      // The fp32 run on the same device, else the first fp32 run (by spec, then device).
      for (size_t j : rows) {
        const EncoderInfo& mj = lb.rows[j].model.info;
        if (!is_reference(mj)) continue;
        if (!v.reference || mj.device == row.model.info.device) v.reference = j;
        if (mj.device == row.model.info.device) break;
      }
      if (v.reference) {
        const LeaderboardRow& ref = lb.rows[*v.reference];
        for (const auto& t : lb.types) v.type_delta[t.type] = difference(row.type_mean.at(t.type), ref.type_mean.at(t.type));
        v.mean_task_delta = difference(row.mean_task, ref.mean_task);
        v.mean_type_delta = difference(row.mean_type, ref.mean_type);
        v.speedup = ratio(row.items_per_second, ref.items_per_second);
        if (*v.reference != i) v.latency_ratio = row.latency_vs_reference;
        if (row.peak_device_bytes > 0 && ref.peak_device_bytes > 0)
          v.memory_ratio = static_cast<double>(row.peak_device_bytes) / static_cast<double>(ref.peak_device_bytes);
        else if (row.peak_rss_bytes > 0 && ref.peak_rss_bytes > 0)
          v.memory_ratio = static_cast<double>(row.peak_rss_bytes) / static_cast<double>(ref.peak_rss_bytes);
      }
      g.variants.push_back(std::move(v));
    }
    groups.push_back(std::move(g));
  }
  return groups;
}

std::vector<std::string> notices(const Leaderboard& lb) {
  std::vector<std::string> out;
  std::map<int64_t, int> results_of_run;
  for (const auto& r : lb.results) results_of_run[r.run_id]++;
  for (const auto& run : lb.runs) {
    if (run.status == "finished") continue;
    int n = results_of_run[run.id];
    if (run.status == "failed")
      out.push_back(fmt::format("Run {} (started {}) failed: {}. The {} task(s) it finished before failing are shown.",
                                run.id, run.started_at, run.error.empty() ? "no error recorded" : run.error, n));
    else
      out.push_back(fmt::format("Run {} (started {}) has not finished: it is still running or was killed. The {} "
                                "task(s) it recorded so far are shown.",
                                run.id, run.started_at, n));
  }
  // What the reader is looking at: baselines without weights, and tasks
  // whose scores do not compare with the published C-MTEB leaderboard.
  std::vector<std::string> baselines;
  for (const auto& row : lb.rows)
    if (row.model.info.spec.rfind("baseline:", 0) == 0)
      baselines.push_back(fmt::format("{} ({})", row.model.info.name, row.model.info.spec));
  if (!baselines.empty())
    out.push_back(fmt::format("{} {} a lexical baseline without weights, shown for reference.",
                              fmt::join(baselines, ", "), baselines.size() == 1 ? "is" : "are each"));
  std::vector<std::string> subsets, others;
  std::set<std::string> seen;
  for (const auto& r : lb.results) {
    const TaskRecord& t = r.task.task;
    if (t.is_mteb_split() || !seen.insert(t.name).second) continue;
    (t.mteb_name.empty() ? others : subsets).push_back(t.mteb_name.empty() ? t.name : t.name + " (" + t.mteb_name + ")");
  }
  std::sort(subsets.begin(), subsets.end());
  std::sort(others.begin(), others.end());
  if (!subsets.empty() || !others.empty())
    out.push_back(fmt::format(
        "Not comparable with the published C-MTEB leaderboard:{}{}{}.",
        subsets.empty() ? ""
        : subsets.size() == 1
            ? fmt::format(" {} is a subset or re-split of the C-MTEB task in brackets", subsets[0])
            : fmt::format(" {} are subsets or re-splits of the C-MTEB task in brackets", fmt::join(subsets, ", ")),
        !subsets.empty() && !others.empty() ? ";" : "",
        others.empty() ? ""
        : fmt::format(" {} {} no C-MTEB task's data (substitutes; see {} task.json)", fmt::join(others, ", "),
                      others.size() == 1 ? "holds" : "hold", others.size() == 1 ? "its" : "their")));
  // Classification and Clustering scores under another scikit-learn
  // release's numerics than the default differ by the solver and the random
  // draws, not by the model: say so whenever any appears.
  std::map<std::string, std::set<std::string>> models_by_protocol;
  for (const auto& r : lb.results)
    if (!r.protocol.empty()) models_by_protocol[r.protocol].insert(model_label(r.model.info));
  const std::string default_protocol = data::scoring_protocol_name(data::DEFAULT_SCORING_PROTOCOL);
  if (models_by_protocol.size() > 1 || (models_by_protocol.size() == 1 && !models_by_protocol.count(default_protocol))) {
    std::vector<std::string> parts;
    for (const auto& [protocol, models] : models_by_protocol) {
      auto known = data::parse_scoring_protocol(protocol);
      parts.push_back(fmt::format("{} ({}) for {}", protocol, known ? data::scoring_protocol_releases(*known) : "unknown",
                                  fmt::join(models, ", ")));
    }
    out.push_back(fmt::format("Classification and Clustering scores follow the scoring protocol {}; MTEB's reference "
                              "scores follow {}. Scores under different protocols differ by the solver's stopping "
                              "point and k-means' random draws, not only by the model.",
                              fmt::join(parts, "; "), default_protocol));
  }
  int incomplete = 0;
  for (const auto& row : lb.rows) incomplete += row.n_tasks < static_cast<int>(lb.tasks.size());
  if (incomplete > 0)
    out.push_back(fmt::format("{} of {} models lack results for some of the {} tasks: those cells are blank, their "
                              "means are blank, and their Borda count gets nothing for the missing tasks.",
                              incomplete, lb.rows.size(), lb.tasks.size()));
  return out;
}

}  // namespace

const StoredResult* Leaderboard::result(const LeaderboardRow& row, const TaskColumn& task) const {
  auto it = row.results.find(task.key);
  return it == row.results.end() ? nullptr : &results[it->second];
}

std::optional<double> Leaderboard::main_score(const LeaderboardRow& row, const TaskColumn& task) const {
  const StoredResult* r = result(row, task);
  if (!r || !r->main_score || !std::isfinite(*r->main_score)) return std::nullopt;
  return r->main_score;
}

bool Leaderboard::has_paired_latency() const {
  for (const auto& g : quant_groups)
    for (const auto& v : g.variants)
      if (v.latency_ratio) return true;
  return false;
}

bool Leaderboard::has_fidelity() const {
  for (const auto& row : rows)
    if (row.fidelity) return true;
  return false;
}

Leaderboard build_leaderboard(std::vector<StoredResult> results, const std::vector<StoredRun>& runs) {
  Leaderboard lb;
  lb.results = std::move(results);

  std::set<int64_t> used_runs;
  for (const auto& r : lb.results) used_runs.insert(r.run_id);
  for (const auto& run : runs)
    if (used_runs.count(run.id)) lb.runs.push_back(run);
  std::sort(lb.runs.begin(), lb.runs.end(), [](const StoredRun& a, const StoredRun& b) { return a.id < b.id; });
  std::map<int64_t, const StoredRun*> run_of;
  for (const auto& run : lb.runs) run_of[run.id] = &run;

  // Task columns: the same task name with different data gets one column per
  // dataset checksum, since those scores are not comparable.
  std::map<std::string, std::set<std::string>> checksums;
  for (const auto& r : lb.results) checksums[r.task.task.name].insert(r.task.task.dataset_checksum);
  auto key_of = [&](const StoredResult& r) {
    const auto& t = r.task.task;
    return checksums[t.name].size() > 1 ? t.name + " (" + t.dataset_checksum.substr(0, 8) + ")" : t.name;
  };
  std::map<std::string, TaskColumn> columns;
  for (const auto& r : lb.results) {
    std::string key = key_of(r);
    columns.emplace(key, TaskColumn{key, r.task.task.name, r.task.task.type, r.task.task.main_score});
  }
  for (auto& [key, col] : columns) lb.tasks.push_back(col);
  std::sort(lb.tasks.begin(), lb.tasks.end(), [](const TaskColumn& a, const TaskColumn& b) {
    int ra = type_rank(a.type), rb = type_rank(b.type);
    if (ra != rb) return ra < rb;
    if (a.type != b.type) return a.type < b.type;
    return a.key < b.key;
  });
  for (const auto& t : lb.tasks) {
    if (lb.types.empty() || lb.types.back().type != t.type) lb.types.push_back({t.type, 0});
    lb.types.back().n_tasks++;
  }

  std::map<int64_t, size_t> row_of_model;
  for (size_t i = 0; i < lb.results.size(); ++i) {
    const StoredResult& r = lb.results[i];
    auto [it, inserted] = row_of_model.emplace(r.model.id, lb.rows.size());
    if (inserted) {
      lb.rows.emplace_back();
      lb.rows.back().model = r.model;
    }
    lb.rows[it->second].results[key_of(r)] = i;
  }

  std::vector<std::vector<std::optional<double>>> scores;
  for (auto& row : lb.rows) {
    std::vector<std::optional<double>> all, type_means;
    for (const auto& type : lb.types) {
      std::vector<std::optional<double>> xs;
      for (const auto& t : lb.tasks)
        if (t.type == type.type) xs.push_back(lb.main_score(row, t));
      all.insert(all.end(), xs.begin(), xs.end());
      row.type_mean[type.type] = mean(xs);
      type_means.push_back(row.type_mean[type.type]);
    }
    row.mean_task = mean(all);
    row.mean_type = mean(type_means);
    row.n_tasks = static_cast<int>(row.results.size());
    scores.push_back(std::move(all));
    add_performance(lb, run_of, row);
  }
  std::vector<double> borda = borda_counts(scores);
  std::vector<int> rank = min_rank_descending(borda);
  for (size_t i = 0; i < lb.rows.size(); ++i) {
    lb.rows[i].borda = borda[i];
    lb.rows[i].rank = rank[i];
  }
  std::stable_sort(lb.rows.begin(), lb.rows.end(), [](const LeaderboardRow& a, const LeaderboardRow& b) {
    if (a.rank != b.rank) return a.rank < b.rank;
    if (a.mean_task.has_value() != b.mean_task.has_value()) return a.mean_task.has_value();
    if (a.mean_task && b.mean_task && *a.mean_task != *b.mean_task) return *a.mean_task > *b.mean_task;
    if (a.model.info.spec != b.model.info.spec) return a.model.info.spec < b.model.info.spec;
    return a.model.info.device < b.model.info.device;
  });

  lb.quant_groups = quant_groups(lb);

  std::vector<double> score, speed;
  for (size_t i = 0; i < lb.rows.size(); ++i) {
    const LeaderboardRow& row = lb.rows[i];
    if (!row.mean_task || !row.items_per_second) continue;
    lb.points.push_back({i, *row.items_per_second, *row.mean_task, false});
  }
  std::sort(lb.points.begin(), lb.points.end(), [](const ScorePoint& a, const ScorePoint& b) {
    if (a.items_per_second != b.items_per_second) return a.items_per_second < b.items_per_second;
    return a.row < b.row;
  });
  for (const auto& p : lb.points) {
    score.push_back(p.score);
    speed.push_back(p.items_per_second);
  }
  std::vector<bool> front = pareto_front(score, speed);
  for (size_t i = 0; i < lb.points.size(); ++i) lb.points[i].pareto = front[i];

  lb.notices = notices(lb);
  return lb;
}

}  // namespace embeval::reports
