// Unit tests for sink/line_protocol: exact encodings, escaping, value types, and name_problem.
#include <catch2/catch.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sink/line_protocol.hpp"

using tumbled::sink::append_point;
using tumbled::sink::Field;
using tumbled::sink::FieldValue;
using tumbled::sink::name_problem;
using tumbled::sink::NameRole;

namespace {

using Tags = std::map<std::string, std::string>;

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

std::string point(const std::string& measurement, const Tags& tags,
                  const std::vector<Field>& fields, std::int64_t timestamp_ms) {
  std::string out;
  append_point(out, measurement, tags, fields, timestamp_ms);
  return out;
}

// The text one field value encodes to: "m f=<this> 0\n".
std::string encode_value(FieldValue value) {
  const std::string line = point("m", {}, {{"f", value}}, 0);
  const std::string prefix = "m f=";
  const std::string suffix = " 0\n";
  REQUIRE(line.size() > prefix.size() + suffix.size());
  REQUIRE(line.compare(0, prefix.size(), prefix) == 0);
  REQUIRE(line.compare(line.size() - suffix.size(), suffix.size(), suffix) == 0);
  return line.substr(prefix.size(), line.size() - prefix.size() - suffix.size());
}

// A float token as InfluxDB's parser accepts it: -?digits[.digits][e[+-]digits], no 'i' suffix.
bool is_influx_float(const std::string& s) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (!digits()) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

}  // namespace

TEST_CASE("append_point writes the default point exactly", "[line_protocol]") {
  CHECK(point("records", {{"window", "10-sec"}}, {{"sum", std::int64_t{42}}}, 1'700'000'000'000) ==
        "records,window=10-sec sum=42i 1700000000000\n");
}

TEST_CASE("append_point appends to what is already in the buffer", "[line_protocol]") {
  std::string out = "first 1\n";
  append_point(out, "m", {}, {{"a", std::int64_t{1}}}, 2);
  append_point(out, "m", {}, {{"a", std::int64_t{3}}}, 4);
  CHECK(out == "first 1\nm a=1i 2\nm a=3i 4\n");
}

TEST_CASE("append_point escapes special characters per element", "[line_protocol]") {
  const auto [measurement, tag_key, tag_value, field_key, expected] =
      GENERATE(table<std::string, std::string, std::string, std::string, std::string>({
          {"m", "t", "v", "f", "m,t=v f=1i 5\n"},
          // Measurement: commas and spaces, but not '='.
          {"my measurement", "t", "v", "f", "my\\ measurement,t=v f=1i 5\n"},
          {"a,b", "t", "v", "f", "a\\,b,t=v f=1i 5\n"},
          {"a=b", "t", "v", "f", "a=b,t=v f=1i 5\n"},
          {" lead,trail ", "t", "v", "f", "\\ lead\\,trail\\ ,t=v f=1i 5\n"},
          // Tag keys: commas, '=' and spaces.
          {"m", "tag key", "v", "f", "m,tag\\ key=v f=1i 5\n"},
          {"m", "t,k", "v", "f", "m,t\\,k=v f=1i 5\n"},
          {"m", "t=k", "v", "f", "m,t\\=k=v f=1i 5\n"},
          // Tag values: commas, '=' and spaces.
          {"m", "t", "v 1", "f", "m,t=v\\ 1 f=1i 5\n"},
          {"m", "t", "a,b", "f", "m,t=a\\,b f=1i 5\n"},
          {"m", "t", "a=b", "f", "m,t=a\\=b f=1i 5\n"},
          {"m", "t", "x=1, y=2", "f", "m,t=x\\=1\\,\\ y\\=2 f=1i 5\n"},
          // Field keys: commas, '=' and spaces.
          {"m", "t", "v", "field key", "m,t=v field\\ key=1i 5\n"},
          {"m", "t", "v", "f,g", "m,t=v f\\,g=1i 5\n"},
          {"m", "t", "v", "f=g", "m,t=v f\\=g=1i 5\n"},
          // Characters that need no escaping outside string field values.
          {"a\"b", "t\"", "\"v\"", "f\"", "a\"b,t\"=\"v\" f\"=1i 5\n"},
          {"a\\b", "t\\k", "v\\w", "f\\g", "a\\b,t\\k=v\\w f\\g=1i 5\n"},
          {"m\xC3\xA9", "t\xC3\xA9", "v\xC3\xA9", "f\xC3\xA9",
           "m\xC3\xA9,t\xC3\xA9=v\xC3\xA9 f\xC3\xA9=1i 5\n"},
          {"#not-first", "#t", "#v", "#f", "#not-first,#t=#v #f=1i 5\n"},
      }));
  CAPTURE(measurement, tag_key, tag_value, field_key);
  CHECK(point(measurement, {{tag_key, tag_value}}, {{field_key, std::int64_t{1}}}, 5) == expected);
}

TEST_CASE("append_point writes tags sorted by key and fields in the given order",
          "[line_protocol]") {
  SECTION("no tags") {
    CHECK(point("m", {}, {{"f", std::int64_t{1}}}, 5) == "m f=1i 5\n");
  }
  SECTION("several tags, whatever order they were inserted in") {
    Tags tags;
    tags["zeta"] = "1";
    tags["alpha"] = "2";
    tags["Mid"] = "3";  // byte order: upper case sorts first
    tags["alpha2"] = "4";
    tags["\xC3\xA9t\xC3\xA9"] = "5";  // UTF-8 bytes >= 0x80 sort after ASCII, as in InfluxDB
    CHECK(point("m", tags, {{"f", std::int64_t{1}}}, 5) ==
          "m,Mid=3,alpha=2,alpha2=4,zeta=1,\xC3\xA9t\xC3\xA9=5 f=1i 5\n");
  }
  SECTION("several fields, not sorted") {
    const std::vector<Field> fields{{"sum", std::int64_t{10}},
                                    {"count", std::int64_t{4}},
                                    {"mean", 2.5},
                                    {"sum_saturated", true}};
    CHECK(point("records", {{"window", "10-sec"}}, fields, 1'700'000'010'000) ==
          "records,window=10-sec sum=10i,count=4i,mean=2.5,sum_saturated=true 1700000010000\n");
  }
}

TEST_CASE("append_point types field values", "[line_protocol]") {
  const auto [value, expected] = GENERATE(table<FieldValue, std::string>({
      {std::int64_t{0}, "0i"},
      {std::int64_t{42}, "42i"},
      {std::int64_t{-5}, "-5i"},
      {kMax, "9223372036854775807i"},
      {kMin, "-9223372036854775808i"},
      {2.5, "2.5"},
      {3.0, "3"},  // no 'i': InfluxDB reads a bare whole number as a float
      {0.0, "0"},
      {-0.25, "-0.25"},
      {0.1, "0.1"},
      {1.0 / 3.0, "0.3333333333333333"},
      {-1234.5, "-1234.5"},
      {1e21, "1e+21"},
      {1.5e-7, "1.5e-07"},
      {static_cast<double>(kMax), "9223372036854775808"},  // shortest form here is fixed
      {true, "true"},
      {false, "false"},
  }));
  CAPTURE(expected);
  CHECK(encode_value(value) == expected);
}

TEST_CASE("append_point writes doubles that read back exactly as InfluxDB floats",
          "[line_protocol]") {
  const double value =
      GENERATE(0.0, -0.0, 1.0, -1.0, 2.5, 3.0, 0.1, 1.0 / 3.0, -2.0 / 3.0, 1e-300, 123456789.125,
               4.5e15, 9.007199254740993e15, 1e22, -1e100, std::numeric_limits<double>::max(),
               std::numeric_limits<double>::lowest(), std::numeric_limits<double>::min(),
               std::numeric_limits<double>::denorm_min(), static_cast<double>(kMin),
               std::nextafter(1.0, 2.0));
  CAPTURE(value);
  const std::string text = encode_value(value);
  CAPTURE(text);
  CHECK(is_influx_float(text));
  double back = 12345;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), back);
  REQUIRE(ec == std::errc{});
  CHECK(end == text.data() + text.size());
  CHECK(back == value);
  CHECK(std::signbit(back) == std::signbit(value));
}

TEST_CASE("append_point never writes NaN or infinity", "[line_protocol]") {
  const double value =
      GENERATE(std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
               -std::numeric_limits<double>::infinity());
  const std::string text = encode_value(value);
  CAPTURE(text);
  CHECK(is_influx_float(text));  // line protocol has no spelling for them
}

TEST_CASE("append_point writes any timestamp", "[line_protocol]") {
  const auto [timestamp, expected] = GENERATE(table<std::int64_t, std::string>({
      {0, "m f=1i 0\n"},
      {1, "m f=1i 1\n"},
      {-1, "m f=1i -1\n"},
      {-1'700'000'000'000, "m f=1i -1700000000000\n"},
      {kMax, "m f=1i 9223372036854775807\n"},
      {kMin, "m f=1i -9223372036854775808\n"},
  }));
  CHECK(point("m", {}, {{"f", std::int64_t{1}}}, timestamp) == expected);
}

TEST_CASE("name_problem refuses names line protocol cannot carry", "[line_protocol]") {
  constexpr auto M = NameRole::measurement;
  constexpr auto TK = NameRole::tag_key;
  constexpr auto TV = NameRole::tag_value;
  constexpr auto FK = NameRole::field_key;
  const auto [name, role, refused] = GENERATE_COPY(table<std::string, NameRole, bool>({
      // Empty: never.
      {"", M, true},
      {"", TK, true},
      {"", TV, true},
      {"", FK, true},
      // Line breaks: never.
      {"a\nb", M, true},
      {"a\nb", TK, true},
      {"a\nb", TV, true},
      {"a\nb", FK, true},
      {"\n", TV, true},
      {"ab\n", M, true},
      {"a\rb", M, true},
      {"a\rb", TV, true},
      // '#' starts a comment only at the start of a line, i.e. of the measurement.
      {"#m", M, true},
      {"#", M, true},
      {"#t", TK, false},
      {"#v", TV, false},
      {"#f", FK, false},
      {"m#", M, false},
      {"a#b", M, false},
      // A trailing backslash would escape the separator after it.
      {"a\\", M, true},
      {"a\\", TK, true},
      {"a\\", TV, true},
      {"a\\", FK, true},
      {"\\", TV, true},
      {"a\\b", M, false},
      {"a\\b", TV, false},
      // InfluxDB 1.x reads a backslash before ` ,="` in a measurement or field key as an escape,
      // and drops a leading tab or NUL there (found by tests/fuzz, seen on influxd 1.6).
      {"a\\ b", M, true},
      {"a\\,b", M, true},
      {"a\\=b", M, true},
      {"a\\\"b", M, true},
      {"a\\\\ b", M, true},
      {"\tm", M, true},
      {std::string("\0m", 2), M, true},
      {"f\\ g", FK, true},
      {"f\\\"g", FK, true},
      {"\tf", FK, true},
      {"a\\\\b", M, false},
      {"m\t", M, false},
      {"a\\ b", TK, false},
      {"a\\,b", TV, false},
      {"a\\=b", TV, false},
      {"\tv", TV, false},
      // 'time' is reserved as a tag or field key only.
      {"time", TK, true},
      {"time", FK, true},
      {"time", M, false},
      {"time", TV, false},
      {"times", TK, false},
      {"mytime", FK, false},
      // Fine names, special characters included (append_point escapes them).
      {"records", M, false},
      {"window", TK, false},
      {"10-sec", TV, false},
      {"sum", FK, false},
      {"sum_saturated", FK, false},
      {"with space", M, false},
      {"a,b", M, false},
      {"a=b", TK, false},
      {"a b,c=d", TV, false},
      {"a b,c=d", FK, false},
      {"\xC3\xBCnic\xC3\xB6"
       "de",
       TV, false},
      {" ", TV, false},
  }));
  CAPTURE(name, static_cast<int>(role));
  const std::optional<std::string> problem = name_problem(name, role);
  CHECK(problem.has_value() == refused);
  if (problem) CHECK_FALSE(problem->empty());  // a reason a user can read
}
