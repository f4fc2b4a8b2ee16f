#pragma once
// Two kinds of failure. A UserError is bad input the user can fix (a file, a
// spec, a flag): one line, `where: what; expected what`, exit status 2, and
// nothing already written to the result store is lost. EMBEVAL_ASSERT guards
// internal invariants only: a failure is a bug, so it aborts with file:line.
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace embeval {

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw UserError(fmt::format(f, std::forward<Args>(args)...));
}

// "; did you mean X?" for the entry of `known` nearest to `token` (edit
// distance under 3), or "" when none is near: for one-line errors about an
// unknown name.
std::string did_you_mean(const std::string& token, const std::vector<std::string>& known);

[[noreturn]] void assert_failed(const char* cond, const char* file, int line, const char* func);

}  // namespace embeval

#define EMBEVAL_ASSERT(cond) \
  ((cond) ? (void)0 : ::embeval::assert_failed(#cond, __FILE__, __LINE__, __func__))
