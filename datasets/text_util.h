#pragma once
// Text helpers that must behave exactly like Python's str methods, because
// MTEB and sentence-transformers build the texts they embed with them.
#include <string>
#include <string_view>

namespace embeval::data {

// Python's str.strip() with no argument: removes leading and trailing
// characters for which str.isspace() is true (ASCII whitespace, \x1c-\x1f,
// U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F,
// U+3000). Invalid UTF-8 is left untouched.
std::string python_strip(std::string_view s);

// At most max_bytes of s, cut on a code point boundary, with "..." appended
// when something was cut: for quoting texts in one-line error messages.
std::string utf8_preview(std::string_view s, size_t max_bytes = 60);

// True when s is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace embeval::data
