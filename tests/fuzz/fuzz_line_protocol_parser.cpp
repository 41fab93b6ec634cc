// libFuzzer target for source/line_protocol_parser: the fuzzer's bytes are one line. Checked:
//   - parse never crashes, and never reads outside the line (ASan);
//   - the result is coherent: an error has a reason, its message and a column within the line
//     (1 .. size + 1); ok and skip carry none; an ok line has a measurement, non-empty tag keys
//     and values, at least one field, non-empty and unique field keys, unique tag keys;
//   - parse is deterministic: a parser reused across inputs (its scratch buffer holding earlier
//     lines) and a fresh one give the same result and the same ParsedLine;
//   - a parsed line survives re-encoding: written back with the reference encoder below (escape
//     what the grammar needs, nothing more) and parsed again it is the same ParsedLine, and
//     encoding that gives the same text.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "source/line_protocol_parser.hpp"

using tumbled::source::describe;
using tumbled::source::LineProtocolParser;
using tumbled::source::ParsedField;
using tumbled::source::ParsedLine;
using tumbled::source::ParseError;
using tumbled::source::ParseResult;
using tumbled::source::ParseStatus;

namespace {

[[noreturn]] void fail(const char* what, std::string_view line) {
  std::fprintf(stderr, "fuzz_line_protocol_parser: invariant violated: %s\nline: ", what);
  for (unsigned char c : line) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      std::fputc(c, stderr);
    } else {
      std::fprintf(stderr, "\\x%02x", c);
    }
  }
  std::fputc('\n', stderr);
  std::abort();
}

void append_escaped(std::string& out, std::string_view text, std::string_view specials) {
  for (const char c : text) {
    if (specials.find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
}

template <class Number>
void append_number(std::string& out, Number value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

// The reference encoder: sections separated by one space, escapes only where line protocol
// requires them, numbers in their shortest exact form.
std::string encode(const ParsedLine& line) {
  std::string out;
  append_escaped(out, line.measurement, ", ");
  for (const auto& [key, value] : line.tags) {
    out.push_back(',');
    append_escaped(out, key, ",= ");
    out.push_back('=');
    append_escaped(out, value, ",= ");
  }
  char separator = ' ';
  for (const ParsedField& field : line.fields) {
    out.push_back(separator);
    separator = ',';
    append_escaped(out, field.key, ",= ");
    out.push_back('=');
    switch (field.type) {
      case ParsedField::Type::integer:
        append_number(out, field.i);
        out.push_back('i');
        break;
      case ParsedField::Type::unsigned_integer:
        append_number(out, field.u);
        out.push_back('u');
        break;
      case ParsedField::Type::floating: append_number(out, field.f); break;
      case ParsedField::Type::boolean: out += field.b ? "true" : "false"; break;
      case ParsedField::Type::string:
        out.push_back('"');
        append_escaped(out, field.s, "\"\\");
        out.push_back('"');
        break;
    }
  }
  if (line.timestamp) {
    out.push_back(' ');
    append_number(out, *line.timestamp);
  }
  return out;
}

void check_coherent(const ParseResult& result, const ParsedLine& parsed, std::string_view line) {
  if (result.status == ParseStatus::error) {
    if (result.error == ParseError::none) fail("error without a reason", line);
    if (result.message != describe(result.error)) fail("message is not describe(error)", line);
    if (result.column < 1 || result.column > line.size() + 1) fail("column outside line", line);
    return;
  }
  if (result.error != ParseError::none || result.column != 0 || !result.message.empty()) {
    fail("ok or skip with error details", line);
  }
  if (result.status == ParseStatus::skip) return;
  if (parsed.measurement.empty()) fail("empty measurement", line);
  if (parsed.fields.empty()) fail("no fields", line);
  for (std::size_t i = 0; i < parsed.tags.size(); ++i) {
    if (parsed.tags[i].first.empty() || parsed.tags[i].second.empty()) fail("empty tag", line);
    for (std::size_t j = 0; j < i; ++j) {
      if (parsed.tags[j].first == parsed.tags[i].first) fail("repeated tag key", line);
    }
  }
  for (std::size_t i = 0; i < parsed.fields.size(); ++i) {
    if (parsed.fields[i].key.empty()) fail("empty field key", line);
    for (std::size_t j = 0; j < i; ++j) {
      if (parsed.fields[j].key == parsed.fields[i].key) fail("repeated field key", line);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);

  // Reused across inputs, as a connection's parser is; separate parsers for the re-parse so the
  // first ParsedLine's views into a parser's scratch buffer stay valid while compared.
  static LineProtocolParser reused;
  static ParsedLine parsed;
  const ParseResult result = reused.parse(line, parsed);
  check_coherent(result, parsed, line);

  LineProtocolParser fresh;
  ParsedLine fresh_parsed;
  const ParseResult fresh_result = fresh.parse(line, fresh_parsed);
  if (!(fresh_result == result)) fail("reused and fresh parsers disagree on the result", line);
  if (!result.ok()) return 0;
  if (!(fresh_parsed == parsed)) fail("reused and fresh parsers disagree on the line", line);

  const std::string encoded = encode(parsed);
  static LineProtocolParser again;
  static ParsedLine reparsed;
  const ParseResult again_result = again.parse(encoded, reparsed);
  if (!again_result.ok()) fail("re-encoded line does not parse", encoded);
  if (!(reparsed == parsed)) fail("re-encoded line parses to a different line", encoded);
  if (encode(reparsed) != encoded) fail("encoding is not stable", encoded);
  return 0;
}
