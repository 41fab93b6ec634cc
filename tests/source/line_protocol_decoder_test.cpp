// Unit tests for the decoders of source/decoder.hpp: LineProtocolDecoder (lines framed by
// LineSplitter, parsed, handed to the pipeline's callback, counted by outcome) and
// IntegerDecoder (one int64 per line, handed over per chunk); and LineSplitter on its own.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "printable.hpp"
#include "source/integer_decoder.hpp"
#include "source/line_framer.hpp"
#include "source/line_protocol_decoder.hpp"
#include "source/line_protocol_parser.hpp"

using tumbled::source::describe;
using tumbled::source::IntegerDecoder;
using tumbled::source::LineCounters;
using tumbled::source::LineProtocolDecoder;
using tumbled::source::LineSplitter;
using tumbled::source::ParsedField;
using tumbled::source::ParsedLine;
using tumbled::source::Rejection;

using tumbled::test::counters_text;
using tumbled::test::visible;

namespace {

// One readable text per parsed line: measurement, tags, fields with their types, timestamp.
std::string render(const ParsedLine& line) {
  std::string out = "<" + std::string(line.measurement) + ">";
  for (const auto& [key, value] : line.tags) {
    out += " " + std::string(key) + "=" + std::string(value);
  }
  for (const auto& f : line.fields) {
    out += " " + std::string(f.key) + ":";
    switch (f.type) {
      case ParsedField::Type::integer: out += "i" + std::to_string(f.i); break;
      case ParsedField::Type::unsigned_integer: out += "u" + std::to_string(f.u); break;
      case ParsedField::Type::floating: out += "f" + std::to_string(f.f); break;
      case ParsedField::Type::boolean: out += f.b ? "true" : "false"; break;
      case ParsedField::Type::string: out += "\"" + std::string(f.s) + "\""; break;
    }
  }
  if (line.timestamp) out += " @" + std::to_string(*line.timestamp);
  return out;
}

// The pipeline's side of a LineProtocolDecoder: records every line handed over and answers by
// the measurement: "late" too_late, "future" too_far_in_future, "conflict" type_conflict,
// "many" too_many_keys, "none" no_numeric_field, "big" out_of_range; anything else is taken.
struct Pipeline {
  std::vector<std::string> lines;

  LineProtocolDecoder::OnLine callback() {
    return [this](const ParsedLine& line) {
      lines.push_back(render(line));
      static const std::map<std::string_view, Rejection> answers{
          {"late", Rejection::too_late},          {"future", Rejection::too_far_in_future},
          {"conflict", Rejection::type_conflict}, {"many", Rejection::too_many_keys},
          {"none", Rejection::no_numeric_field},  {"big", Rejection::out_of_range},
      };
      const auto it = answers.find(line.measurement);
      return it == answers.end() ? Rejection::none : it->second;
    };
  }
};

// A stream of every kind of line, the last one without '\n'.
const std::string kStream =
    "cpu,host=a v=1i 1\n"
    "\r\n"
    "   \n"
    "# a comment, v=1i\n"
    "mem,host=b\\ c f=2.5,s=\"x\\\"y, z\" 2\r\n"
    "cpu v=\n"
    "late v=1i\n"
    "\n"
    "  #indented comment\n"
    "last v=3u";

const std::vector<std::string> kStreamLines{
    "<cpu> host=a v:i1 @1",
    "<mem> host=b c f:f2.500000 s:\"x\"y, z\" @2",
    "<late> v:i1",
    "<last> v:u3",
};

LineCounters stream_counters() {
  LineCounters c;
  c.accepted = 3;
  c.empty = 5;
  c.bad_line = 1;
  c.too_late = 1;
  return c;
}

}  // namespace

TEST_CASE("LineProtocolDecoder: one feed, every kind of line", "[decoder]") {
  Pipeline pipeline;
  LineProtocolDecoder decoder(1024, pipeline.callback());
  CHECK(decoder.last_rejection().empty());
  decoder.feed(kStream);
  CHECK(pipeline.lines.size() == 3);  // the last line waits for its '\n' or finish()
  // The first rejection of the chunk.
  CHECK(decoder.last_rejection() ==
        "line 6: not valid line protocol: column 7: missing field value");
  decoder.finish();
  CHECK(pipeline.lines == kStreamLines);
  CHECK(counters_text(decoder.counters()) == counters_text(stream_counters()));
  CHECK(decoder.counters().rejected() == 2);
}

TEST_CASE("LineProtocolDecoder: lines split across feeds at every byte offset", "[decoder]") {
  const LineCounters expected = stream_counters();
  for (std::size_t i = 0; i <= kStream.size(); ++i) {
    for (std::size_t j = i; j <= kStream.size(); ++j) {
      Pipeline pipeline;
      LineProtocolDecoder decoder(1024, pipeline.callback());
      decoder.feed(std::string_view(kStream).substr(0, i));
      decoder.feed(std::string_view(kStream).substr(i, j - i));
      decoder.feed(std::string_view(kStream).substr(j));
      decoder.finish();
      if (pipeline.lines != kStreamLines ||
          counters_text(decoder.counters()) != counters_text(expected)) {
        INFO("split at " << i << " and " << j);
        CHECK(pipeline.lines == kStreamLines);
        CHECK(counters_text(decoder.counters()) == counters_text(expected));
      }
    }
  }
  Pipeline pipeline;
  LineProtocolDecoder decoder(1024, pipeline.callback());
  for (const char c : kStream) decoder.feed(std::string_view(&c, 1));
  decoder.finish();
  CHECK(pipeline.lines == kStreamLines);
  CHECK(counters_text(decoder.counters()) == counters_text(expected));
}

TEST_CASE("LineProtocolDecoder: blank lines, CRLF and comments are counted as empty", "[decoder]") {
  const auto [bytes, empty, accepted] = GENERATE(table<std::string, int, int>({
      {"\n", 1, 0},
      {"\r\n", 1, 0},
      {"\r\n\r\n\n", 3, 0},
      {" \t \n", 1, 0},
      {"#\n", 1, 0},
      {"# m v=1i\n", 1, 0},
      {"   #x y z\r\n", 1, 0},
      {"m v=1i\r\n", 0, 1},
      {"m v=1i\r\n\r\nm v=2i\n", 1, 2},
  }));
  CAPTURE(visible(bytes));
  Pipeline pipeline;
  LineProtocolDecoder decoder(64, pipeline.callback());
  decoder.feed(bytes);
  decoder.finish();
  CHECK(decoder.counters().empty == static_cast<std::uint64_t>(empty));
  CHECK(decoder.counters().accepted == static_cast<std::uint64_t>(accepted));
  CHECK(decoder.counters().rejected() == 0);
  CHECK(pipeline.lines.size() == static_cast<std::size_t>(accepted));
  CHECK(decoder.last_rejection().empty());
}

TEST_CASE("LineProtocolDecoder: a bad line is counted, last_rejection names its column",
          "[decoder]") {
  const auto [line, message] = GENERATE(table<std::string, std::string>({
      {"cpu v=", "column 7: missing field value"},
      {"cpu v=1x", "column 7: invalid number"},
      {",cpu v=1", "column 1: missing measurement"},
      {"cpu,host v=1", "column 9: missing tag value"},
      {"cpu", "column 4: missing fields"},
      {"cpu v=1i abc", "column 10: bad timestamp"},
      {"cpu v=1i 1 2", "column 12: characters after timestamp"},
      {"cpu,t=a,t=b v=1", "column 9: duplicate tag key"},
      {"cpu v=\"abc", "column 7: unterminated string"},
      {"cpu v=99999999999999999999i", "column 7: number out of range"},
  }));
  CAPTURE(line);
  Pipeline pipeline;
  LineProtocolDecoder decoder(1024, pipeline.callback());
  decoder.feed("ok v=1i\n" + line + "\nok v=2i\n");
  CHECK(decoder.counters().bad_line == 1);
  CHECK(decoder.counters().accepted == 2);
  CHECK(decoder.counters().rejected() == 1);
  CHECK(pipeline.lines.size() == 2);  // the bad line never reaches the pipeline
  CHECK(decoder.last_rejection() == "line 2: not valid line protocol: " + message);
}

TEST_CASE("LineProtocolDecoder: counts the pipeline's answers by reason", "[decoder]") {
  Pipeline pipeline;
  LineProtocolDecoder decoder(1024, pipeline.callback());
  const auto [measurement, reason] = GENERATE(table<std::string, Rejection>({
      {"late", Rejection::too_late},
      {"future", Rejection::too_far_in_future},
      {"conflict", Rejection::type_conflict},
      {"many", Rejection::too_many_keys},
      {"none", Rejection::no_numeric_field},
      {"big", Rejection::out_of_range},
  }));
  CAPTURE(measurement);
  decoder.feed("ok v=1i\n" + measurement + " v=1i\n" + measurement + " v=2i\n");
  LineCounters expected;
  expected.accepted = 1;
  expected[reason] = 2;
  CHECK(counters_text(decoder.counters()) == counters_text(expected));
  CHECK(decoder.counters().rejected() == 2);
  CHECK(pipeline.lines.size() == 3);
  CHECK(decoder.last_rejection() == "line 2: " + std::string(describe(reason)));
  decoder.feed("ok v=1i\n");
  CHECK(decoder.counters().accepted == 2);
}

TEST_CASE("LineProtocolDecoder: a line over max_line_bytes is counted and skipped", "[decoder]") {
  Pipeline pipeline;
  LineProtocolDecoder decoder(16, pipeline.callback());
  decoder.feed("m v=1i 123456789\n");    // 16 bytes: fits
  decoder.feed("m v=1i 1234567890\n");   // 17 bytes
  decoder.feed("m v=1i 123456789\r\n");  // 16 + '\r'
  CHECK(pipeline.lines == std::vector<std::string>{"<m> v:i1 @123456789"});
  CHECK(decoder.counters().too_long == 2);
  CHECK(decoder.counters().accepted == 1);
  CHECK(decoder.last_rejection() == "line 3: " + std::string(describe(Rejection::too_long)));

  // Split across feeds, and one that never ends: counted once, as soon as it is known.
  decoder.feed("m v=1i 12345");
  decoder.feed("67890\nm v=2i\n");
  CHECK(decoder.counters().too_long == 3);
  decoder.feed("m v=1i 1234567890123456789");
  CHECK(decoder.counters().too_long == 4);
  decoder.feed("0123456789");
  decoder.feed("0123456789");
  CHECK(decoder.counters().too_long == 4);
  decoder.feed("\nm v=3i\n");
  decoder.finish();
  CHECK(pipeline.lines == std::vector<std::string>{"<m> v:i1 @123456789", "<m> v:i2", "<m> v:i3"});
  CHECK(decoder.counters().too_long == 4);
  CHECK(decoder.counters().accepted == 3);
  CHECK(decoder.counters().rejected() == 4);
}

TEST_CASE("LineProtocolDecoder: finish() hands over a last line without newline, once",
          "[decoder]") {
  Pipeline pipeline;
  LineProtocolDecoder decoder(64, pipeline.callback());
  decoder.feed("a v=1i\nb v=2");
  CHECK(pipeline.lines == std::vector<std::string>{"<a> v:i1"});
  decoder.finish();
  CHECK(pipeline.lines == std::vector<std::string>{"<a> v:i1", "<b> v:f2.000000"});
  decoder.finish();
  CHECK(pipeline.lines.size() == 2);
  CHECK(decoder.counters().accepted == 2);

  Pipeline bad;
  LineProtocolDecoder cut(64, bad.callback());
  cut.feed("a v=");
  cut.finish();
  CHECK(cut.counters().bad_line == 1);
  CHECK(cut.last_rejection() == "line 1: not valid line protocol: column 5: missing field value");

  Pipeline over;
  LineProtocolDecoder long_tail(8, over.callback());
  long_tail.feed("a v=1i 123456789");
  long_tail.finish();
  CHECK(over.lines.empty());
  CHECK(long_tail.counters().too_long == 1);
  CHECK(long_tail.counters().accepted == 0);
}

// Decoder::last_rejection(): why the first line rejected in the latest chunk (feed or finish)
// was rejected.
TEST_CASE("LineProtocolDecoder: last_rejection is the first rejection of the latest chunk",
          "[decoder]") {
  const auto [chunk, expected] = GENERATE(table<std::string, std::string>({
      {"late v=1i\n", "line 2: " + std::string(describe(Rejection::too_late))},
      {"ok v=1i\ncpu v=1x\nmany v=1i\n",
       "line 3: not valid line protocol: column 7: invalid number"},
      {"many v=1i\ncpu v=1x\n", "line 2: " + std::string(describe(Rejection::too_many_keys))},
      {"m v=1i 1234567890\ncpu v=1x\n", "line 2: " + std::string(describe(Rejection::too_long))},
      {"cpu v=1x\nm v=1i 1234567890\n",
       "line 2: not valid line protocol: column 7: invalid number"},
      {"ok v=1i\nnone v=1i\nm v=1i 1234567890123456789",
       "line 3: " + std::string(describe(Rejection::no_numeric_field))},
      {"ok v=1i\nm v=1i 1234567890123456789",
       "line 3: " + std::string(describe(Rejection::too_long))},
  }));
  CAPTURE(chunk);
  Pipeline pipeline;
  LineProtocolDecoder decoder(16, pipeline.callback());
  decoder.feed("future v=1i\n");
  CHECK(decoder.last_rejection() ==
        "line 1: " + std::string(describe(Rejection::too_far_in_future)));
  decoder.feed(chunk);
  CHECK(decoder.last_rejection() == expected);
}

TEST_CASE("LineProtocolDecoder: a line completed in a chunk is that chunk's", "[decoder]") {
  Pipeline pipeline;
  LineProtocolDecoder decoder(16, pipeline.callback());
  decoder.feed("future v=1i\nm v=1i 123456");
  CHECK(decoder.last_rejection() ==
        "line 1: " + std::string(describe(Rejection::too_far_in_future)));
  decoder.feed("7890\nlate v=1i\n");  // the long line ends here
  CHECK(decoder.last_rejection() == "line 2: " + std::string(describe(Rejection::too_long)));
  decoder.feed("late v=1i\nconflict v=");
  CHECK(decoder.last_rejection() == "line 4: " + std::string(describe(Rejection::too_late)));
  decoder.finish();
  CHECK(decoder.last_rejection() ==
        "line 5: not valid line protocol: column 12: missing field value");
  CHECK(decoder.counters().too_long == 1);
  CHECK(decoder.counters().too_late == 2);
  CHECK(decoder.counters().bad_line == 1);
  CHECK(decoder.counters().too_far_in_future == 1);
}

// ---------------------------------------------------------------------------------------------
// IntegerDecoder

namespace {

struct IntegerSink {
  std::vector<std::int64_t> buffer;  // shared by the decoders of a source
  std::vector<std::vector<std::int64_t>> handed;

  IntegerDecoder::OnValues callback() {
    return [this](std::span<const std::int64_t> values) {
      handed.emplace_back(values.begin(), values.end());
    };
  }
  std::vector<std::int64_t> all() const {
    std::vector<std::int64_t> out;
    for (const auto& chunk : handed) out.insert(out.end(), chunk.begin(), chunk.end());
    return out;
  }
};

}  // namespace

TEST_CASE("IntegerDecoder: the values of each chunk are handed over together", "[decoder]") {
  IntegerSink sink;
  IntegerDecoder decoder(64, sink.buffer, sink.callback());
  decoder.feed("1\n2\n-3\n4");
  CHECK(sink.handed == std::vector<std::vector<std::int64_t>>{{1, 2, -3}});
  CHECK(sink.buffer.empty());
  decoder.feed("2\n+5\r\n");
  CHECK(sink.handed == std::vector<std::vector<std::int64_t>>{{1, 2, -3}, {42, 5}});
  decoder.feed("x\n\n");  // no value: nothing handed over
  CHECK(sink.handed.size() == 2);
  decoder.feed("7");
  decoder.finish();
  CHECK(sink.handed.back() == std::vector<std::int64_t>{7});
  CHECK(sink.buffer.empty());
  CHECK(decoder.counters().accepted == 6);
  CHECK(decoder.counters().empty == 1);
  CHECK(decoder.counters().not_integer == 1);
}

TEST_CASE("IntegerDecoder: lines split across feeds at every byte offset", "[decoder]") {
  const std::string stream =
      "1\n-22\r\n\n 333 \nabc\n99999999999999999999\n9223372036854775807\n"
      "-9223372036854775808\n123456789012345678901234567890123\n+4\n5";
  const std::vector<std::int64_t> values{1,
                                         -22,
                                         333,
                                         std::numeric_limits<std::int64_t>::max(),
                                         std::numeric_limits<std::int64_t>::min(),
                                         4,
                                         5};
  LineCounters expected;
  expected.accepted = 7;
  expected.empty = 1;
  expected.not_integer = 1;
  expected.out_of_range = 1;
  expected.too_long = 1;
  for (std::size_t i = 0; i <= stream.size(); ++i) {
    IntegerSink sink;
    IntegerDecoder decoder(32, sink.buffer, sink.callback());
    decoder.feed(std::string_view(stream).substr(0, i));
    decoder.feed(std::string_view(stream).substr(i));
    decoder.finish();
    if (sink.all() != values || counters_text(decoder.counters()) != counters_text(expected)) {
      INFO("split at " << i);
      CHECK(sink.all() == values);
      CHECK(counters_text(decoder.counters()) == counters_text(expected));
    }
  }
}

TEST_CASE("IntegerDecoder: last_rejection names the reason of the chunk's rejection", "[decoder]") {
  const auto [chunk, reason] = GENERATE(table<std::string, Rejection>({
      {"1\nx\n2\n", Rejection::not_integer},
      {"1.5\n", Rejection::not_integer},
      {"99999999999999999999\n", Rejection::out_of_range},
      {"-9223372036854775809\n", Rejection::out_of_range},
      {"1234567890123456789012345\n", Rejection::too_long},
      {"12345678901234567890123456789", Rejection::too_long},  // no newline yet
  }));
  CAPTURE(chunk);
  IntegerSink sink;
  IntegerDecoder decoder(24, sink.buffer, sink.callback());
  decoder.feed("1\n");
  decoder.feed(chunk);
  CHECK(decoder.counters().rejected() == 1);
  LineCounters counters = decoder.counters();
  CHECK(counters[reason] == 1);
  CHECK(decoder.last_rejection() == describe(reason));
}

TEST_CASE("IntegerDecoder: a last line without newline is rejected at finish()", "[decoder]") {
  IntegerSink sink;
  IntegerDecoder decoder(24, sink.buffer, sink.callback());
  decoder.feed("1\nabc");
  CHECK(decoder.counters().not_integer == 0);
  decoder.finish();
  CHECK(decoder.counters().not_integer == 1);
  CHECK(decoder.last_rejection() == describe(Rejection::not_integer));
}

// Decoder::last_rejection(): why the first line rejected in the latest chunk was rejected.
TEST_CASE("IntegerDecoder: last_rejection is the first rejection of the chunk", "[decoder]") {
  const auto [chunk, reason] = GENERATE(table<std::string, Rejection>({
      {"x\n99999999999999999999\n", Rejection::not_integer},
      {"99999999999999999999\nx\n", Rejection::out_of_range},
      {"1234567890123456789012345\nx\n", Rejection::too_long},
      {"1234567890123456789012345\n99999999999999999999\n", Rejection::too_long},
      {"99999999999999999999\n1234567890123456789012345\n", Rejection::out_of_range},
  }));
  CAPTURE(chunk);
  IntegerSink sink;
  IntegerDecoder decoder(24, sink.buffer, sink.callback());
  decoder.feed(chunk);
  CHECK(decoder.counters().rejected() == 2);
  CHECK(decoder.last_rejection() == describe(reason));
}

// ---------------------------------------------------------------------------------------------
// LineSplitter

TEST_CASE("LineSplitter::feed_line consumes up to the first newline", "[decoder]") {
  LineSplitter splitter(4);
  std::vector<std::string> lines;
  const auto on_line = [&lines](std::string_view line) { lines.emplace_back(line); };
  CHECK(splitter.at_line_start());
  CHECK(splitter.feed_line("ab\ncd", on_line) == 3);
  CHECK(lines == std::vector<std::string>{"ab"});
  CHECK(splitter.at_line_start());
  CHECK(splitter.feed_line("cd", on_line) == 2);
  CHECK(splitter.pending_bytes() == 2);
  CHECK_FALSE(splitter.at_line_start());
  CHECK(splitter.feed_line("e", on_line) == 1);
  CHECK(splitter.pending_bytes() == 3);
  CHECK(splitter.feed_line("f\n\n", on_line) == 2);  // "cdef": exactly 4
  CHECK(lines == std::vector<std::string>{"ab", "cdef"});
  CHECK(splitter.pending_bytes() == 0);
  CHECK(splitter.feed_line("\n", on_line) == 1);  // an empty line is a line
  CHECK(lines == std::vector<std::string>{"ab", "cdef", ""});
  CHECK(splitter.too_long() == 0);

  // Too long in one piece, with its newline.
  CHECK(splitter.feed_line("abcde\nx", on_line) == 6);
  CHECK(splitter.too_long() == 1);
  CHECK(splitter.at_line_start());
  // Too long without its newline: counted at once, then discarded up to the newline.
  CHECK(splitter.feed_line("abcde", on_line) == 5);
  CHECK(splitter.too_long() == 2);
  CHECK(splitter.pending_bytes() == 0);
  CHECK_FALSE(splitter.at_line_start());
  CHECK(splitter.feed_line("fghij", on_line) == 5);
  CHECK(splitter.feed_line("k\nlm\n", on_line) == 2);
  CHECK(splitter.too_long() == 2);
  CHECK(splitter.at_line_start());
  // Too long once its newline comes: a partial line plus the rest.
  CHECK(splitter.feed_line("lm", on_line) == 2);
  CHECK(splitter.feed_line("nop\n", on_line) == 4);
  CHECK(splitter.too_long() == 3);
  CHECK(splitter.pending_bytes() == 0);
  CHECK(lines == std::vector<std::string>{"ab", "cdef", ""});
  CHECK(splitter.feed_line("", on_line) == 0);
}

TEST_CASE("LineSplitter::finish hands over a pending line, not a discarded one", "[decoder]") {
  std::vector<std::string> lines;
  const auto on_line = [&lines](std::string_view line) { lines.emplace_back(line); };
  LineSplitter splitter(4);
  splitter.feed("a\nbc", on_line);
  splitter.finish(on_line);
  CHECK(lines == std::vector<std::string>{"a", "bc"});
  CHECK(splitter.at_line_start());
  splitter.finish(on_line);
  CHECK(lines.size() == 2);
  splitter.feed("abcdefg", on_line);
  splitter.finish(on_line);
  CHECK(lines.size() == 2);
  CHECK(splitter.at_line_start());  // the next stream starts afresh
  splitter.feed("xy\n", on_line);
  CHECK(lines == std::vector<std::string>{"a", "bc", "xy"});
}

TEST_CASE("LineSplitter never holds more than max_line_bytes", "[decoder]") {
  std::mt19937 random(20240611);
  const std::size_t max = 10;
  LineSplitter splitter(max);
  std::string fed;
  std::vector<std::string> lines;
  const auto on_line = [&lines](std::string_view line) { lines.emplace_back(line); };
  // Lines of 0 to 20 bytes in chunks of 1 to 30 bytes.
  std::string stream;
  std::vector<std::string> expected;
  std::uint64_t expected_too_long = 0;
  for (int i = 0; i < 2'000; ++i) {
    const std::size_t length = random() % 21;
    std::string line(length, static_cast<char>('a' + i % 26));
    stream += line + "\n";
    if (length <= max) {
      expected.push_back(line);
    } else {
      ++expected_too_long;
    }
  }
  for (std::size_t at = 0; at < stream.size();) {
    std::string_view chunk = std::string_view(stream).substr(at, 1 + random() % 30);
    at += chunk.size();
    while (!chunk.empty()) {
      const std::size_t used = splitter.feed_line(chunk, on_line);
      REQUIRE(used >= 1);
      REQUIRE(used <= chunk.size());
      chunk.remove_prefix(used);
      REQUIRE(splitter.pending_bytes() <= max);
    }
  }
  CHECK(lines == expected);
  CHECK(splitter.too_long() == expected_too_long);
}
