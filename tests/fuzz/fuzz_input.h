#pragma once
// What the fuzz targets share. The readers take paths, as the CLI gives them,
// so an input is written to a file in a folder of this process's own. Bad
// input may only end in a UserError or a DataError (the one-line errors the
// CLI prints): any other exception escapes to libFuzzer or the replay driver
// and counts as a bug, as do crashes, sanitizer reports and EMBEVAL_ASSERTs.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>

#include "datasets/data_error.h"
#include "harness/error.h"

namespace embeval::fuzz {

inline const std::filesystem::path& scratch_root() {
  static const std::filesystem::path root = [] {
    auto p = std::filesystem::temp_directory_path() / ("embeval-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(p);
    return p;
  }();
  return root;
}

inline std::filesystem::path scratch(const std::string& name) {
  auto p = scratch_root() / name;
  std::filesystem::create_directories(p.parent_path());
  return p;
}

inline void write_bytes(const std::filesystem::path& file, const uint8_t* data, size_t size) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

inline std::string read_bytes(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A file an input is about to replace, put back as it was (or removed, if
// there was none) when this goes out of scope: the next input starts from
// the same folder.
struct SavedFile {
  explicit SavedFile(std::filesystem::path f)
      : file(std::move(f)), existed(std::filesystem::exists(file)), bytes(existed ? read_bytes(file) : "") {}
  ~SavedFile() {
    if (existed)
      std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    else
      std::filesystem::remove(file);
  }
  SavedFile(const SavedFile&) = delete;
  SavedFile& operator=(const SavedFile&) = delete;
  const std::filesystem::path file;
  const bool existed;
  const std::string bytes;
};

template <class F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const UserError&) {
  } catch (const data::DataError&) {
  }
}

}  // namespace embeval::fuzz
