#include "reports/mteb_json_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "datasets/scoring_protocol.h"
#include "harness/error.h"

namespace embeval::reports {
namespace fs = std::filesystem;

std::string mteb_language(const std::string& iso) {
  static const std::map<std::string, std::string> tags = {
      {"zh", "cmn-Hans"}, {"zh-Hans", "cmn-Hans"}, {"en", "eng-Latn"}, {"multilingual", "mul"}};
  auto it = tags.find(iso);
  return it == tags.end() ? iso : it->second;
}

namespace {

// One path component that every file system takes: the characters Windows
// or a shell would trip over (and control characters) become '_'.
std::string safe_component(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || std::strchr("/\\:<>\"|?*", c)) c = '_';
  if (s.empty() || s == "." || s == "..") s = "_" + s;
  return s;
}

// What tells a variant apart from the plain fp32 CPU model, as a name suffix.
std::string variant_suffix(const EncoderInfo& info) {
  std::string s;
  if (!info.quantization.empty()) s += "__" + info.quantization;
  if (!info.dtype.empty() && info.dtype != "fp32") s += "__" + info.dtype;
  if (info.device != "cpu") s += "__" + info.device;
  return s.empty() ? s : safe_component(s);
}

}  // namespace

std::string mteb_model_folder(const EncoderInfo& info) {
  // ModelMeta.model_name_as_path: "/" -> "__", " " -> "_".
  std::string name = info.name;
  for (size_t p; (p = name.find('/')) != std::string::npos;) name.replace(p, 1, "__");
  for (char& c : name)
    if (c == ' ') c = '_';
  return safe_component(name + variant_suffix(info));
}

double mteb_round(double v) {
  // Python's round(v, 6) rounds the exact binary value half-to-even and
  // returns the nearest double to the decimal result; glibc's printf rounds
  // the exact value in the current (to-nearest-even) mode, so this is the same.
  if (!std::isfinite(v)) return v;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return std::strtod(buf, nullptr);
}

namespace {

// TaskResult._round_scores: every float, at any depth; integers stay.
void round_scores(nlohmann::ordered_json& j) {
  if (j.is_number_float()) j = mteb_round(j.get<double>());
  else if (j.is_object() || j.is_array())
    for (auto& v : j) round_scores(v);
}

bool is_reference(const EncoderInfo& info) {
  return info.quantization.empty() && (info.dtype.empty() || info.dtype == "fp32");
}

}  // namespace

nlohmann::ordered_json mteb_task_result(const StoredResult& r) {
  nlohmann::ordered_json split;
  for (const auto& [key, value] : r.scores.items())
    if (key.rfind("embeval_", 0) != 0) split[key] = value;  // our own extras are not MTEB metrics
  split["main_score"] = r.main_score ? nlohmann::ordered_json(*r.main_score) : nlohmann::ordered_json();
  split["hf_subset"] = "default";
  split["languages"] = nlohmann::ordered_json::array({mteb_language(r.task.task.language)});
  round_scores(split);
  nlohmann::ordered_json j;
  j["dataset_revision"] = r.task.task.dataset_revision.empty() ? r.task.task.dataset_checksum
                                                               : r.task.task.dataset_revision;
  j["task_name"] = r.task.task.name;
  j["mteb_version"] = MTEB_FORMAT_VERSION;
  j["scores"][r.task.task.split] = nlohmann::ordered_json::array({split});
  j["evaluation_time"] = r.evaluation_seconds;
  j["kg_co2_emissions"] = nullptr;
  // Not an MTEB key: which data the scores belong to, so that a bundled
  // subset (TNews-sub2k) is not taken for the C-MTEB split of its mteb_name.
  const TaskRecord& t = r.task.task;
  nlohmann::ordered_json d;
  d["name"] = t.name;
  d["mteb_name"] = t.mteb_name.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(t.mteb_name);
  d["is_mteb_split"] = t.is_mteb_split();
  d["sha256"] = t.dataset_checksum;
  d["source"] = t.source_repo;
  d["source_commit"] = t.dataset_revision;
  d["license"] = t.license;
  j["embeval_dataset"] = d;
  // Also not MTEB's: which scikit-learn release's numerics a Classification
  // or Clustering score reproduces (other releases give other scores).
  if (!r.protocol.empty()) {
    nlohmann::ordered_json p;
    p["protocol"] = r.protocol;
    if (auto known = data::parse_scoring_protocol(r.protocol))
      p["reproduces"] = "MTEB " + std::string(MTEB_FORMAT_VERSION) + " with " + data::scoring_protocol_releases(*known);
    j["embeval_scoring"] = p;
  }
  return j;
}

nlohmann::ordered_json mteb_model_meta(const EncoderInfo& info) {
  using J = nlohmann::ordered_json;
  // A variant's name matches its folder (MTEB's model_name_as_path maps "/"
  // to "__"), so variants of one checkpoint never merge when MTEB loads them.
  J j;
  j["name"] = info.name + variant_suffix(info);
  j["revision"] = info.revision.empty() ? "no_revision_available" : info.revision;
  j["release_date"] = nullptr;
  j["languages"] = nullptr;
  // embeval's loader is its spec factory; these say exactly what ran.
  j["loader_kwargs"] = J{{"embeval_spec", info.spec},
                         {"embeval_fingerprint", info.fingerprint},
                         {"device", info.device},
                         {"dtype", info.dtype},
                         {"quantization", info.quantization.empty() ? J() : J(info.quantization)}};
  j["n_parameters"] = info.n_parameters > 0 ? J(info.n_parameters) : J();
  // ModelMeta.calculate_memory_usage_mb without safetensors: fp32 bytes.
  j["memory_usage_mb"] = info.n_parameters > 0 && is_reference(info)
                             ? J(std::nearbyint(static_cast<double>(info.n_parameters) * 4.0 / (1024.0 * 1024.0)))
                             : J();
  j["max_tokens"] = info.max_tokens > 0 ? J(static_cast<double>(info.max_tokens)) : J();
  j["embed_dim"] = info.dim;
  j["license"] = nullptr;
  j["open_weights"] = nullptr;
  j["public_training_code"] = nullptr;
  j["public_training_data"] = nullptr;
  j["framework"] = J::array();
  j["reference"] = nullptr;
  // MTEB's ScoringFunction knows cosine and dot only.
  j["similarity_fn_name"] = info.similarity == SIMILARITY_COSINE ? J("cosine")
                            : info.similarity == SIMILARITY_DOT  ? J("dot")
                                                                 : J();
  j["use_instructions"] = nullptr;
  j["training_datasets"] = nullptr;
  j["adapted_from"] = is_reference(info) ? J() : J(info.name);
  j["superseded_by"] = nullptr;
  j["modalities"] = J::array({"text"});
  j["citation"] = nullptr;
  j["loader"] = nullptr;
  return j;
}

std::vector<fs::path> write_mteb_results(const std::vector<StoredResult>& results, const fs::path& dir) {
  std::vector<fs::path> written;
  auto write = [&](const fs::path& file, const nlohmann::ordered_json& j) {
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    if (ec) fail("{}: cannot create folder: {}", file.parent_path().string(), ec.message());
    std::ofstream out(file, std::ios::binary);
    out << j.dump(2);  // json.dump(indent=2), as MTEB writes them
    if (!out) fail("{}: cannot write", file.string());
    written.push_back(file);
  };
  std::map<int64_t, fs::path> model_dirs;
  for (const auto& r : results) {
    const EncoderInfo& m = r.model.info;
    fs::path mdir = dir / mteb_model_folder(m) / safe_component(m.revision.empty() ? "no_revision_available" : m.revision);
    if (model_dirs.emplace(r.model.id, mdir).second) write(mdir / "model_meta.json", mteb_model_meta(m));
    write(mdir / (safe_component(r.task.task.name) + ".json"), mteb_task_result(r));
  }
  return written;
}

}  // namespace embeval::reports
