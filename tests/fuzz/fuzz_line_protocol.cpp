// libFuzzer target for sink/line_protocol: a point built from fuzzer bytes (measurement, tag and
// field names that sink::name_problem accepts; int64, double and bool values; any timestamp) is
// encoded with append_point and read back with a small reference parser. Checked:
//   - exactly one line is appended, ending in '\n', with no other '\n' or '\r' in it, and what was
//     already in the buffer is untouched;
//   - split at spaces not preceded by a backslash, the line has 3 parts;
//   - read back as InfluxDB 1.x reads it, the measurement, the tags (in key order), the field keys
//     (in the given order) are the inputs, and the values and the timestamp read back typed
//     (`<int>i`, a float token InfluxDB accepts equal to the double, `true`/`false`).
// The reader models InfluxDB 1.x's models/points.go, checked by hand against influxd 1.6.7:
//   - leading tabs and NULs before the measurement and before the first field key are skipped;
//   - the key ends at the first space not preceded by a backslash, and inside it ',' and '='
//     separate the same way (scanMeasurement, scanTags);
//   - the fields end at the first space not escaped, a backslash escaping the byte after it
//     (scanFields), and split the same way at ',' and '=';
//   - tag keys and values drop a backslash before ',', '=' or ' '; the measurement and field keys
//     read `\\` as a pair and drop a backslash before ',', '=', ' ' or '"'.
// name_problem must refuse whatever this reading would change.
#include <fuzzer/FuzzedDataProvider.h>

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sink/line_protocol.hpp"

using tumbled::sink::append_point;
using tumbled::sink::Field;
using tumbled::sink::FieldValue;
using tumbled::sink::name_problem;
using tumbled::sink::NameRole;

namespace {

[[noreturn]] void fail(const char* what, std::string_view line) {
  std::fprintf(stderr, "fuzz_line_protocol: invariant violated: %s\nline: ", what);
  for (unsigned char c : line) {
    if (c >= 0x20 && c < 0x7f) {
      std::fputc(c, stderr);
    } else {
      std::fprintf(stderr, "\\x%02x", c);
    }
  }
  std::fputc('\n', stderr);
  std::abort();
}

// Splits at every `sep` not preceded by a backslash (scanMeasurement, scanTags).
std::vector<std::string_view> split_after_backslash(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == sep && (i == 0 || text[i - 1] != '\\')) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(text.substr(start));
  return parts;
}

// Splits at every `sep` not escaped, a backslash escaping the byte after it (scanFields).
std::vector<std::string_view> split_escaped_pairs(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == sep) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(text.substr(start));
  return parts;
}

// A tag key or value: drops each backslash in front of one of `specials`.
std::string unescape_tag(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() &&
        std::string_view(",= ").find(text[i + 1]) != std::string_view::npos) {
      ++i;
    }
    out.push_back(text[i]);
  }
  return out;
}

// A measurement or field key: backslash pairs, a backslash before ',', '=', ' ' or '"' dropped.
std::string unescape_name(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      if (std::string_view(",= \"").find(text[i + 1]) == std::string_view::npos)
        out.push_back('\\');
      ++i;
    }
    out.push_back(text[i]);
  }
  return out;
}

std::string_view skip_tabs_and_nuls(std::string_view text) {
  while (!text.empty() && (text.front() == '\t' || text.front() == '\0')) text.remove_prefix(1);
  return text;
}

// -?digits[.digits][e[+-]digits]: a float as InfluxDB reads it (no 'i', no nan/inf).
bool is_influx_float(std::string_view s) {
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

template <class Number>
bool read_number(std::string_view text, Number& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

std::string take_name(FuzzedDataProvider& fdp) {
  return fdp.ConsumeRandomLengthString(40);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  const std::string measurement = take_name(fdp);
  if (name_problem(measurement, NameRole::measurement)) return 0;

  std::map<std::string, std::string> tags;
  const auto tag_count = fdp.ConsumeIntegralInRange<int>(0, 4);
  for (int i = 0; i < tag_count; ++i) {
    std::string key = take_name(fdp);
    std::string value = take_name(fdp);
    if (name_problem(key, NameRole::tag_key) || name_problem(value, NameRole::tag_value)) continue;
    tags[std::move(key)] = std::move(value);
  }

  std::vector<Field> fields;
  const auto field_count = fdp.ConsumeIntegralInRange<int>(1, 4);
  for (int i = 0; i < field_count; ++i) {
    std::string name = take_name(fdp);
    FieldValue value;
    switch (fdp.ConsumeIntegralInRange<int>(0, 2)) {
      case 0: value = fdp.ConsumeIntegral<std::int64_t>(); break;
      case 1: {
        // Every bit pattern: NaN, infinities, denormals, -0.
        const auto bits = fdp.ConsumeIntegral<std::uint64_t>();
        double d = 0;
        std::memcpy(&d, &bits, sizeof d);
        value = d;
        break;
      }
      default: value = fdp.ConsumeBool(); break;
    }
    if (name_problem(name, NameRole::field_key)) continue;
    fields.push_back({std::move(name), value});
  }
  if (fields.empty()) return 0;  // callers always write at least one aggregate
  const auto timestamp = fdp.ConsumeIntegral<std::int64_t>();

  const std::string before = "earlier,t=x f=1i 1\n";
  std::string out = before;
  append_point(out, measurement, tags, fields, timestamp);
  if (out.compare(0, before.size(), before) != 0) fail("earlier content changed", out);
  const std::string_view line = std::string_view(out).substr(before.size());

  if (line.empty() || line.back() != '\n') fail("line does not end in '\\n'", line);
  const std::string_view body = line.substr(0, line.size() - 1);
  if (body.find_first_of("\n\r") != std::string_view::npos) fail("raw line break inside", line);

  if (split_after_backslash(body, ' ').size() != 3) fail("not 3 parts at unescaped spaces", line);

  // Key: measurement, then tags in key order.
  const std::string_view from_measurement = skip_tabs_and_nuls(body);
  const std::string_view key_text = split_after_backslash(from_measurement, ' ')[0];
  const auto key = split_after_backslash(key_text, ',');
  if (key.size() != 1 + tags.size()) fail("wrong number of key parts", line);
  if (unescape_name(key[0]) != measurement) fail("measurement does not read back", line);
  std::size_t k = 1;
  for (const auto& [tag_key, tag_value] : tags) {
    const auto kv = split_after_backslash(key[k++], '=');
    if (kv.size() != 2) fail("tag is not key=value", line);
    if (unescape_tag(kv[0]) != tag_key) fail("tag key does not read back", line);
    if (unescape_tag(kv[1]) != tag_value) fail("tag value does not read back", line);
  }
  if (key_text.size() == from_measurement.size()) fail("no fields after the key", line);
  const std::string_view fields_from =
      skip_tabs_and_nuls(from_measurement.substr(key_text.size() + 1));
  const std::string_view fields_text = split_escaped_pairs(fields_from, ' ')[0];
  if (fields_text.size() == fields_from.size()) fail("no timestamp after the fields", line);
  const std::string_view timestamp_text = fields_from.substr(fields_text.size() + 1);

  // Fields, in the given order.
  const auto field_parts = split_escaped_pairs(fields_text, ',');
  if (field_parts.size() != fields.size()) fail("wrong number of fields", line);
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const auto kv = split_escaped_pairs(field_parts[i], '=');
    if (kv.size() != 2) fail("field is not key=value", line);
    if (unescape_name(kv[0]) != fields[i].name) fail("field key does not read back", line);
    const std::string_view text = kv[1];
    if (const auto* integer = std::get_if<std::int64_t>(&fields[i].value)) {
      std::int64_t back = 0;
      if (text.empty() || text.back() != 'i' ||
          !read_number(text.substr(0, text.size() - 1), back) || back != *integer) {
        fail("integer field does not read back", line);
      }
    } else if (const auto* real = std::get_if<double>(&fields[i].value)) {
      double back = 0;
      if (!is_influx_float(text) || !read_number(text, back)) fail("float field unreadable", line);
      const double expected = std::isfinite(*real) ? *real : 0.0;  // documented substitute
      if (back != expected || std::signbit(back) != std::signbit(expected)) {
        fail("float field does not read back", line);
      }
    } else {
      if (text != (std::get<bool>(fields[i].value) ? "true" : "false")) {
        fail("bool field does not read back", line);
      }
    }
  }

  std::int64_t back_timestamp = 0;
  if (!read_number(timestamp_text, back_timestamp) || back_timestamp != timestamp) {
    fail("timestamp does not read back", line);
  }
  return 0;
}
