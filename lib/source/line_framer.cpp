#include "source/line_framer.hpp"

#include <charconv>

namespace tumbled::source {

namespace {
bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
}  // namespace

LineKind parse_line(std::string_view line, std::int64_t& out) {
  while (!line.empty() && is_ascii_space(line.front())) line.remove_prefix(1);
  while (!line.empty() && is_ascii_space(line.back())) line.remove_suffix(1);
  if (line.empty()) return LineKind::empty;

  // from_chars accepts '-' but not '+', and nothing here may follow the digits.
  std::string_view digits = line;
  if (digits.front() == '+' || digits.front() == '-') digits.remove_prefix(1);
  if (digits.empty()) return LineKind::not_integer;
  for (char c : digits) {
    if (!is_digit(c)) return LineKind::not_integer;
  }
  const char* first = line.front() == '+' ? line.data() + 1 : line.data();
  const auto [end, error] = std::from_chars(first, line.data() + line.size(), out);
  if (error == std::errc::result_out_of_range) return LineKind::out_of_range;
  if (error != std::errc{} || end != line.data() + line.size()) return LineKind::not_integer;
  return LineKind::value;
}

LineCounters& LineCounters::operator+=(const LineCounters& other) {
  accepted += other.accepted;
  empty += other.empty;
  not_integer += other.not_integer;
  out_of_range += other.out_of_range;
  too_long += other.too_long;
  return *this;
}

}  // namespace tumbled::source
