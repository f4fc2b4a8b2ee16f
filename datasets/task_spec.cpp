#include "datasets/task_spec.h"

#include <fstream>

#include <fmt/format.h>

#include "datasets/data_error.h"
#include "datasets/jsonl_reader.h"
#include "datasets/sha256.h"

namespace embeval::data {
namespace fs = std::filesystem;

namespace {

struct SpecReader {
  const fs::path& file;
  const nlohmann::json& j;

  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(fmt::format("{}: {}", file.string(), what));
  }
  const nlohmann::json* find(const char* key) const {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  std::string required_string(const char* key) const {
    const auto* v = find(key);
    if (!v) fail(fmt::format("missing field \"{}\"", key));
    if (!v->is_string() || v->get<std::string>().empty())
      fail(fmt::format("field \"{}\" must be a non-empty string, got {}", key, json_type_name(*v)));
    return v->get<std::string>();
  }
  void optional_string(const char* key, std::string* out) const {
    if (const auto* v = find(key)) {
      if (!v->is_string()) fail(fmt::format("field \"{}\" must be a string, got {}", key, json_type_name(*v)));
      *out = v->get<std::string>();
    }
  }
  void optional_int(const char* key, int* out, int min_value) const {
    if (const auto* v = find(key)) {
      if (!v->is_number_integer() && !v->is_number_unsigned())
        fail(fmt::format("field \"{}\" must be an integer, got {}", key, json_type_name(*v)));
      int64_t x = v->get<int64_t>();
      if (x < min_value || x > 1000000000)
        fail(fmt::format("field \"{}\" = {} is out of range; expected >= {}", key, x, min_value));
      *out = static_cast<int>(x);
    }
  }
  void optional_bool(const char* key, bool* out) const {
    if (const auto* v = find(key)) {
      if (!v->is_boolean()) fail(fmt::format("field \"{}\" must be true or false, got {}", key, json_type_name(*v)));
      *out = v->get<bool>();
    }
  }
};

}  // namespace

TaskSpec read_task_spec(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError(fmt::format("{}: task folder not found", dir.string()));
  fs::path file = dir / "task.json";
  if (!fs::is_regular_file(file, ec)) throw DataError(fmt::format("{}: missing task.json", file.string()));
  std::ifstream in(file, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: cannot open for reading", file.string()));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: malformed JSON: {}", file.string(), json_error_text(e)));
  }
  SpecReader r{file, j};
  if (!j.is_object()) r.fail(fmt::format("expected a JSON object, got {}", json_type_name(j)));

  TaskSpec s;
  s.dir = dir;
  s.raw = j;
  s.name = r.required_string("name");
  s.type = r.required_string("type");
  s.language = r.required_string("language");
  s.main_score = r.required_string("main_score");
  r.optional_string("eval_split", &s.eval_split);
  if (s.eval_split.empty() || s.eval_split.find('/') != std::string::npos)
    r.fail(fmt::format("field \"eval_split\" = \"{}\" is not a split name", s.eval_split));
  r.optional_int("version", &s.version, 1);
  r.optional_int("samples_per_label", &s.samples_per_label, 1);
  r.optional_int("n_experiments", &s.n_experiments, 1);
  r.optional_int("batch_size", &s.batch_size, 1);
  r.optional_bool("ignore_identical_ids", &s.ignore_identical_ids);
  r.optional_string("query_prompt", &s.query_prompt);
  r.optional_string("passage_prompt", &s.passage_prompt);
  r.optional_string("license", &s.license);
  r.optional_string("mteb_name", &s.mteb_name);
  if (const auto* v = r.find("protocol")) {
    if (!scoring_protocol_applies(s.type))
      r.fail(fmt::format("field \"protocol\" applies to Classification and Clustering tasks only, not {}", s.type));
    std::optional<ScoringProtocol> p = v->is_string() ? parse_scoring_protocol(v->get<std::string>()) : std::nullopt;
    if (!p) r.fail(fmt::format("field \"protocol\" = {} is not a scoring protocol; expected {}", v->dump(), scoring_protocol_choices()));
    s.protocol = *p;
  }
  if (const auto* v = r.find("label_names")) {
    if (!v->is_array()) r.fail("field \"label_names\" must be an array of strings");
    for (const auto& x : *v) {
      if (!x.is_string()) r.fail("field \"label_names\" must be an array of strings");
      s.label_names.push_back(x.get<std::string>());
    }
  }
  if (const auto* src = r.find("source"); src && src->is_object()) {
    if (src->contains("repo") && (*src)["repo"].is_string()) s.source_repo = (*src)["repo"].get<std::string>();
    if (src->contains("commit") && (*src)["commit"].is_string()) s.source_commit = (*src)["commit"].get<std::string>();
  }
  return s;
}

std::vector<fs::path> task_data_files(const TaskSpec& spec) {
  const fs::path& d = spec.dir;
  const std::string split = spec.eval_split;
  if (spec.type == "Retrieval")
    return {d / "corpus.jsonl", d / "queries.jsonl", d / "qrels" / (split + ".tsv")};
  if (spec.type == "Classification") return {d / "train.jsonl", d / (split + ".jsonl")};
  if (spec.type == "STS" || spec.type == "PairClassification" || spec.type == "Clustering" ||
      spec.type == "Reranking")
    return {d / (split + ".jsonl")};
  return {};
}

std::string dataset_checksum(const TaskSpec& spec) {
  Sha256 h;
  auto add = [&](const fs::path& p) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) throw DataError(fmt::format("{}: file not found", p.string()));
    // Name and length prefix so that moving bytes between files changes the hash.
    h.update(fmt::format("{}\n{}\n", p.filename().string(), fs::file_size(p)));
    h.update_file(p);
  };
  add(spec.dir / "task.json");
  for (const auto& f : task_data_files(spec)) add(f);
  return h.hex_digest();
}

}  // namespace embeval::data
