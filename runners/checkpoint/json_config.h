#pragma once
// A checkpoint's small JSON files (config.json, modules.json, 1_Pooling/config.json,
// ...) with typed field access. A missing or mistyped field is a UserError
// naming the file and the field: `dir/config.json: missing "hidden_size"; expected an integer`.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace embeval {

class JsonConfig {
 public:
  // Parses the file; it must hold a JSON object (or an array when allow_array).
  explicit JsonConfig(const std::filesystem::path& file, bool allow_array = false);

  const nlohmann::json& json() const { return json_; }
  const std::filesystem::path& path() const { return path_; }
  bool has(const char* key) const { return json_.is_object() && json_.contains(key) && !json_[key].is_null(); }

  int64_t get_int(const char* key) const;
  int64_t get_int(const char* key, int64_t fallback) const;
  double get_double(const char* key, double fallback) const;
  std::string get_string(const char* key) const;
  std::string get_string(const char* key, const std::string& fallback) const;
  bool get_bool(const char* key, bool fallback) const;

  [[noreturn]] void fail_field(const char* key, const std::string& what) const;

 private:
  std::filesystem::path path_;
  nlohmann::json json_;
};

}  // namespace embeval
