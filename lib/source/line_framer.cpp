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

const char* describe(Rejection reason) {
  switch (reason) {
    case Rejection::none: return "accepted";
    case Rejection::not_integer: return "not an integer";
    case Rejection::out_of_range:
      return "a number outside the int64 range, or a time InfluxDB cannot store";
    case Rejection::too_long: return "longer than max_line_bytes";
    case Rejection::bad_line: return "not valid line protocol";
    case Rejection::no_numeric_field: return "none of the selected numeric fields";
    case Rejection::type_conflict: return "a field's type differs from its first value's";
    case Rejection::too_late: return "too late: its window's allowed lateness has passed";
    case Rejection::too_far_in_future: return "time beyond the wall clock + window.max_future";
    case Rejection::too_many_keys: return "a new key over window.max_keys";
  }
  return "unknown";
}

const char* name(Rejection reason) {
  switch (reason) {
    case Rejection::none: return "none";
    case Rejection::not_integer: return "not_integer";
    case Rejection::out_of_range: return "out_of_range";
    case Rejection::too_long: return "too_long";
    case Rejection::bad_line: return "bad_line";
    case Rejection::no_numeric_field: return "no_numeric_field";
    case Rejection::type_conflict: return "type_conflict";
    case Rejection::too_late: return "too_late";
    case Rejection::too_far_in_future: return "too_far_in_future";
    case Rejection::too_many_keys: return "too_many_keys";
  }
  return "unknown";
}

std::uint64_t& LineCounters::operator[](Rejection reason) {
  switch (reason) {
    case Rejection::none: break;
    case Rejection::not_integer: return not_integer;
    case Rejection::out_of_range: return out_of_range;
    case Rejection::too_long: return too_long;
    case Rejection::bad_line: return bad_line;
    case Rejection::no_numeric_field: return no_numeric_field;
    case Rejection::type_conflict: return type_conflict;
    case Rejection::too_late: return too_late;
    case Rejection::too_far_in_future: return too_far_in_future;
    case Rejection::too_many_keys: return too_many_keys;
  }
  return accepted;
}

namespace {
constexpr std::uint64_t LineCounters::*kEveryCounter[] = {
    &LineCounters::accepted,          &LineCounters::empty,         &LineCounters::not_integer,
    &LineCounters::out_of_range,      &LineCounters::too_long,      &LineCounters::bad_line,
    &LineCounters::no_numeric_field,  &LineCounters::type_conflict, &LineCounters::too_late,
    &LineCounters::too_far_in_future, &LineCounters::too_many_keys,
};
static_assert(sizeof(LineCounters) == sizeof kEveryCounter / sizeof kEveryCounter[0] * 8,
              "every counter of LineCounters is listed in kEveryCounter");
}  // namespace

LineCounters& LineCounters::operator+=(const LineCounters& other) {
  for (auto counter : kEveryCounter) this->*counter += other.*counter;
  return *this;
}

LineCounters& LineCounters::operator-=(const LineCounters& other) {
  for (auto counter : kEveryCounter) this->*counter -= other.*counter;
  return *this;
}

}  // namespace tumbled::source
