// Differential tests of source/integer_lines (the framer's SWAR fast path) against a simple
// reference built on std::from_chars, over edge cases (every length 1..20, the int64 bounds,
// +-10^18..10^19, one past each bound, every byte at every position) and random lines; and of
// LineFramer as a whole against parse_line() applied line by line, on long random streams that
// keep the 64-byte block loop busy.
#include <catch2/catch.hpp>

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "printable.hpp"
#include "source/integer_lines.hpp"
#include "source/line_framer.hpp"

namespace il = tumbled::source::integer_lines;
using tumbled::source::LineCounters;
using tumbled::source::LineFramer;
using tumbled::source::LineKind;
using tumbled::source::parse_line;
using tumbled::test::counters_text;
using tumbled::test::visible;

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

// The reference: a plain line is [+-]?[0-9]{1,19}\r? and std::from_chars reads it into int64.
std::optional<std::int64_t> reference(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  bool negative = false;
  if (!line.empty() && (line.front() == '+' || line.front() == '-')) {
    negative = line.front() == '-';
    line.remove_prefix(1);
  }
  if (line.empty() || line.size() > 19) return std::nullopt;
  for (const char c : line) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  const std::string text = (negative ? "-" : "") + std::string(line);
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Runs both parses of integer_lines on `line` followed by '\n', with `before` in front of it (the
// bytes parse_plain_line reads and must ignore) and `after` behind.
struct Parsed {
  std::optional<std::int64_t> words, bytewise;
};
Parsed parse_both(std::string_view line, std::string_view before, std::string_view after) {
  std::string buffer(before);
  buffer += line;
  buffer += '\n';
  buffer += after;
  const char* const start = buffer.data() + before.size();
  const char* const newline = start + line.size();
  Parsed parsed;
  std::int64_t value = 0;
  REQUIRE(before.size() >= il::kLookBehind);
  if (il::parse_plain_line(start, newline, value)) parsed.words = value;
  const char* const next =
      il::parse_plain_line_bytewise(start, buffer.data() + buffer.size(), value);
  if (next != nullptr) {
    CHECK(next == newline + 1);
    parsed.bytewise = value;
  }
  return parsed;
}

const std::string kDigitsBefore(il::kLookBehind, '7');  // digits that must not leak into a value
const std::string kNewlinesBefore(il::kLookBehind, '\n');
const std::string kCrBefore(il::kLookBehind, '\r');

void check_line(std::string_view line) {
  CAPTURE(visible(line));
  const auto expected = reference(line);
  for (const std::string* before : {&kDigitsBefore, &kNewlinesBefore, &kCrBefore}) {
    for (const std::string_view after : {"", "123456789012345678901234", "-\r\n\n"}) {
      CAPTURE(visible(*before), visible(after));
      const Parsed parsed = parse_both(line, *before, after);
      CHECK(parsed.words == expected);
      CHECK(parsed.bytewise == expected);
    }
  }
}

std::vector<std::string> edge_lines() {
  std::vector<std::string> lines = {"0",
                                    "-0",
                                    "+0",
                                    "00",
                                    "-00",
                                    "9223372036854775807",
                                    "-9223372036854775808",
                                    "+9223372036854775807",
                                    "9223372036854775808",
                                    "-9223372036854775809",
                                    "+9223372036854775808",
                                    "9223372036854775806",
                                    "-9223372036854775807",
                                    "9999999999999999999",
                                    "-9999999999999999999",
                                    "10000000000000000000",
                                    "18446744073709551615",
                                    "18446744073709551616",
                                    "0000000000000000000",
                                    "00000000000000000000",
                                    "0000000000000000001",
                                    "-0000000000000000001",
                                    "0922337203685477580",
                                    "922337203685477580",
                                    "1",
                                    "-1",
                                    "+1",
                                    "",
                                    "-",
                                    "+",
                                    "--1",
                                    "+-1",
                                    "\r",
                                    "-\r",
                                    "1\r",
                                    "-1\r",
                                    "1\r\r",
                                    "\r1",
                                    " 1",
                                    "1 ",
                                    "1a",
                                    "a1",
                                    "1-",
                                    "12345678a",
                                    "a12345678",
                                    "1234567812345678a"};
  // Every length 1..20 of a few digit patterns, with each sign, with and without '\r'.
  for (int length = 1; length <= 20; ++length) {
    for (const char* pattern : {"1234567890", "9999999999", "0000000001", "9876543210"}) {
      std::string digits;
      for (int i = 0; i < length; ++i) digits += pattern[i % 10];
      for (const char* sign : {"", "-", "+"}) {
        lines.push_back(sign + digits);
        lines.push_back(sign + digits + "\r");
      }
    }
  }
  // 10^k - 1, 10^k and 10^k + 1 for every k, each sign; the int64 bounds and one past them.
  std::uint64_t power = 1;
  for (int k = 0; k <= 19; ++k) {
    for (const std::uint64_t v : {power - 1, power, power + 1}) {
      lines.push_back(std::to_string(v));
      lines.push_back("-" + std::to_string(v));
    }
    if (k < 19) power *= 10;
  }
  for (std::int64_t delta = 0; delta <= 3; ++delta) {
    lines.push_back(std::to_string(kMax - delta));
    lines.push_back(std::to_string(kMin + delta));
    lines.push_back(std::to_string(static_cast<std::uint64_t>(kMax) + 1 + delta));
    lines.push_back("-" + std::to_string(static_cast<std::uint64_t>(kMax) + 2 + delta));
  }
  // +-(10^18 .. 10^19): the 19-digit range, around every leading digit.
  for (std::uint64_t lead = 1; lead <= 9; ++lead) {
    const std::uint64_t base = lead * std::uint64_t{1'000'000'000'000'000'000};
    for (const std::uint64_t v :
         {base - 1, base, base + 1, base + std::uint64_t{999'999'999'999'999'999}}) {
      lines.push_back(std::to_string(v));
      lines.push_back("-" + std::to_string(v));
      lines.push_back(std::to_string(v) + "\r");
    }
  }
  return lines;
}

}  // namespace

TEST_CASE("parse_plain_line agrees with from_chars on edge cases", "[framer][integer_lines]") {
  for (const std::string& line : edge_lines()) check_line(line);
}

TEST_CASE("parse_plain_line rejects every non-digit byte at every position",
          "[framer][integer_lines]") {
  for (const std::string base :
       {"9223372036854775807", "-1234567890123456789", "12345678", "+123456789", "1\r"}) {
    for (std::size_t at = 0; at < base.size(); ++at) {
      for (int byte = 0; byte < 256; ++byte) {
        std::string line = base;
        line[at] = static_cast<char>(byte);
        if (byte == '\n') continue;  // that is two lines
        check_line(line);
      }
    }
  }
}

TEST_CASE("parse_plain_line agrees with from_chars on random lines", "[framer][integer_lines]") {
  std::mt19937_64 rng(14);
  std::uniform_int_distribution<int> length(0, 22), byte(0, 255), kind(0, 9);
  const std::string alphabet = "0123456789-+\r \t.x";
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::uniform_int_distribution<std::int64_t> any(kMin, kMax);
  for (int i = 0; i < 200'000; ++i) {
    std::string line;
    switch (kind(rng)) {
      case 0:  // arbitrary bytes
        for (int n = length(rng); n > 0; --n) {
          const char c = static_cast<char>(byte(rng));
          if (c != '\n') line += c;
        }
        break;
      case 1:  // mostly digits, a few signs and separators
        for (int n = length(rng); n > 0; --n)
          line += alphabet[pick(rng) % 12 ? pick(rng) % 10 : pick(rng)];
        break;
      default: {  // a value of random length, sometimes with '\r' or '+'
        const std::int64_t v = any(rng) >> std::uniform_int_distribution<int>(0, 63)(rng);
        line = std::to_string(v);
        if (kind(rng) == 0 && v >= 0) line = "+" + line;
        if (kind(rng) < 3) line += '\r';
      }
    }
    check_line(line);
  }
}

TEST_CASE("the conversions of the last 16 and 3 digits agree", "[framer][integer_lines]") {
  std::mt19937_64 rng(16);
  std::uniform_int_distribution<int> byte(0, 255), digit('0', '9'), often(0, 15);
  std::uniform_int_distribution<std::size_t> count(0, 16);
  for (int i = 0; i < 200'000; ++i) {
    char text[16];
    for (char& c : text)
      c = often(rng) == 0 ? static_cast<char>(byte(rng)) : static_cast<char>(digit(rng));
    const std::size_t n = count(rng);
    const std::string_view digits(text + 16 - n, n);
    CAPTURE(visible(digits));
    std::uint64_t expected = 0;
    bool expected_ok = true;
    for (const char c : digits) {
      expected_ok = expected_ok && c >= '0' && c <= '9';
      expected = expected * 10 + static_cast<unsigned char>(c - '0');
    }
    std::uint64_t swar = 0, chosen = 0;
    CHECK(il::last_sixteen_digits_swar(text + 16, n, swar) == expected_ok);
    CHECK(il::last_sixteen_digits(text + 16, n, chosen) == expected_ok);
    if (expected_ok) {
      CHECK(swar == expected);
      CHECK(chosen == expected);
    }
    if (n <= 3) {
      std::uint32_t three = 0;
      CHECK(il::last_three_digits(text + 16, n, three) == expected_ok);
      if (expected_ok) CHECK(three == expected);
    }
  }
}

TEST_CASE("the newline masks of a 64-byte block agree", "[framer][integer_lines]") {
  std::mt19937_64 rng(64);
  std::uniform_int_distribution<int> byte(0, 255), often(0, 3);
  for (int i = 0; i < 20'000; ++i) {
    char block[64];
    std::uint64_t expected = 0;
    for (int j = 0; j < 64; ++j) {
      block[j] = often(rng) == 0 ? '\n' : static_cast<char>(byte(rng));
      if (block[j] == '\n') expected |= std::uint64_t{1} << j;
    }
    CHECK(il::newlines_swar(block) == expected);
    CHECK(il::newlines(block) == expected);
  }
}

namespace {

struct Result {
  std::vector<std::int64_t> values;
  std::string counters;
};

// The reference framing: split at '\n', parse_line each line (max_line_bytes large enough).
Result reference_stream(std::string_view bytes) {
  Result r;
  LineCounters c;
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    const std::string_view line = bytes.substr(0, newline);
    std::int64_t v = 0;
    switch (parse_line(line, v)) {
      case LineKind::value:
        ++c.accepted;
        r.values.push_back(v);
        break;
      case LineKind::empty: ++c.empty; break;
      case LineKind::not_integer: ++c.not_integer; break;
      case LineKind::out_of_range: ++c.out_of_range; break;
    }
    if (newline == std::string_view::npos) break;
    bytes.remove_prefix(newline + 1);
  }
  r.counters = counters_text(c);
  return r;
}

Result framer_stream(std::string_view bytes, std::mt19937_64& rng) {
  LineFramer framer(64);
  Result r;
  const auto collect = [&](std::int64_t v) { r.values.push_back(v); };
  std::uniform_int_distribution<std::size_t> piece(1, 3000);
  while (!bytes.empty()) {
    const std::size_t n = std::min(bytes.size(), piece(rng));
    framer.feed(bytes.substr(0, n), collect);
    bytes.remove_prefix(n);
  }
  framer.finish(collect);
  r.counters = counters_text(framer.counters());
  return r;
}

}  // namespace

TEST_CASE("LineFramer agrees with parse_line line by line on long random streams",
          "[framer][integer_lines]") {
  std::mt19937_64 rng(1914);
  std::uniform_int_distribution<std::int64_t> any(kMin, kMax);
  std::uniform_int_distribution<int> shift(0, 63), percent(0, 99);
  const std::vector<std::string> odd = {"",
                                        " 5",
                                        "+7",
                                        "007",
                                        "1.5",
                                        "abc",
                                        "\r",
                                        "-",
                                        "12 ",
                                        "\t-3",
                                        "99999999999999999999",
                                        "-9223372036854775809",
                                        "00000000000000000000000042"};
  std::uniform_int_distribution<std::size_t> pick_odd(0, odd.size() - 1);
  for (const int odd_percent : {0, 1, 10, 50}) {
    for (const bool crlf : {false, true}) {
      CAPTURE(odd_percent, crlf);
      std::string stream;
      while (stream.size() < 200'000) {
        if (percent(rng) < odd_percent) {
          stream += odd[pick_odd(rng)];
        } else {
          stream += std::to_string(any(rng) >> shift(rng));
        }
        stream += crlf ? "\r\n" : "\n";
      }
      if (percent(rng) < 50) stream += "123";  // an unterminated last line for finish()
      const Result expected = reference_stream(stream);
      const Result got = framer_stream(stream, rng);
      CHECK(got.counters == expected.counters);
      CHECK(got.values == expected.values);
    }
  }
}
