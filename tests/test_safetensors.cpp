// The safetensors reader: round trip through the writer, and every corrupt
// file a one-line error naming file and tensor before any data is read.
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "harness/error.h"
#include "runners/checkpoint/safetensors_reader.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace embeval;

namespace {

std::string error_of(const fs::path& file) {
  try {
    SafetensorsFile f(file);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

// A file from its parts: 8-byte little-endian header length, header, data.
fs::path raw_file(const std::string& name, const std::string& header, size_t data_bytes, int64_t claimed_len = -1) {
  fs::path f = test::scratch_dir("safetensors/" + name) / "model.safetensors";
  std::ofstream out(f, std::ios::binary);
  uint64_t n = claimed_len >= 0 ? static_cast<uint64_t>(claimed_len) : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << std::string(data_bytes, '\x01');
  return f;
}

std::string f32_bytes(std::vector<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

}  // namespace

TEST(Safetensors, RoundTripsThroughTheWriter) {
  fs::path f = test::scratch_dir("safetensors/roundtrip") / "m.safetensors";
  std::string half(4, '\0');
  uint16_t h0 = float_to_half(1.0f), h1 = float_to_half(-2.5f);
  std::memcpy(half.data(), &h0, 2);
  std::memcpy(half.data() + 2, &h1, 2);
  write_safetensors(f,
                    {{"a.weight", TENSOR_DTYPE_F32, {2, 3}, f32_bytes({1, 2, 3, 4, 5, 6})},
                     {"b", TENSOR_DTYPE_F16, {2}, half},
                     {"empty", TENSOR_DTYPE_F32, {0, 4}, ""}},
                    {{"format", "pt"}});
  // The header is padded so the data starts 8-byte aligned, as the reference writer does.
  EXPECT_EQ((fs::file_size(f) - 24 - 4) % 8, 0u);
  SafetensorsFile r(f);
  ASSERT_EQ(r.entries().size(), 3u);
  EXPECT_EQ(r.metadata().at("format"), "pt");
  const SafetensorsEntry* a = r.find("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->numel(), 6);
  float v[6];
  std::memcpy(v, a->data, 24);
  EXPECT_EQ(v[5], 6.0f);
  const SafetensorsEntry* b = r.find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, TENSOR_DTYPE_F16);
  uint16_t hb;
  std::memcpy(&hb, b->data + 2, 2);
  EXPECT_EQ(half_to_float(hb), -2.5f);
  EXPECT_EQ(r.find("empty")->nbytes, 0u);
  EXPECT_EQ(r.find("missing"), nullptr);
}

TEST(Safetensors, HalfAndBfloat16Conversions) {
  // Bit patterns from IEEE 754 binary16 and bfloat16 tables (numpy.float16(x).view(np.uint16)).
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(0.1f), 0x2e66);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(1e-7f), 0x0002);  // subnormal: 1e-7 / 2^-24 = 1.68 -> 2
  EXPECT_EQ(half_to_float(0x0001), 5.9604644775390625e-08f);
  EXPECT_EQ(half_to_float(0x3555), 0.333251953125f);
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(0.1f), 0x3dcd);  // 0x3dcccccd rounds up
  EXPECT_EQ(bf16_to_float(0xc040), -3.0f);
}

TEST(Safetensors, CorruptFilesAreOneLineErrorsNamingTheTensor) {
  const std::string good = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_EQ(error_of(raw_file("ok", good, 8)), "(no error)");

  std::string e = error_of(raw_file("short", "", 0, 0).parent_path() / "none.safetensors");
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;

  fs::path tiny = test::scratch_dir("safetensors/tiny") / "model.safetensors";
  test::write_file(tiny, "abc");
  e = error_of(tiny);
  EXPECT_NE(e.find("model.safetensors: file is 3 bytes, too short"), std::string::npos) << e;

  e = error_of(raw_file("hlen", good, 8, 1000000));
  EXPECT_NE(e.find("header length 1000000 exceeds the file"), std::string::npos) << e;

  e = error_of(raw_file("json", R"({"w":{"dtype":"F32",)", 8));
  EXPECT_NE(e.find("header is not valid JSON"), std::string::npos) << e;

  e = error_of(raw_file("array", "[1,2]", 0));
  EXPECT_NE(e.find("header must be a JSON object"), std::string::npos) << e;

  // Data shorter than the offsets claim: a truncated download.
  e = error_of(raw_file("trunc", good, 5));
  EXPECT_NE(e.find("tensor \"w\": data_offsets [0, 8] run past the data (5 bytes)"), std::string::npos) << e;

  e = error_of(raw_file("overlap",
                        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                        12));
  EXPECT_NE(e.find("tensor \"b\": data_offsets [4, 12] overlap tensor \"a\" [0, 8]"), std::string::npos) << e;

  e = error_of(raw_file("mismatch", R"({"w":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})", 8));
  EXPECT_NE(e.find("tensor \"w\": shape [3] of F16 needs 6 bytes; data_offsets [0, 8] give 8"), std::string::npos) << e;

  e = error_of(raw_file("dtype", R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8));
  EXPECT_NE(e.find("tensor \"w\": unknown dtype \"Q4\""), std::string::npos) << e;

  e = error_of(raw_file("order", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8));
  EXPECT_NE(e.find("tensor \"w\": data_offsets [8, 0] end before they begin"), std::string::npos) << e;

  e = error_of(raw_file("negative", R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8));
  EXPECT_NE(e.find("tensor \"w\": shape [-2] must hold non-negative integers"), std::string::npos) << e;

  // A shape whose byte count overflows 64 bits must not wrap around to a small number.
  e = error_of(raw_file("overflow", R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", 0));
  EXPECT_NE(e.find("tensor \"w\": shape"), std::string::npos) << e;

  e = error_of(raw_file("offsets", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8));
  EXPECT_NE(e.find("tensor \"w\": \"data_offsets\" must be [begin, end]"), std::string::npos) << e;

  // Every message is one line and names the file.
  EXPECT_EQ(e.find('\n'), std::string::npos);
  EXPECT_NE(e.find("offsets/model.safetensors"), std::string::npos) << e;

  // Integer buffers are valid safetensors; the weight loader skips them.
  e = error_of(raw_file("i64", R"({"position_ids":{"dtype":"I64","shape":[1,2],"data_offsets":[0,16]}})", 16));
  EXPECT_EQ(e, "(no error)");
}
