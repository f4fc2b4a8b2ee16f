#include "datasets/jsonl_reader.h"

#include <cmath>

#include <fmt/format.h>

#include "datasets/data_error.h"
#include "datasets/text_util.h"

namespace embeval::data {

const char* json_type_name(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::boolean: return "boolean";
    case nlohmann::json::value_t::string: return "string";
    case nlohmann::json::value_t::array: return "array";
    case nlohmann::json::value_t::object: return "object";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "integer";
    case nlohmann::json::value_t::number_float: return "number";
    default: return "unknown";
  }
}

std::string json_error_text(const nlohmann::json::exception& e) {
  std::string msg = e.what();
  if (msg.rfind("[json.exception.", 0) == 0) {
    const auto end = msg.find("] ");
    if (end != std::string::npos) msg.erase(0, end + 2);
  }
  return msg;
}

JsonlReader::JsonlReader(const std::filesystem::path& path) : path_(path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw DataError(fmt::format("{}: file not found", path.string()));
  in_.open(path, std::ios::binary);
  if (!in_) throw DataError(fmt::format("{}: cannot open for reading", path.string()));
}

void JsonlReader::fail(const std::string& what) const {
  throw DataError(fmt::format("{}:{}: {}", path_.string(), line_, what));
}

bool JsonlReader::next(nlohmann::json& row) {
  while (std::getline(in_, buffer_)) {
    ++line_;
    if (!buffer_.empty() && buffer_.back() == '\r') buffer_.pop_back();
    if (line_ == 1 && buffer_.rfind("\xEF\xBB\xBF", 0) == 0) buffer_.erase(0, 3);
    if (buffer_.find_first_not_of(" \t") == std::string::npos) continue;
    if (!is_valid_utf8(buffer_)) fail("invalid UTF-8");
    try {
      row = nlohmann::json::parse(buffer_);
    } catch (const nlohmann::json::exception& e) {
      fail("malformed JSON: " + json_error_text(e));
    }
    if (!row.is_object()) fail(fmt::format("expected a JSON object, got {}", json_type_name(row)));
    return true;
  }
  if (in_.bad()) fail("read error");
  return false;
}

const nlohmann::json& JsonlReader::field(const nlohmann::json& row, const char* name) const {
  auto it = row.find(name);
  if (it == row.end()) fail(fmt::format("missing field \"{}\"", name));
  return *it;
}

std::string JsonlReader::get_string(const nlohmann::json& row, const char* name) const {
  const auto& v = field(row, name);
  if (!v.is_string()) fail(fmt::format("field \"{}\" must be a string, got {}", name, json_type_name(v)));
  return v.get<std::string>();
}

double JsonlReader::get_number(const nlohmann::json& row, const char* name) const {
  const auto& v = field(row, name);
  if (!v.is_number()) fail(fmt::format("field \"{}\" must be a number, got {}", name, json_type_name(v)));
  double d = v.get<double>();
  if (!std::isfinite(d)) fail(fmt::format("field \"{}\" is not finite", name));
  return d;
}

int64_t JsonlReader::get_integer(const nlohmann::json& row, const char* name) const {
  const auto& v = field(row, name);
  if (v.is_number_integer() || v.is_number_unsigned()) return v.get<int64_t>();
  // 1.0 is accepted as 1 (files written by pandas often look like that).
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  fail(fmt::format("field \"{}\" must be an integer, got {}{}", name, json_type_name(v),
                   v.is_number() ? " " + v.dump() : ""));
}

std::vector<std::string> JsonlReader::get_string_list(const nlohmann::json& row, const char* name) const {
  const auto& v = field(row, name);
  if (!v.is_array()) fail(fmt::format("field \"{}\" must be an array of strings, got {}", name, json_type_name(v)));
  std::vector<std::string> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string())
      fail(fmt::format("field \"{}\"[{}] must be a string, got {}", name, i, json_type_name(v[i])));
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

std::string JsonlReader::get_label(const nlohmann::json& row, const char* name) const {
  const auto& v = field(row, name);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer() || v.is_number_unsigned()) return std::to_string(v.get<int64_t>());
  fail(fmt::format("field \"{}\" must be a string or an integer label, got {}", name, json_type_name(v)));
}

}  // namespace embeval::data
