// pytorch_model.bin (torch.save's zip format): the zip records, the pickle
// stack machine and the storage views (runners/torch_zip_reader.h).
#include <ATen/ATen.h>

#include "runners/torch_zip_reader.h"
#include "tests/fuzz/fuzz_input.h"

using namespace embeval;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = fuzz::scratch("zip/pytorch_model.bin");
  fuzz::write_bytes(file, data, size);
  fuzz::expect_clean([&] {
    read_torch_zip_state_dict(file, [](const std::string& name, at::Tensor t) {
      EMBEVAL_ASSERT(t.is_contiguous() && t.device().is_cpu());
      // Read every element: a view past its storage would fault here.
      if (t.numel() > 0) (void)t.to(at::kDouble).sum().item<double>();
    });
  });
  return 0;
}
