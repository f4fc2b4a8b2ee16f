#include "datasets/task_data.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <unordered_set>

#include <fmt/format.h>

#include "datasets/data_error.h"
#include "datasets/jsonl_reader.h"
#include "datasets/text_util.h"

namespace embeval::data {
namespace fs = std::filesystem;

namespace {

fs::path split_file(const TaskSpec& spec) { return spec.dir / (spec.eval_split + ".jsonl"); }

[[noreturn]] void empty_split(const fs::path& file) {
  throw DataError(fmt::format("{}: split is empty; expected at least one row", file.string()));
}

struct RawLabelled {
  std::vector<std::string> text, label;
  bool all_integer = true;
};

RawLabelled read_labelled(const fs::path& file) {
  RawLabelled out;
  JsonlReader r(file);
  nlohmann::json row;
  while (r.next(row)) {
    out.text.push_back(r.get_string(row, "text"));
    const auto& v = row.contains("label") ? row["label"] : row;
    if (!(v.is_number_integer() || v.is_number_unsigned())) out.all_integer = false;
    out.label.push_back(r.get_label(row, "label"));
  }
  if (out.text.empty()) empty_split(file);
  return out;
}

}  // namespace

StsData load_sts(const TaskSpec& spec) {
  StsData d;
  fs::path file = split_file(spec);
  JsonlReader r(file);
  nlohmann::json row;
  while (r.next(row)) {
    d.sentence1.push_back(r.get_string(row, "sentence1"));
    d.sentence2.push_back(r.get_string(row, "sentence2"));
    d.score.push_back(r.get_number(row, "score"));
  }
  if (d.score.empty()) empty_split(file);
  return d;
}

PairData load_pairs(const TaskSpec& spec) {
  PairData d;
  fs::path file = split_file(spec);
  JsonlReader r(file);
  nlohmann::json row;
  while (r.next(row)) {
    d.sentence1.push_back(r.get_string(row, "sentence1"));
    d.sentence2.push_back(r.get_string(row, "sentence2"));
    int64_t label = r.get_integer(row, "label");
    if (label != 0 && label != 1) r.fail(fmt::format("field \"label\" = {}; expected 0 or 1", label));
    d.label.push_back(static_cast<int>(label));
  }
  if (d.label.empty()) empty_split(file);
  return d;
}

ClassificationData load_classification(const TaskSpec& spec) {
  fs::path train_file = spec.dir / "train.jsonl", test_file = split_file(spec);
  RawLabelled train = read_labelled(train_file);
  RawLabelled test = read_labelled(test_file);
  bool numeric = train.all_integer && test.all_integer;

  // np.unique over train and test labels.
  std::vector<std::string> classes(train.label.begin(), train.label.end());
  classes.insert(classes.end(), test.label.begin(), test.label.end());
  auto less = [numeric](const std::string& a, const std::string& b) {
    return numeric ? std::stoll(a) < std::stoll(b) : a < b;
  };
  std::sort(classes.begin(), classes.end(), less);
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  std::vector<std::string> train_classes(train.label.begin(), train.label.end());
  std::sort(train_classes.begin(), train_classes.end());
  train_classes.erase(std::unique(train_classes.begin(), train_classes.end()), train_classes.end());
  if (train_classes.size() < 2)
    throw DataError(fmt::format("{}: only one class ({}) in the training split; expected at least 2",
                                train_file.string(), train_classes.front()));

  auto index_of = [&](const std::string& label) {
    return static_cast<int>(std::lower_bound(classes.begin(), classes.end(), label, less) - classes.begin());
  };
  ClassificationData d;
  d.classes = classes;
  d.train_text = std::move(train.text);
  d.test_text = std::move(test.text);
  for (size_t i = 0; i < train.label.size(); ++i) d.train_label.push_back(index_of(train.label[i]));
  for (size_t i = 0; i < test.label.size(); ++i) d.test_label.push_back(index_of(test.label[i]));
  return d;
}

std::vector<ClusterSet> load_clustering(const TaskSpec& spec) {
  std::vector<ClusterSet> sets;
  fs::path file = split_file(spec);
  JsonlReader r(file);
  nlohmann::json row;
  while (r.next(row)) {
    ClusterSet s;
    s.sentences = r.get_string_list(row, "sentences");
    const auto& labels = row.contains("labels") ? row["labels"] : nlohmann::json();
    if (!labels.is_array()) r.fail("field \"labels\" must be an array");
    for (size_t i = 0; i < labels.size(); ++i) {
      if (labels[i].is_string()) s.labels.push_back(labels[i].get<std::string>());
      else if (labels[i].is_number_integer() || labels[i].is_number_unsigned())
        s.labels.push_back(std::to_string(labels[i].get<int64_t>()));
      else r.fail(fmt::format("field \"labels\"[{}] must be a string or an integer, got {}", i, json_type_name(labels[i])));
    }
    if (s.labels.size() != s.sentences.size())
      r.fail(fmt::format("{} sentences but {} labels; expected one label per sentence", s.sentences.size(),
                         s.labels.size()));
    if (s.sentences.empty()) r.fail("empty cluster set");
    sets.push_back(std::move(s));
  }
  if (sets.empty()) empty_split(file);
  return sets;
}

std::vector<RerankingSample> load_reranking(const TaskSpec& spec) {
  std::vector<RerankingSample> out;
  fs::path file = split_file(spec);
  JsonlReader r(file);
  nlohmann::json row;
  while (r.next(row)) {
    RerankingSample s;
    s.query = r.get_string(row, "query");
    s.positive = r.get_string_list(row, "positive");
    s.negative = r.get_string_list(row, "negative");
    out.push_back(std::move(s));
  }
  if (out.empty()) empty_split(file);
  return out;
}

RetrievalData load_retrieval(const TaskSpec& spec) {
  RetrievalData d;
  std::unordered_set<std::string> corpus_seen, query_seen;
  {
    fs::path file = spec.dir / "corpus.jsonl";
    JsonlReader r(file);
    nlohmann::json row;
    while (r.next(row)) {
      std::string id = r.get_string(row, "_id");
      if (!corpus_seen.insert(id).second) r.fail(fmt::format("duplicate _id \"{}\"", id));
      std::string text = r.get_string(row, "text");
      if (r.has(row, "title") && !row["title"].is_null()) text = r.get_string(row, "title") + " " + text;
      d.corpus_ids.push_back(std::move(id));
      d.corpus_texts.push_back(python_strip(text));
    }
    if (d.corpus_ids.empty()) empty_split(file);
  }
  std::vector<std::string> all_query_ids, all_query_texts;
  {
    fs::path file = spec.dir / "queries.jsonl";
    JsonlReader r(file);
    nlohmann::json row;
    while (r.next(row)) {
      std::string id = r.get_string(row, "_id");
      if (!query_seen.insert(id).second) r.fail(fmt::format("duplicate _id \"{}\"", id));
      all_query_ids.push_back(std::move(id));
      all_query_texts.push_back(r.get_string(row, "text"));
    }
    if (all_query_ids.empty()) empty_split(file);
  }
  {
    fs::path file = spec.dir / "qrels" / (spec.eval_split + ".tsv");
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) throw DataError(fmt::format("{}: file not found", file.string()));
    std::ifstream in(file, std::ios::binary);
    std::string line;
    int64_t lineno = 0;
    auto fail = [&](const std::string& what) {
      throw DataError(fmt::format("{}:{}: {}", file.string(), lineno, what));
    };
    while (std::getline(in, line)) {
      ++lineno;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      std::vector<std::string> cols;
      size_t start = 0;
      for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
        cols.push_back(line.substr(start, tab - start));
      cols.push_back(line.substr(start));
      if (lineno == 1 && cols.size() >= 1 && cols[0] == "query-id") continue;  // header
      if (cols.size() != 3) fail(fmt::format("{} tab-separated columns; expected 3 (query-id, corpus-id, score)", cols.size()));
      if (!query_seen.count(cols[0])) fail(fmt::format("unknown query-id \"{}\" (not in queries.jsonl)", cols[0]));
      if (!corpus_seen.count(cols[1])) fail(fmt::format("unknown corpus-id \"{}\" (not in corpus.jsonl)", cols[1]));
      int score = 0;
      try {
        size_t used = 0;
        long long v = std::stoll(cols[2], &used);
        if (used != cols[2].size() || v < -1000000 || v > 1000000) throw std::invalid_argument("range");
        score = static_cast<int>(v);
      } catch (const std::exception&) {
        fail(fmt::format("score \"{}\" is not an integer", cols[2]));
      }
      auto& rel = d.qrels[cols[0]];
      if (rel.count(cols[1])) fail(fmt::format("duplicate judgement for query \"{}\", document \"{}\"", cols[0], cols[1]));
      rel[cols[1]] = score;
    }
    if (d.qrels.empty()) empty_split(file);
  }
  // Evaluate only the queries that have judgements, in queries.jsonl order.
  for (size_t i = 0; i < all_query_ids.size(); ++i) {
    if (d.qrels.count(all_query_ids[i])) {
      d.query_ids.push_back(all_query_ids[i]);
      d.query_texts.push_back(all_query_texts[i]);
    }
  }
  return d;
}

}  // namespace embeval::data
