// Unit tests for source/line_framer: parse_line classification and LineFramer chunking.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "printable.hpp"
#include "source/line_framer.hpp"

using tumbled::source::LineCounters;
using tumbled::source::LineFramer;
using tumbled::source::LineKind;
using tumbled::source::parse_line;

using tumbled::test::counters_text;
using tumbled::test::visible;

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

const char* kind_name(LineKind kind) {
  switch (kind) {
    case LineKind::value: return "value";
    case LineKind::empty: return "empty";
    case LineKind::not_integer: return "not_integer";
    case LineKind::out_of_range: return "out_of_range";
  }
  return "?";
}

LineCounters counters(std::uint64_t accepted, std::uint64_t empty, std::uint64_t not_integer,
                      std::uint64_t out_of_range, std::uint64_t too_long) {
  LineCounters c;
  c.accepted = accepted;
  c.empty = empty;
  c.not_integer = not_integer;
  c.out_of_range = out_of_range;
  c.too_long = too_long;
  return c;
}

struct Outcome {
  std::vector<std::int64_t> values;
  std::string counters;  // counters_text(), so it compares and prints in one go
};

// Feeds `chunks` in order, then finish() if asked; checks the pending-bytes bound after each feed.
Outcome run(std::size_t max_line_bytes, const std::vector<std::string_view>& chunks,
            bool finish = true) {
  LineFramer framer(max_line_bytes);
  Outcome outcome;
  const auto collect = [&](std::int64_t v) { outcome.values.push_back(v); };
  for (std::string_view chunk : chunks) {
    framer.feed(chunk, collect);
    REQUIRE(framer.pending_bytes() <= max_line_bytes);
  }
  if (finish) {
    framer.finish(collect);
    REQUIRE(framer.pending_bytes() == 0);
  }
  outcome.counters = counters_text(framer.counters());
  return outcome;
}

Outcome run_whole(std::size_t max_line_bytes, std::string_view payload, bool finish = true) {
  return run(max_line_bytes, {payload}, finish);
}

Outcome run_bytewise(std::size_t max_line_bytes, std::string_view payload, bool finish = true) {
  std::vector<std::string_view> chunks;
  for (std::size_t i = 0; i < payload.size(); ++i) chunks.push_back(payload.substr(i, 1));
  return run(max_line_bytes, chunks, finish);
}

// Every way to cut `payload` into two and into three pieces gives the same result as one feed.
void check_every_split(std::size_t max_line_bytes, std::string_view payload, bool finish = true) {
  CAPTURE(visible(payload), max_line_bytes, finish);
  const Outcome whole = run_whole(max_line_bytes, payload, finish);
  for (std::size_t i = 0; i <= payload.size(); ++i) {
    CAPTURE(i);
    const Outcome two = run(max_line_bytes, {payload.substr(0, i), payload.substr(i)}, finish);
    CHECK(two.values == whole.values);
    CHECK(two.counters == whole.counters);
    for (std::size_t j = i; j <= payload.size(); ++j) {
      CAPTURE(j);
      const Outcome three =
          run(max_line_bytes, {payload.substr(0, i), payload.substr(i, j - i), payload.substr(j)},
              finish);
      CHECK(three.values == whole.values);
      CHECK(three.counters == whole.counters);
    }
  }
  const Outcome bytewise = run_bytewise(max_line_bytes, payload, finish);
  CHECK(bytewise.values == whole.values);
  CHECK(bytewise.counters == whole.counters);
}

}  // namespace

TEST_CASE("parse_line classifies a line and extracts its value", "[framer]") {
  const auto [input, kind, value] = GENERATE(table<std::string, LineKind, std::int64_t>({
      // Plain values, signs, whitespace trimming.
      {"42", LineKind::value, 42},
      {"0", LineKind::value, 0},
      {"+7", LineKind::value, 7},
      {"-0", LineKind::value, 0},
      {"+0", LineKind::value, 0},
      {"-5", LineKind::value, -5},
      {"007", LineKind::value, 7},
      {"00000000000000000000000000000042", LineKind::value, 42},
      {" 12 ", LineKind::value, 12},
      {"12\r", LineKind::value, 12},
      {"\t-5\t", LineKind::value, -5},
      {"\v\f 8 \r", LineKind::value, 8},
      // int64 bounds, exactly and one beyond.
      {"9223372036854775807", LineKind::value, kMax},
      {"+9223372036854775807", LineKind::value, kMax},
      {"-9223372036854775808", LineKind::value, kMin},
      {" -9223372036854775808\r", LineKind::value, kMin},
      {"9223372036854775808", LineKind::out_of_range, 0},
      {"+9223372036854775808", LineKind::out_of_range, 0},
      {"-9223372036854775809", LineKind::out_of_range, 0},
      {"99999999999999999999999999999", LineKind::out_of_range, 0},
      {"-99999999999999999999999999999", LineKind::out_of_range, 0},
      // Not integers.
      {"1.5", LineKind::not_integer, 0},
      {"1.", LineKind::not_integer, 0},
      {".5", LineKind::not_integer, 0},
      {"0x10", LineKind::not_integer, 0},
      {"1e3", LineKind::not_integer, 0},
      {"abc", LineKind::not_integer, 0},
      {"12abc", LineKind::not_integer, 0},
      {"abc12", LineKind::not_integer, 0},
      {"+", LineKind::not_integer, 0},
      {"-", LineKind::not_integer, 0},
      {" - ", LineKind::not_integer, 0},
      {"+-1", LineKind::not_integer, 0},
      {"-+1", LineKind::not_integer, 0},
      {"--1", LineKind::not_integer, 0},
      {"++1", LineKind::not_integer, 0},
      {"1-", LineKind::not_integer, 0},
      {"+ 1", LineKind::not_integer, 0},
      {"- 1", LineKind::not_integer, 0},
      {"1 2", LineKind::not_integer, 0},
      {"1\t2", LineKind::not_integer, 0},
      {"1_000", LineKind::not_integer, 0},
      {"1,000", LineKind::not_integer, 0},
      {"\xEF\xBC\x91\xEF\xBC\x92", LineKind::not_integer, 0},  // "１２", full-width digits
      {"\xD9\xA3", LineKind::not_integer, 0},                  // Arabic-Indic digit three
      {"\xC2\xA0"
       "1",
       LineKind::not_integer, 0},  // no-break space is not ASCII
      {std::string("\0", 1), LineKind::not_integer, 0},
      {std::string("1\0", 2), LineKind::not_integer, 0},
      {std::string("\0"
                   "1",
                   2),
       LineKind::not_integer, 0},
      {std::string("1\0"
                   "2",
                   3),
       LineKind::not_integer, 0},
      {"\xff\xfe", LineKind::not_integer, 0},
      {"\x01"
       "5",
       LineKind::not_integer, 0},
      {"9223372036854775807x", LineKind::not_integer, 0},
      {"99999999999999999999x", LineKind::not_integer, 0},  // garbage wins over range
      // Empty after trimming.
      {"", LineKind::empty, 0},
      {"   ", LineKind::empty, 0},
      {"\r", LineKind::empty, 0},
      {" \t\r\v\f ", LineKind::empty, 0},
  }));
  CAPTURE(visible(input), kind_name(kind));

  std::int64_t out = 12345;
  const LineKind got = parse_line(input, out);
  CHECK(kind_name(got) == std::string(kind_name(kind)));
  if (kind == LineKind::value) CHECK(out == value);
}

TEST_CASE("LineFramer gives the same result however the stream is chunked", "[framer]") {
  SECTION("values, CRLF, empty lines and garbage, with a trailing line finish() completes") {
    check_every_split(64, "1\n-22\r\n\n+333\nabc\n 4444 \n99999999999999999999\r\n\r\n5");
  }
  SECTION("without finish(), the unterminated tail is held back") {
    check_every_split(64, "1\n-22\r\n\n+333\nabc\n 4444 \n5");
    const Outcome o = run_whole(64, "1\n-22\r\n5", /*finish=*/false);
    CHECK(o.values == std::vector<std::int64_t>{1, -22});
  }
  SECTION("over-long lines among good ones") {
    // max 6: "123456" fits, "1234567" does not, " -1234" (6 bytes) fits, "-12345\r" (7) does not.
    check_every_split(6, "123456\n1234567\n -1234\n-12345\r\n7\n12345678901234\n8");
  }
  SECTION("an over-long unterminated tail") {
    check_every_split(4, "1\n2\n123456789");
  }
  SECTION("the expected values themselves") {
    const Outcome o = run_whole(64, "1\n-22\r\n\n+333\nabc\n 4444 \n99999999999999999999\r\n\r\n5");
    CHECK(o.values == std::vector<std::int64_t>{1, -22, 333, 4444, 5});
    CHECK(o.counters == counters_text(counters(5, 2, 1, 1, 0)));
    const Outcome l = run_whole(6, "123456\n1234567\n -1234\n-12345\r\n7\n12345678901234\n8");
    CHECK(l.values == std::vector<std::int64_t>{123456, -1234, 7, 8});
    CHECK(l.counters == counters_text(counters(4, 0, 0, 0, 3)));
  }
}

TEST_CASE("LineFramer handles CRLF line endings", "[framer]") {
  const Outcome o = run_bytewise(32, "10\r\n-20\r\n\r\n30\r\n");
  CHECK(o.values == std::vector<std::int64_t>{10, -20, 30});
  CHECK(o.counters == counters_text(counters(3, 1, 0, 0, 0)));
}

TEST_CASE("LineFramer ignores and counts empty lines", "[framer]") {
  const auto [payload, expected_empty] = GENERATE(table<std::string, std::uint64_t>({
      {"\n", 1},
      {"\n\n\n", 3},
      {"1\n\n2\n", 1},
      {"  \n\t\n\r\n", 3},
      {"1\n2\n", 0},
  }));
  CAPTURE(visible(payload));
  LineFramer framer(16);
  std::vector<std::int64_t> values;
  framer.feed(payload, [&](std::int64_t v) { values.push_back(v); });
  CHECK(framer.counters().empty == expected_empty);
  CHECK(framer.counters().rejected() == 0);
  CHECK(framer.counters().accepted == values.size());
}

TEST_CASE("LineFramer counts garbage by reason and keeps accepting later lines", "[framer]") {
  LineFramer framer(32);
  std::vector<std::int64_t> values;
  const auto collect = [&](std::int64_t v) { values.push_back(v); };
  framer.feed("1\nabc\n2\n99999999999999999999\n3\n1.5\n\n4\n", collect);
  framer.feed("0123456789012345678901234567890123456789\n5\n", collect);  // 40 bytes > 32
  framer.feed(std::string_view("\0\n6\n", 4), collect);
  CHECK(values == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6});
  const LineCounters& c = framer.counters();
  CHECK(counters_text(c) == counters_text(counters(6, 1, 3, 1, 1)));
  CHECK(c.rejected() == 5);
}

TEST_CASE("LineFramer enforces max_line_bytes at the exact boundary", "[framer]") {
  constexpr std::size_t max = 8;
  // The limit counts every byte before '\n', whitespace and '\r' included.
  const auto [line, accepted_row] = GENERATE(table<std::string, bool>({
      {"12345678", true},
      {"123456789", false},
      {"-1234567", true},
      {"-12345678", false},
      {"  123456", true},
      {"  1234567", false},
      {"1234567\r", true},
      {"12345678\r", false},
      {"abcdefgh", false},   // fits, but garbage: not_integer rather than too_long
      {"abcdefghi", false},  // too_long
  }));
  const bool accepted = accepted_row;  // a plain variable, so the lambda below may capture it
  const bool fits = line.size() <= max;
  const std::string payload = line + "\n42\n";
  CAPTURE(visible(line), fits);

  const auto check = [&](const Outcome& o) {
    if (accepted) {
      REQUIRE(o.values.size() == 2);
      CHECK(o.values[1] == 42);
      CHECK(o.counters == counters_text(counters(2, 0, 0, 0, 0)));
    } else {
      CHECK(o.values == std::vector<std::int64_t>{42});
      CHECK(o.counters == counters_text(counters(1, 0, fits ? 1 : 0, 0, fits ? 0 : 1)));
    }
  };
  SECTION("within one chunk") {
    check(run_whole(max, payload));
  }
  SECTION("split at every position") {
    for (std::size_t i = 0; i <= payload.size(); ++i) {
      CAPTURE(i);
      check(
          run(max, {std::string_view(payload).substr(0, i), std::string_view(payload).substr(i)}));
    }
  }
  SECTION("one byte at a time") {
    check(run_bytewise(max, payload));
  }
  SECTION("as the last line, completed by finish()") {
    const Outcome o = run_whole(max, "42\n" + line);
    if (accepted) {
      CHECK(o.values.size() == 2);
    } else {
      CHECK(o.values == std::vector<std::int64_t>{42});
    }
  }
}

TEST_CASE("LineFramer bounds memory when a client never sends a newline", "[framer]") {
  constexpr std::size_t max = 1024;
  const std::string megabyte(1 << 20, '7');
  LineFramer framer(max);
  std::vector<std::int64_t> values;
  const auto collect = [&](std::int64_t v) { values.push_back(v); };

  SECTION("in small chunks") {
    for (std::size_t off = 0; off < megabyte.size(); off += 4096) {
      framer.feed(std::string_view(megabyte).substr(off, 4096), collect);
      REQUIRE(framer.pending_bytes() <= max);
      REQUIRE(framer.counters().too_long == 1);  // counted as soon as it is known, and only once
    }
  }
  SECTION("in one chunk") {
    framer.feed(megabyte, collect);
    CHECK(framer.pending_bytes() <= max);
    CHECK(framer.counters().too_long == 1);
  }
  SECTION("starting with a partial line that was still within bounds") {
    framer.feed(std::string(max, '1'), collect);
    CHECK(framer.pending_bytes() == max);
    CHECK(framer.counters().too_long == 0);
    framer.feed(megabyte, collect);
    CHECK(framer.pending_bytes() <= max);
    CHECK(framer.counters().too_long == 1);
  }
  CHECK(values.empty());
  framer.feed("7\n42\n", collect);  // the rest of the long line, then a good line
  CHECK(values == std::vector<std::int64_t>{42});
  CHECK(framer.counters().too_long == 1);
  CHECK(framer.counters().accepted == 1);
  CHECK(framer.pending_bytes() == 0);
}

TEST_CASE("LineFramer::finish handles the unterminated last line", "[framer]") {
  const auto [payload, expected_values,
              expected_counters] = GENERATE(table<std::string, std::vector<std::int64_t>,
                                                  std::string>({
      {"17", {17}, counters_text(counters(1, 0, 0, 0, 0))},
      {"1\n-17\r", {1, -17}, counters_text(counters(2, 0, 0, 0, 0))},
      {"1\n", {1}, counters_text(counters(1, 0, 0, 0, 0))},  // nothing pending: no extra line
      {"", {}, counters_text(counters(0, 0, 0, 0, 0))},
      {"1\n  ", {1}, counters_text(counters(1, 1, 0, 0, 0))},
      {"1\nab", {1}, counters_text(counters(1, 0, 1, 0, 0))},
      {"99999999999999999999", {}, counters_text(counters(0, 0, 0, 1, 0))},
      {"1234567890123456789012345678901234567890", {}, counters_text(counters(0, 0, 0, 0, 1))},
      {"1\n12345678901234567890123456789012345678901", {1}, counters_text(counters(1, 0, 0, 0, 1))},
      {"12345678901234567890123456789012", {}, counters_text(counters(0, 0, 0, 1, 0))},  // 32: fits
  }));
  CAPTURE(visible(payload));
  const Outcome whole = run_whole(32, payload);
  CHECK(whole.values == expected_values);
  CHECK(whole.counters == expected_counters);
  const Outcome bytewise = run_bytewise(32, payload);
  CHECK(bytewise.values == expected_values);
  CHECK(bytewise.counters == expected_counters);
}

TEST_CASE("LineFramer::finish does not emit the remainder of an over-long line", "[framer]") {
  LineFramer framer(4);
  std::vector<std::int64_t> values;
  const auto collect = [&](std::int64_t v) { values.push_back(v); };
  framer.feed("1234", collect);  // exactly max, still pending
  CHECK(framer.pending_bytes() == 4);
  framer.feed("5", collect);  // now one too many: dropped
  CHECK(framer.pending_bytes() == 0);
  framer.feed("6", collect);  // the tail "6" must not come out as a value
  framer.finish(collect);
  CHECK(values.empty());
  CHECK(counters_text(framer.counters()) == counters_text(counters(0, 0, 0, 0, 1)));
  CHECK(framer.pending_bytes() == 0);
}

TEST_CASE("LineCounters::operator+= adds every counter", "[framer]") {
  LineCounters a = counters(1, 2, 3, 4, 5);
  const LineCounters b = counters(10, 20, 30, 40, 50);
  LineCounters& result = (a += b);
  CHECK(&result == &a);
  CHECK(counters_text(a) == counters_text(counters(11, 22, 33, 44, 55)));
  CHECK(a.rejected() == 33 + 44 + 55);
  CHECK(counters_text(b) == counters_text(counters(10, 20, 30, 40, 50)));

  (a += b) += b;
  CHECK(counters_text(a) == counters_text(counters(31, 62, 93, 124, 155)));

  LineCounters zero;
  a += zero;
  CHECK(counters_text(a) == counters_text(counters(31, 62, 93, 124, 155)));
  CHECK(zero.rejected() == 0);
}
