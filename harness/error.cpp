#include "harness/error.h"

#include <cstdio>
#include <cstdlib>

namespace embeval {

void assert_failed(const char* cond, const char* file, int line, const char* func) {
  std::fprintf(stderr, "embeval: internal error: %s:%d: %s: assertion `%s' failed\n", file, line, func, cond);
  std::abort();
}

}  // namespace embeval
