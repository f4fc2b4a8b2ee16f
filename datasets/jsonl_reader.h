#pragma once
// Streaming reader for JSON Lines task files. Every error names the file and
// the 1-based line: `corpus.jsonl:17: field "text" must be a string, got number`.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace embeval::data {

class JsonlReader {
 public:
  explicit JsonlReader(const std::filesystem::path& path);

  // Reads the next non-blank line into `row` (which must be a JSON object).
  // Returns false at end of file.
  bool next(nlohmann::json& row);

  // Typed field access on the current row; a missing field or a wrong type
  // throws DataError naming file:line.
  std::string get_string(const nlohmann::json& row, const char* field) const;
  double get_number(const nlohmann::json& row, const char* field) const;
  int64_t get_integer(const nlohmann::json& row, const char* field) const;
  std::vector<std::string> get_string_list(const nlohmann::json& row, const char* field) const;
  // A label that may be written as a string or an integer; returned as text.
  std::string get_label(const nlohmann::json& row, const char* field) const;
  bool has(const nlohmann::json& row, const char* field) const { return row.contains(field); }

  [[noreturn]] void fail(const std::string& what) const;
  const std::filesystem::path& path() const { return path_; }
  int64_t line() const { return line_; }

 private:
  const nlohmann::json& field(const nlohmann::json& row, const char* name) const;
  std::filesystem::path path_;
  std::ifstream in_;
  std::string buffer_;
  int64_t line_ = 0;
};

// The JSON type name used in error messages ("string", "number", ...).
const char* json_type_name(const nlohmann::json& v);

// nlohmann's message without its "[json.exception.parse_error.101] " tag:
// "parse error at line 1, column 9: ...", "number overflow parsing '1e999'".
// Catch nlohmann::json::exception around a parse, not only parse_error: a
// number too large for a double is an out_of_range.
std::string json_error_text(const nlohmann::json::exception& e);

}  // namespace embeval::data
