#include "harness/fidelity.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include "datasets/sha256.h"
#include "harness/error.h"

namespace embeval {
namespace {

constexpr char MAGIC[8] = {'E', 'M', 'B', 'E', 'V', 'A', 'L', 'V'};
constexpr uint32_t VERSION = 1;

template <class T>
void put(std::ofstream& out, const T& v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof v);
}

template <class T>
T get(std::ifstream& in, const std::filesystem::path& file) {
  T v{};
  if (!in.read(reinterpret_cast<char*>(&v), sizeof v)) fail("{}: truncated vectors file", file.string());
  return v;
}

}  // namespace

std::string encoded_set_digest(const std::string& prompt, const std::vector<std::string>& texts) {
  data::Sha256 h;
  h.update(prompt);
  h.update(std::string(1, '\0'));
  for (const auto& t : texts) {
    h.update(t);
    h.update(std::string(1, '\0'));
  }
  return h.hex_digest();
}

void save_encoded_sets(const std::filesystem::path& file, const std::vector<EncodedSet>& sets) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) fail("{}: cannot write", file.string());
  out.write(MAGIC, sizeof MAGIC);
  put(out, VERSION);
  put(out, static_cast<uint64_t>(sets.size()));
  for (const EncodedSet& s : sets) {
    put(out, static_cast<uint32_t>(s.role));
    put(out, static_cast<uint32_t>(s.digest.size()));
    out.write(s.digest.data(), static_cast<std::streamsize>(s.digest.size()));
    put(out, s.vectors.rows);
    put(out, s.vectors.cols);
    out.write(reinterpret_cast<const char*>(s.vectors.values.data()),
              static_cast<std::streamsize>(s.vectors.values.size() * sizeof(float)));
  }
  if (!out) fail("{}: write failed", file.string());
}

std::vector<EncodedSet> load_encoded_sets(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("{}: cannot read", file.string());
  char magic[8];
  if (!in.read(magic, sizeof magic) || std::memcmp(magic, MAGIC, sizeof MAGIC) != 0)
    fail("{}: not an embeval vectors file", file.string());
  if (get<uint32_t>(in, file) != VERSION) fail("{}: vectors file of another version", file.string());
  const uint64_t n = get<uint64_t>(in, file);
  if (n > (1u << 20)) fail("{}: implausible set count {}", file.string(), n);
  std::vector<EncodedSet> sets(static_cast<size_t>(n));
  for (EncodedSet& s : sets) {
    const uint32_t role = get<uint32_t>(in, file);
    if (role > ROLE_NONE) fail("{}: unknown role {}", file.string(), role);
    s.role = static_cast<Role>(role);
    const uint32_t len = get<uint32_t>(in, file);
    if (len > 256) fail("{}: implausible digest length {}", file.string(), len);
    s.digest.resize(len);
    if (!in.read(s.digest.data(), len)) fail("{}: truncated vectors file", file.string());
    const int64_t rows = get<int64_t>(in, file), cols = get<int64_t>(in, file);
    if (rows < 0 || cols < 0 || (cols > 0 && rows > (int64_t{1} << 40) / cols))
      fail("{}: implausible matrix {}x{}", file.string(), rows, cols);
    s.vectors = Matrix(rows, cols);
    if (!in.read(reinterpret_cast<char*>(s.vectors.values.data()),
                 static_cast<std::streamsize>(s.vectors.values.size() * sizeof(float))))
      fail("{}: truncated vectors file", file.string());
  }
  return sets;
}

Fidelity compare_rows(const Matrix& a, const Matrix& b) {
  EMBEVAL_ASSERT(a.rows == b.rows && a.cols == b.cols);
  Fidelity f;
  double sum = 0;
  for (int64_t r = 0; r < a.rows; ++r) {
    const float *x = a.row(r), *y = b.row(r);
    double xy = 0, xx = 0, yy = 0;
    for (int64_t c = 0; c < a.cols; ++c) xy += double(x[c]) * y[c], xx += double(x[c]) * x[c], yy += double(y[c]) * y[c];
    const double cos = xx > 0 && yy > 0 ? xy / std::sqrt(xx * yy) : (xx == yy ? 1.0 : 0.0);
    sum += cos;
    f.min_cosine = std::min(f.min_cosine, cos);
  }
  f.vectors = a.rows;
  f.mean_cosine = a.rows > 0 ? sum / static_cast<double>(a.rows) : 1.0;
  return f;
}

std::optional<Fidelity> compare_encoded_sets(const std::vector<EncodedSet>& reference,
                                             const std::vector<EncodedSet>& variant) {
  if (reference.size() != variant.size() || reference.empty()) return std::nullopt;
  Fidelity f;
  double sum = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const EncodedSet &a = reference[i], &b = variant[i];
    if (a.role != b.role || a.digest != b.digest || a.vectors.rows != b.vectors.rows) return std::nullopt;
    if (a.vectors.cols != b.vectors.cols) return std::nullopt;  // a Dense head of another width: not comparable
    const Fidelity s = compare_rows(a.vectors, b.vectors);
    sum += s.mean_cosine * static_cast<double>(s.vectors);
    f.min_cosine = std::min(f.min_cosine, s.min_cosine);
    f.vectors += s.vectors;
  }
  if (f.vectors == 0) return std::nullopt;
  f.mean_cosine = sum / static_cast<double>(f.vectors);
  return f;
}

}  // namespace embeval
