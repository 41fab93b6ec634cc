// Readable forms of source test inputs and counters, so a failure shows what was fed and counted.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

#include "source/line_framer.hpp"

namespace tumbled::test {

// Bytes with everything but printable ASCII as \xNN (a backslash too).
inline std::string visible(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    }
  }
  return out;
}

// Every counter by name, so two sets compare and print in one go.
inline std::string counters_text(const source::LineCounters& c) {
  std::ostringstream s;
  s << "accepted=" << c.accepted << " empty=" << c.empty << " not_integer=" << c.not_integer
    << " out_of_range=" << c.out_of_range << " too_long=" << c.too_long
    << " bad_line=" << c.bad_line << " no_numeric_field=" << c.no_numeric_field
    << " type_conflict=" << c.type_conflict << " too_late=" << c.too_late
    << " too_far_in_future=" << c.too_far_in_future << " too_many_keys=" << c.too_many_keys;
  return s.str();
}

}  // namespace tumbled::test
