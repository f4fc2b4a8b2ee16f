#include "reports/mteb_json_report.h"

#include <fstream>
#include <map>

#include <fmt/format.h>

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

std::string safe_component(std::string s) {
  for (char& c : s)
    if (c == '/' || c == '\\' || c == ':' || c == '\0') c = '_';
  if (s.empty() || s == "." || s == "..") s = "_" + s;
  return s;
}

}  // namespace

std::string mteb_model_folder(const EncoderInfo& info) {
  std::string name = info.name;
  for (size_t p; (p = name.find('/')) != std::string::npos;) name.replace(p, 1, "__");
  if (!info.quantization.empty()) name += "__" + info.quantization;
  if (info.dtype != "fp32") name += "__" + info.dtype;
  if (info.device != "cpu") name += "__" + info.device;
  return safe_component(name);
}

nlohmann::ordered_json mteb_task_result(const StoredResult& r) {
  nlohmann::ordered_json split = r.scores;
  split["main_score"] = r.main_score ? nlohmann::ordered_json(*r.main_score) : nlohmann::ordered_json();
  split["hf_subset"] = "default";
  split["languages"] = nlohmann::ordered_json::array({mteb_language(r.task.task.language)});
  nlohmann::ordered_json j;
  j["dataset_revision"] = r.task.task.dataset_revision.empty() ? r.task.task.dataset_checksum
                                                               : r.task.task.dataset_revision;
  j["task_name"] = r.task.task.name;
  j["mteb_version"] = MTEB_FORMAT_VERSION;
  j["scores"][r.task.task.split] = nlohmann::ordered_json::array({split});
  j["evaluation_time"] = r.evaluation_seconds;
  j["kg_co2_emissions"] = nullptr;
  return j;
}

nlohmann::ordered_json mteb_model_meta(const EncoderInfo& info) {
  nlohmann::ordered_json j;
  j["name"] = info.name;
  j["revision"] = info.revision.empty() ? "no_revision_available" : info.revision;
  j["release_date"] = nullptr;
  j["languages"] = nullptr;
  j["n_parameters"] = info.n_parameters > 0 ? nlohmann::ordered_json(info.n_parameters) : nlohmann::ordered_json();
  j["max_tokens"] = info.max_tokens > 0 ? nlohmann::ordered_json(info.max_tokens) : nlohmann::ordered_json();
  j["embed_dim"] = info.dim;
  j["similarity_fn_name"] = similarity_name(info.similarity);
  j["framework"] = nlohmann::ordered_json::array({"embeval"});
  j["embeval_spec"] = info.spec;
  j["embeval_fingerprint"] = info.fingerprint;
  j["dtype"] = info.dtype;
  j["quantization"] = info.quantization.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(info.quantization);
  j["device"] = info.device;
  return j;
}

std::vector<fs::path> write_mteb_results(const std::vector<StoredResult>& results, const fs::path& dir) {
  std::vector<fs::path> written;
  auto write = [&](const fs::path& file, const nlohmann::ordered_json& j) {
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    if (ec) fail("{}: cannot create folder: {}", file.parent_path().string(), ec.message());
    std::ofstream out(file, std::ios::binary);
    out << j.dump(4) << "\n";
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
