// A safetensors file: the header checks (runners/checkpoint/safetensors_reader.h), then
// the loader turning entries into tensors (runners/checkpoint/checkpoint_weights.h).
// Every accepted entry's bytes are read, so an entry reaching past the file
// is a crash here, not a quiet out-of-bounds read.
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/checkpoint/safetensors_reader.h"
#include "tests/fuzz/fuzz_input.h"

using namespace embeval;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = fuzz::scratch("st/model.safetensors");
  fuzz::write_bytes(file, data, size);
  fuzz::expect_clean([&] {
    SafetensorsFile st(file);
    uint64_t sum = 0;
    for (const SafetensorsEntry& e : st.entries()) {
      EMBEVAL_ASSERT(e.numel() >= 0);
      EMBEVAL_ASSERT(e.nbytes == static_cast<size_t>(e.numel()) * tensor_dtype_size(e.dtype));
      for (size_t i = 0; i < e.nbytes; ++i) sum += e.data[i];
    }
    EMBEVAL_ASSERT(sum <= 255 * static_cast<uint64_t>(size));
  });
  fuzz::expect_clean([&] {
    StateDict sd = load_state_dict(file.parent_path());
    for (const auto& [name, t] : sd.tensors) EMBEVAL_ASSERT(t.is_contiguous() && t.device().is_cpu());
  });
  return 0;
}
