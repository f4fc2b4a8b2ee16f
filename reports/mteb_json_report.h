#pragma once
// MTEB-compatible result files, laid out like the MTEB results repository:
// <dir>/<model>/<revision>/<Task>.json plus model_meta.json. The format
// follows mteb 1.39.7's TaskResult (dataset_revision, task_name,
// mteb_version, scores{split: [{main_score, hf_subset, languages, ...}]},
// evaluation_time, kg_co2_emissions), scores rounded to 6 decimals and
// written with indent 2 as TaskResult.to_disk does; model_meta.json has the
// keys of its ModelMeta.to_dict(), embeval's spec in loader_kwargs.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/result_store.h"

namespace embeval::reports {

constexpr const char* MTEB_FORMAT_VERSION = "1.39.7";

// Python's round(v, 6), which MTEB applies to every float of `scores` when it
// writes a result file (TaskResult.to_disk).
double mteb_round(double v);
// MTEB language tag for a task.json language ("zh" -> "cmn-Hans").
std::string mteb_language(const std::string& iso);
// Folder name of a model: its name with "/" as "__", plus the variant
// (quantization, dtype, device) when not the plain fp32 CPU model.
std::string mteb_model_folder(const EncoderInfo& info);
nlohmann::ordered_json mteb_task_result(const StoredResult& r);
nlohmann::ordered_json mteb_model_meta(const EncoderInfo& info);
// Writes every latest result; returns the files written.
std::vector<std::filesystem::path> write_mteb_results(const std::vector<StoredResult>& results,
                                                      const std::filesystem::path& dir);

}  // namespace embeval::reports
