#include "harness/embedding_cache.h"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "datasets/sha256.h"
#include "harness/error.h"

namespace embeval {
namespace fs = std::filesystem;
namespace {

constexpr char MAGIC[8] = {'E', 'M', 'B', 'E', 'V', 'C', 'A', 'C'};
constexpr uint32_t VERSION = 1;

// Texts are keyed, and files checked, by SHA-256 in hex.
constexpr size_t DIGEST = 64;
std::string digest(const std::string& bytes) { return data::sha256_hex(bytes); }

template <class T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void put_string(std::string& out, const std::string& s) {
  put(out, static_cast<uint32_t>(s.size()));
  out += s;
}

// Reads from a byte buffer; any overrun is the file's corruption.
struct Reader {
  const std::string& buf;
  size_t pos = 0;
  const fs::path& file;
  template <class T>
  T get() {
    T v{};
    if (pos + sizeof v > buf.size()) fail("{}: corrupt embedding cache file (truncated); delete it", file.string());
    std::memcpy(&v, buf.data() + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
  std::string bytes(size_t n) {
    if (pos + n > buf.size()) fail("{}: corrupt embedding cache file (truncated); delete it", file.string());
    std::string s = buf.substr(pos, n);
    pos += n;
    return s;
  }
};

std::string folder_name(const std::string& fingerprint, const std::string& role, const std::string& prompt) {
  return data::sha256_hex(fingerprint + '\0' + role + '\0' + prompt).substr(0, 32);
}

}  // namespace

EmbeddingCache::EmbeddingCache(fs::path dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_)) fail("{}: cannot create the embedding cache folder", dir_.string());
}

void EmbeddingCache::load_file(const fs::path& file, const std::string& fingerprint, const std::string& role,
                               const std::string& prompt, Slot& slot) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) fail("{}: cannot read the embedding cache file", file.string());
  const std::string buf = ss.str();
  auto corrupt = [&](const char* why) { fail("{}: corrupt embedding cache file ({}); delete it", file.string(), why); };
  if (buf.size() < sizeof MAGIC + DIGEST) corrupt("truncated");
  const size_t body = buf.size() - DIGEST;
  if (digest(buf.substr(0, body)) != buf.substr(body)) corrupt("checksum mismatch");
  if (std::memcmp(buf.data(), MAGIC, sizeof MAGIC) != 0) corrupt("not an embedding cache file");
  Reader r{buf, sizeof MAGIC, file};
  if (r.get<uint32_t>() != VERSION) corrupt("another format version");
  const std::string fp = r.bytes(r.get<uint32_t>()), ro = r.bytes(r.get<uint32_t>()), pr = r.bytes(r.get<uint32_t>());
  if (fp != fingerprint || ro != role || pr != prompt) corrupt("it belongs to another model or prompt");
  const auto dim = r.get<int64_t>();
  const auto n = r.get<uint64_t>();
  if (dim != slot.dim) corrupt("another dimension");
  if (n * (DIGEST + static_cast<uint64_t>(dim) * sizeof(float)) != body - r.pos) corrupt("wrong size");
  for (uint64_t i = 0; i < n; ++i) {
    std::string key = r.bytes(DIGEST);
    std::vector<float> v(static_cast<size_t>(dim));
    std::memcpy(v.data(), buf.data() + r.pos, v.size() * sizeof(float));
    r.pos += v.size() * sizeof(float);
    slot.vectors[std::move(key)] = std::move(v);
  }
}

EmbeddingCache::Slot& EmbeddingCache::slot(const std::string& fingerprint, const std::string& role,
                                           const std::string& prompt, int64_t dim) {
  const std::string name = folder_name(fingerprint, role, prompt);
  auto [it, inserted] = slots_.try_emplace(name);
  if (!inserted) return it->second;
  it->second.dim = dim;
  std::error_code ec;
  const fs::path folder = dir_ / name;
  if (fs::is_directory(folder, ec))
    for (const auto& e : fs::directory_iterator(folder))
      if (e.path().extension() == ".vec") load_file(e.path(), fingerprint, role, prompt, it->second);
  return it->second;
}

std::vector<bool> EmbeddingCache::lookup(const std::string& fingerprint, const std::string& role,
                                         const std::string& prompt, int64_t dim, const std::vector<std::string>& texts,
                                         Matrix& out) {
  Slot& s = slot(fingerprint, role, prompt, dim);
  std::vector<bool> found(texts.size(), false);
  for (size_t i = 0; i < texts.size(); ++i) {
    auto it = s.vectors.find(digest(texts[i]));
    if (it == s.vectors.end()) continue;
    std::memcpy(out.row(static_cast<int64_t>(i)), it->second.data(), static_cast<size_t>(dim) * sizeof(float));
    found[i] = true;
  }
  return found;
}

void EmbeddingCache::store(const std::string& fingerprint, const std::string& role, const std::string& prompt,
                           const std::vector<std::string>& texts, const Matrix& vectors) {
  if (texts.empty()) return;
  Slot& s = slot(fingerprint, role, prompt, vectors.cols);
  std::string buf(MAGIC, sizeof MAGIC);
  put(buf, VERSION);
  put_string(buf, fingerprint);
  put_string(buf, role);
  put_string(buf, prompt);
  put(buf, static_cast<int64_t>(vectors.cols));
  put(buf, static_cast<uint64_t>(texts.size()));
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string key = digest(texts[i]);
    buf += key;
    const float* v = vectors.row(static_cast<int64_t>(i));
    buf.append(reinterpret_cast<const char*>(v), static_cast<size_t>(vectors.cols) * sizeof(float));
    s.vectors[key] = std::vector<float>(v, v + vectors.cols);
  }
  buf += digest(buf);
  const fs::path folder = dir_ / folder_name(fingerprint, role, prompt);
  std::error_code ec;
  fs::create_directories(folder, ec);
  const fs::path file = folder / (data::sha256_hex(buf) + ".vec");
  const fs::path tmp = folder / (file.filename().string() + ".tmp" + std::to_string(::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      fail("{}: cannot write the embedding cache file", tmp.string());
    }
  }
  fs::rename(tmp, file, ec);
  if (ec) fail("{}: cannot write the embedding cache file: {}", file.string(), ec.message());
}

}  // namespace embeval
