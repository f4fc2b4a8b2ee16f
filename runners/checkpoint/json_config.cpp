#include "runners/checkpoint/json_config.h"

#include <fstream>

#include "datasets/jsonl_reader.h"
#include "harness/error.h"

namespace embeval {

JsonConfig::JsonConfig(const std::filesystem::path& file, bool allow_array) : path_(file) {
  std::ifstream in(file);
  if (!in) fail("{}: cannot open", file.string());
  try {
    json_ = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    std::string msg = e.what();
    fail("{}: not valid JSON ({})", file.string(), msg.substr(0, msg.find('\n')));
  }
  if (!json_.is_object() && !(allow_array && json_.is_array()))
    fail("{}: expected a JSON {}, got {}", file.string(), allow_array ? "object or array" : "object",
         data::json_type_name(json_));
}

void JsonConfig::fail_field(const char* key, const std::string& what) const {
  fail("{}: field \"{}\" {}", path_.string(), key, what);
}

int64_t JsonConfig::get_int(const char* key) const {
  if (!has(key)) fail("{}: missing \"{}\"; expected an integer", path_.string(), key);
  const auto& v = json_[key];
  if (!v.is_number_integer()) fail_field(key, std::string("must be an integer, got ") + data::json_type_name(v));
  return v.get<int64_t>();
}

int64_t JsonConfig::get_int(const char* key, int64_t fallback) const { return has(key) ? get_int(key) : fallback; }

double JsonConfig::get_double(const char* key, double fallback) const {
  if (!has(key)) return fallback;
  const auto& v = json_[key];
  if (!v.is_number()) fail_field(key, std::string("must be a number, got ") + data::json_type_name(v));
  return v.get<double>();
}

std::string JsonConfig::get_string(const char* key) const {
  if (!has(key)) fail("{}: missing \"{}\"; expected a string", path_.string(), key);
  const auto& v = json_[key];
  if (!v.is_string()) fail_field(key, std::string("must be a string, got ") + data::json_type_name(v));
  return v.get<std::string>();
}

std::string JsonConfig::get_string(const char* key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

bool JsonConfig::get_bool(const char* key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = json_[key];
  if (!v.is_boolean()) fail_field(key, std::string("must be true or false, got ") + data::json_type_name(v));
  return v.get<bool>();
}

}  // namespace embeval
