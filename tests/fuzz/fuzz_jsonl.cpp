// A task file in JSON Lines (datasets/jsonl_reader.h) read as the loaders
// read it: objects, typed fields, labels as strings or integers.
#include "datasets/jsonl_reader.h"
#include "tests/fuzz/fuzz_input.h"

using namespace embeval;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = fuzz::scratch("jsonl/corpus.jsonl");
  fuzz::write_bytes(file, data, size);
  fuzz::expect_clean([&] {
    data::JsonlReader reader(file);
    nlohmann::json row;
    while (reader.next(row)) {
      EMBEVAL_ASSERT(row.is_object() && reader.line() >= 1);
      // Each access on its own: a wrong type is an error for that field only.
      fuzz::expect_clean([&] { (void)reader.get_string(row, "text"); });
      fuzz::expect_clean([&] { (void)reader.get_number(row, "score"); });
      fuzz::expect_clean([&] { (void)reader.get_integer(row, "label"); });
      fuzz::expect_clean([&] { (void)reader.get_label(row, "label"); });
      fuzz::expect_clean([&] { (void)reader.get_string_list(row, "positive"); });
    }
  });
  return 0;
}
