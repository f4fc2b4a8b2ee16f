#include "runners/checkpoint/safetensors_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "harness/error.h"

namespace embeval {
namespace {

// The reference implementation refuses headers above 100 MB; so do we, so a
// corrupt length never makes us parse gigabytes.
constexpr uint64_t MAX_HEADER_BYTES = 100u << 20;

const struct {
  const char* name;
  TensorDtype dtype;
  size_t size;
} DTYPES[] = {{"F32", TENSOR_DTYPE_F32, 4},         {"F16", TENSOR_DTYPE_F16, 2},
              {"BF16", TENSOR_DTYPE_BF16, 2},       {"F64", TENSOR_DTYPE_F64, 8},
              {"F8_E4M3", TENSOR_DTYPE_F8_E4M3, 1}, {"F8_E5M2", TENSOR_DTYPE_F8_E5M2, 1},
              {"I64", TENSOR_DTYPE_I64, 8},         {"I32", TENSOR_DTYPE_I32, 4},
              {"I16", TENSOR_DTYPE_I16, 2},         {"I8", TENSOR_DTYPE_I8, 1},
              {"U64", TENSOR_DTYPE_U64, 8},         {"U32", TENSOR_DTYPE_U32, 4},
              {"U16", TENSOR_DTYPE_U16, 2},         {"U8", TENSOR_DTYPE_U8, 1},
              {"BOOL", TENSOR_DTYPE_BOOL, 1}};

bool parse_dtype(const std::string& s, TensorDtype* out) {
  for (const auto& d : DTYPES)
    if (s == d.name) return *out = d.dtype, true;
  return false;
}

}  // namespace

const char* tensor_dtype_name(TensorDtype d) {
  for (const auto& x : DTYPES)
    if (x.dtype == d) return x.name;
  return "?";
}

size_t tensor_dtype_size(TensorDtype d) {
  for (const auto& x : DTYPES)
    if (x.dtype == d) return x.size;
  return 0;
}

bool tensor_dtype_is_float(TensorDtype d) {
  return d == TENSOR_DTYPE_F32 || d == TENSOR_DTYPE_F16 || d == TENSOR_DTYPE_BF16 || d == TENSOR_DTYPE_F64 ||
         d == TENSOR_DTYPE_F8_E4M3 || d == TENSOR_DTYPE_F8_E5M2;
}

int64_t SafetensorsEntry::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& file) : path_(file) {
  const std::string where = file.string();
  int fd = ::open(where.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open ({})", where, std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("{}: cannot stat ({})", where, std::strerror(errno));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail("{}: file is {} bytes, too short for a safetensors header; expected an 8-byte length and a JSON header", where,
         file_size);
  }
  map_ = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail("{}: cannot map ({})", where, std::strerror(errno));
  }
  map_size_ = file_size;
  const auto* base = static_cast<const uint8_t*>(map_);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];
  if (header_len > file_size - 8)
    fail("{}: header length {} exceeds the file ({} bytes); the file is truncated or not safetensors", where,
         header_len, file_size);
  if (header_len > MAX_HEADER_BYTES)
    fail("{}: header length {} is over the 100 MB safetensors limit", where, header_len);
  const uint8_t* data = base + 8 + header_len;
  const uint64_t data_size = file_size - 8 - header_len;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(base + 8, base + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    std::string msg = e.what();
    fail("{}: header is not valid JSON ({})", where, msg.substr(0, msg.find('\n')));
  }
  if (!header.is_object()) fail("{}: header must be a JSON object, got {}", where, header.type_name());

  struct Span {
    uint64_t begin, end;
    size_t entry;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail("{}: \"__metadata__\" must be an object of strings", where);
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail("{}: \"__metadata__\".\"{}\" must be a string", where, m.key());
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { fail("{}: tensor \"{}\": {}", where, name, what); };
    if (!v.is_object()) bad("entry must be an object with dtype, shape, data_offsets");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) bad("missing string \"dtype\"");
    if (sh == v.end() || !sh->is_array()) bad("missing array \"shape\"");
    if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      bad("\"data_offsets\" must be [begin, end] with non-negative integers");

    SafetensorsEntry e;
    e.name = name;
    const std::string dtype = dt->get<std::string>();
    if (!parse_dtype(dtype, &e.dtype))
      bad(fmt::format("unknown dtype \"{}\"; safetensors defines F32, F16, BF16, F64, F8_E4M3, F8_E5M2, I64, I32, "
                      "I16, I8, U64, U32, U16, U8, BOOL",
                      dtype));
    // Element count with overflow checks: a corrupt shape must not wrap around.
    unsigned __int128 count = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) bad(fmt::format("shape {} must hold non-negative integers", sh->dump()));
      uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 62)) bad(fmt::format("shape {} is implausibly large", sh->dump()));
      e.shape.push_back(static_cast<int64_t>(dim));
      count *= dim;
      if (count > (static_cast<unsigned __int128>(1) << 62)) bad(fmt::format("shape {} is implausibly large", sh->dump()));
    }
    const uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
    if (begin > end) bad(fmt::format("data_offsets [{}, {}] end before they begin", begin, end));
    if (end > data_size)
      bad(fmt::format("data_offsets [{}, {}] run past the data ({} bytes); the file is truncated or corrupt", begin, end,
                      data_size));
    const unsigned __int128 need = count * tensor_dtype_size(e.dtype);
    if (need != end - begin)
      bad(fmt::format("shape [{}] of {} needs {} bytes; data_offsets [{}, {}] give {}", fmt::join(e.shape, ", "),
                      dtype, static_cast<uint64_t>(need), begin, end, end - begin));
    e.data = data + begin;
    e.nbytes = static_cast<size_t>(end - begin);
    spans.push_back({begin, end, entries_.size()});
    entries_.push_back(std::move(e));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < spans.size(); ++i) {
    const Span &prev = spans[i - 1], &cur = spans[i];
    // Zero-size tensors occupy no bytes and cannot overlap anything.
    if (cur.begin < prev.end && cur.end > cur.begin && prev.end > prev.begin)
      fail("{}: tensor \"{}\": data_offsets [{}, {}] overlap tensor \"{}\" [{}, {}]", where, entries_[cur.entry].name,
           cur.begin, cur.end, entries_[prev.entry].name, prev.begin, prev.end);
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

void write_safetensors(const std::filesystem::path& file, const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (int64_t s : t.shape) n *= s;
    EMBEVAL_ASSERT(static_cast<size_t>(n) * tensor_dtype_size(t.dtype) == t.bytes.size());
    header[t.name] = {{"dtype", tensor_dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) fail("{}: cannot write", file.string());
  uint64_t n = text.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.write(len, 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : tensors) out.write(t.bytes.data(), static_cast<std::streamsize>(t.bytes.size()));
  if (!out) fail("{}: write failed", file.string());
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    const uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // may carry into the exponent: still correct
  return static_cast<uint16_t>(sign | h);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) mant <<= 1, --exp;
      x = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000 | (mant << 13);
  } else {
    x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet NaN
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

float bf16_to_float(uint16_t b) {
  uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace embeval
