#pragma once
// Code-point level text helpers for the tokenizers, on utf8proc: UTF-8 <->
// UTF-32, NFC/NFD, and lower-casing exactly as Python's str.lower() does it
// (full mappings, Final_Sigma), since transformers and sentence-transformers
// lower-case with Python. utf8proc's Unicode version (utf8proc_unicode_version())
// may differ from the Python that a reference was made with: characters
// assigned in between are "unassigned" (category Cn) on one side only.
#include <string>
#include <string_view>

namespace embeval::unicode {

// Decodes UTF-8; each byte of an invalid sequence becomes U+FFFD (what
// Python's bytes.decode(errors="replace") does for most inputs).
std::u32string decode_utf8(std::string_view s);
std::string encode_utf8(std::u32string_view s);
void append_utf8(char32_t c, std::string& out);

// Canonical composition / decomposition (canonical order included).
std::u32string nfc(std::u32string_view s);
std::u32string nfd(std::u32string_view s);
// Characters NFC / NFD leave alone wherever they stand; nfc() and nfd() skip
// utf8proc for text made only of them.
bool nfc_inert(char32_t c);
bool nfd_inert(char32_t c);

// One character lower-cased as Python's str.lower() does it outside any
// context: the full mapping (U+0130 -> "i\u0307"), appended to out.
void append_lower(char32_t c, std::u32string& out);
// Python's str.lower() on a whole string: append_lower per character, with
// capital sigma becoming final sigma at the end of a word (Final_Sigma).
std::u32string python_lower(std::u32string_view s);

// Python's str.isspace() for one character.
bool python_isspace(char32_t c);

// True for the code points utf8proc assigns but Python's unicodedata, at the
// version the Hugging Face references were made with (Python 3.11: Unicode
// 14.0), leaves unassigned (Cn). transformers drops Cn characters as control
// characters, so a tokenizer that agrees with it must too. The table is
// generated (scripts/gen_unicode_additions.py) against the newest utf8proc a
// supported Debian ships; unicode_tables_match() is false when the linked
// utf8proc is newer than the table (or older than Python's Unicode).
bool unassigned_in_python(char32_t c);
const char* python_unicode_version();
bool unicode_tables_match();

}  // namespace embeval::unicode
