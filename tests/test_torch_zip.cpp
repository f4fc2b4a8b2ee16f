// pytorch_model.bin (torch.save's zip format) read by runners/torch_zip_reader:
// pickles written byte by byte here, so the tensor views can be ones
// torch.save would never write. A view must land inside its storage, with
// checked arithmetic (sizes and strides near 2^63 must not wrap into range),
// and a valid strided view reads the right elements. Errors name the tensor.
#include <cstring>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include "harness/error.h"
#include "runners/checkpoint/torch_zip_reader.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace embeval;

namespace {

std::string binunicode(const std::string& s) {
  std::string out = "X";
  const uint32_t n = static_cast<uint32_t>(s.size());
  out.append(reinterpret_cast<const char*>(&n), 4);
  return out + s;
}

std::string long8(int64_t v) {  // LONG1 with 8 bytes, little-endian
  std::string out = "\x8a\x08";
  out.append(reinterpret_cast<const char*>(&v), 8);
  return out;
}

// {"w": _rebuild_tensor_v2(FloatStorage "0" of 4 floats, offset, (size,), (stride,), False)}
fs::path write_bin(const std::string& name, int64_t offset, int64_t size, int64_t stride) {
  std::string p = "\x80\x02}";
  p += binunicode("w");
  p += "ctorch._utils\n_rebuild_tensor_v2\n(";
  p += "(" + binunicode("storage") + "ctorch\nFloatStorage\n" + binunicode("0") + binunicode("cpu") + "K\x04tQ";
  p += long8(offset) + "(" + long8(size) + "t(" + long8(stride) + "t\x89tRs.";
  const float values[4] = {10, 11, 12, 13};
  fs::path file = test::scratch_dir("torch_zip") / (name + ".bin");
  caffe2::serialize::PyTorchStreamWriter w(file.string());
  w.writeRecord("data.pkl", p.data(), p.size());
  w.writeRecord("data/0", values, sizeof(values));
  w.writeEndOfFile();
  return file;
}

std::vector<float> read_w(const fs::path& file) {
  std::vector<float> out;
  read_torch_zip_state_dict(file, [&](const std::string& name, at::Tensor t) {
    EXPECT_EQ(name, "w");
    t = t.contiguous();
    out.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  });
  return out;
}

}  // namespace

TEST(TorchZip, StridedViewReadsItsElements) {
  EXPECT_EQ(read_w(write_bin("ok", 1, 2, 2)), (std::vector<float>{11, 13}));  // elements 1 and 3
  EXPECT_EQ(read_w(write_bin("empty", 0, 0, 1)), std::vector<float>{});
}

TEST(TorchZip, ViewsOutsideTheStorageAreOneLineErrors) {
  auto error = [](const fs::path& f) { return test::error_of<UserError>([&] { read_w(f); }); };
  // Elements 0, 2, 4 of a 4-element storage.
  std::string e = error(write_bin("past", 0, 3, 2));
  EXPECT_NE(e.find("past.bin: data.pkl: tensor \"w\": tensor view (offset 0) runs past its storage of 4 elements"), std::string::npos) << e;
  // (2^62 - 1) * 4 wraps to a small negative number without checked arithmetic.
  e = error(write_bin("wrap", 0, int64_t{1} << 62, 4));
  EXPECT_NE(e.find("wrap.bin: data.pkl: tensor \"w\": tensor view of size [4611686018427387904] overflows"), std::string::npos) << e;
  e = error(write_bin("negative", 0, 2, -1));
  EXPECT_NE(e.find("tensor stride must hold non-negative integers"), std::string::npos) << e;
  e = error(write_bin("offset", -1, 1, 1));
  EXPECT_NE(e.find("runs past its storage"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
}
