#pragma once
// Streaming SHA-256 (OpenSSL) for dataset and checkpoint fingerprints.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace embeval::data {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view bytes);
  void update_file(const std::filesystem::path& path);  // DataError if unreadable
  std::string hex_digest();                             // finishes the hash

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view bytes);
std::string sha256_file(const std::filesystem::path& path);

}  // namespace embeval::data
