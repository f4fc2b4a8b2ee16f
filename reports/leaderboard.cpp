#include "reports/leaderboard.h"

#include <algorithm>
#include <set>

namespace embeval::reports {

const std::vector<std::string>& cmteb_type_order() {
  static const std::vector<std::string> order = {"Retrieval", "STS", "PairClassification", "Classification",
                                                 "Reranking", "Clustering"};
  return order;
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

}  // namespace

const StoredResult* Leaderboard::result(const LeaderboardRow& row, const TaskColumn& task) const {
  auto it = row.results.find(task.key);
  return it == row.results.end() ? nullptr : &results[it->second];
}

std::optional<double> Leaderboard::main_score(const LeaderboardRow& row, const TaskColumn& task) const {
  const StoredResult* r = result(row, task);
  return r ? r->main_score : std::nullopt;
}

Leaderboard build_leaderboard(std::vector<StoredResult> results) {
  Leaderboard lb;
  lb.results = std::move(results);

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
    double items = 0, tokens = 0, seconds = 0;
    bool have_tokens = true;
    for (const auto& [key, index] : row.results) {
      const StoredResult* r = &lb.results[index];
      items += static_cast<double>(r->timing.encoded_items);
      seconds += r->timing.encode_seconds;
      if (r->timing.encoded_tokens < 0) have_tokens = false;
      else tokens += static_cast<double>(r->timing.encoded_tokens);
      row.peak_rss_bytes = std::max(row.peak_rss_bytes, r->timing.peak_rss_bytes);
    }
    if (seconds > 0) {
      row.items_per_second = items / seconds;
      if (have_tokens) row.tokens_per_second = tokens / seconds;
    }
  }
  std::stable_sort(lb.rows.begin(), lb.rows.end(), [](const LeaderboardRow& a, const LeaderboardRow& b) {
    if (a.mean_task.has_value() != b.mean_task.has_value()) return a.mean_task.has_value();
    if (a.mean_task && b.mean_task && *a.mean_task != *b.mean_task) return *a.mean_task > *b.mean_task;
    return a.model.info.spec < b.model.info.spec;
  });
  return lb;
}

}  // namespace embeval::reports
