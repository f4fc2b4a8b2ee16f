#pragma once
// The safetensors format (huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON {"name": {"dtype", "shape",
// "data_offsets": [begin, end]}, "__metadata__": {...}}, then the data, with
// offsets relative to its start. Everything is checked before a byte of data
// is touched: header length within the file, JSON well-formed, offsets
// ordered, inside the data and not overlapping, byte length equal to
// shape x element size. A violation is a UserError naming file and tensor.
// No torch here: the loader (runners/checkpoint/checkpoint_weights.cpp) turns entries into tensors.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace embeval {

// Every dtype safetensors defines. Weights are read in F32, F16 and BF16;
// integer and bool tensors are buffers (older checkpoints store
// embeddings.position_ids as I64) that the loader skips; F64 and F8 are
// rejected by the loader with the tensor's name.
enum TensorDtype {
  TENSOR_DTYPE_F32,
  TENSOR_DTYPE_F16,
  TENSOR_DTYPE_BF16,
  TENSOR_DTYPE_F64,
  TENSOR_DTYPE_F8_E4M3,
  TENSOR_DTYPE_F8_E5M2,
  TENSOR_DTYPE_I64,
  TENSOR_DTYPE_I32,
  TENSOR_DTYPE_I16,
  TENSOR_DTYPE_I8,
  TENSOR_DTYPE_U64,
  TENSOR_DTYPE_U32,
  TENSOR_DTYPE_U16,
  TENSOR_DTYPE_U8,
  TENSOR_DTYPE_BOOL
};
const char* tensor_dtype_name(TensorDtype d);  // "F32", "F16", "BF16", ... (safetensors' spelling)
size_t tensor_dtype_size(TensorDtype d);
bool tensor_dtype_is_float(TensorDtype d);  // F32, F16, BF16, F64, F8_*

struct SafetensorsEntry {
  std::string name;
  TensorDtype dtype = TENSOR_DTYPE_F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // into the mapped file; not aligned in general
  size_t nbytes = 0;
  int64_t numel() const;
};

// A validated, memory-mapped safetensors file. Entries point into the mapping
// and stay valid while the object lives.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& file);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // in header order
  const SafetensorsEntry* find(const std::string& name) const;                // null when absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::filesystem::path path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes a safetensors file (header padded to 8 bytes as the reference
// implementation does). Used by the tests and tools that export checkpoints.
struct SafetensorsTensor {
  std::string name;
  TensorDtype dtype = TENSOR_DTYPE_F32;
  std::vector<int64_t> shape;
  std::string bytes;  // little-endian values, numel x element size
};
void write_safetensors(const std::filesystem::path& file, const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// IEEE half / bfloat16 <-> float, for writers and tests.
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);
uint16_t float_to_bf16(float f);  // round to nearest even
float bf16_to_float(uint16_t b);

}  // namespace embeval
