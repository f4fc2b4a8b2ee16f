// pytorch_model.bin (torch.save's zip format): the zip records, the pickle
// stack machine and the storage views (runners/checkpoint/torch_zip_reader.h). The
// first byte picks the mode: even, the rest is the whole file; odd, the rest
// is data.pkl inside a valid archive holding storages data/0 .. data/3 (16
// floats each), so mutations reach the pickle reader instead of failing the
// zip's checksums.
#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include "runners/checkpoint/torch_zip_reader.h"
#include "tests/fuzz/fuzz_input.h"

using namespace embeval;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto file = fuzz::scratch("zip/pytorch_model.bin");
  if (data[0] % 2 == 0) {
    fuzz::write_bytes(file, data + 1, size - 1);
  } else {
    caffe2::serialize::PyTorchStreamWriter w(file.string());
    w.writeRecord("data.pkl", data + 1, size - 1);
    float values[16];
    for (int i = 0; i < 16; ++i) values[i] = static_cast<float>(i);
    for (const char* key : {"data/0", "data/1", "data/2", "data/3"}) w.writeRecord(key, values, sizeof(values));
    w.writeEndOfFile();
  }
  fuzz::expect_clean([&] {
    read_torch_zip_state_dict(file, [](const std::string& name, at::Tensor t) {
      EMBEVAL_ASSERT(t.is_contiguous() && t.device().is_cpu());
      // Read every element: a view past its storage would fault here.
      if (t.numel() > 0) (void)t.to(at::kDouble).sum().item<double>();
    });
  });
  return 0;
}
