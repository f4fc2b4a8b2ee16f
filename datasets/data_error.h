#pragma once
// Errors in task folders: bad paths, malformed JSON, wrong field types.
// The message is one line of the form `file:line: what is wrong; expected what`.
#include <stdexcept>
#include <string>

namespace embeval::data {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace embeval::data
