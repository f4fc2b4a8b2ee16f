// The terminal progress line: drawn in place with \r, throttled, wiped at the end.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "harness/progress_line.h"

using namespace embeval;

TEST(ProgressLine, DrawsInPlaceThrottlesAndWipes) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* out = open_memstream(&buf, &len);
  ASSERT_NE(out, nullptr);
  {
    ProgressLine line(out);
    line.start("[1/2] T corpus");
    line.update(1, 4);  // within 250 ms of the start: not drawn
    std::fflush(out);
    EXPECT_EQ(std::string(buf, len), "");
    line.update(4, 4);  // the last one always is
    std::fflush(out);
    const std::string s(buf, len);
    EXPECT_EQ(s.rfind("\r[1/2] T corpus: 4/4 texts, ", 0), 0u) << s;
    EXPECT_EQ(s.find("ETA"), std::string::npos) << s;  // nothing left to wait for
    EXPECT_EQ(s.substr(s.size() - 3), "\x1b[K");
  }  // the destructor wipes the line
  std::fflush(out);
  const std::string s(buf, len);
  EXPECT_EQ(s.substr(s.size() - 4), "\r\x1b[K");
  std::fclose(out);
  std::free(buf);
}
