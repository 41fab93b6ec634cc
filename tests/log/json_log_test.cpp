// log.format: json: every line is one JSON object whose strings stay valid JSON whatever the
// message holds.
#include <catch2/catch.hpp>

#include <string>

#include "log/json_log.hpp"

using tumbled::log::append_json_string;
using tumbled::log::json_log_line;

namespace {

std::string escaped(const std::string& text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

}  // namespace

TEST_CASE("JSON strings escape quotes, backslashes and control characters", "[log]") {
  const auto [text, expected] = GENERATE(table<std::string, std::string>({
      {"plain text 123", "plain text 123"},
      {"", ""},
      {"say \"hi\"", "say \\\"hi\\\""},
      {"C:\\dir\\file", "C:\\\\dir\\\\file"},
      {"two\nlines\r\n", "two\\nlines\\r\\n"},
      {"tab\there", "tab\\there"},
      {"\b\f", "\\b\\f"},
      {std::string("nul\0byte", 8), "nul\\u0000byte"},
      {"\x01\x1f", "\\u0001\\u001f"},
      {"\x7f", "\x7f"},  // DEL needs no escape in JSON
      {"/ stays", "/ stays"},
  }));
  CAPTURE(text);
  CHECK(escaped(text) == expected);
}

TEST_CASE("JSON strings keep UTF-8 and replace what is not UTF-8", "[log]") {
  const auto [text, expected] = GENERATE(table<std::string, std::string>({
      {"caf\xc3\xa9", "caf\xc3\xa9"},                         // é
      {"\xe2\x82\xac 5", "\xe2\x82\xac 5"},                   // €
      {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},               // U+1F600
      {"\xff", "\\ufffd"},                                    // never a UTF-8 byte
      {"a\x80z", "a\\ufffdz"},                                // a lone continuation byte
      {"\xc3", "\\ufffd"},                                    // cut short at the end
      {"\xc3z", "\\ufffdz"},                                  // cut short by an ASCII byte
      {"\xc0\x80", "\\ufffd\\ufffd"},                         // overlong NUL
      {"\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd"},              // overlong '/'
      {"\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"},              // UTF-16 surrogate
      {"\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"},   // above U+10FFFF
      {"\xe2\x82\"", "\\ufffd\\ufffd\\\""},                   // a quote inside a broken sequence
  }));
  CAPTURE(text);
  CHECK(escaped(text) == expected);
}

TEST_CASE("a JSON log line has time, level, logger and message", "[log]") {
  CHECK(json_log_line(1795538790123, "info", "tcp", "connection from 127.0.0.1:5000") ==
        "{\"time\":\"2026-11-24T16:46:30.123Z\",\"level\":\"info\",\"logger\":\"tcp\","
        "\"message\":\"connection from 127.0.0.1:5000\"}\n");
  CHECK(json_log_line(0, "warning", "main", "a \"quoted\"\nline") ==
        "{\"time\":\"1970-01-01T00:00:00.000Z\",\"level\":\"warning\",\"logger\":\"main\","
        "\"message\":\"a \\\"quoted\\\"\\nline\"}\n");
  // Before the epoch the milliseconds still count up within their second.
  CHECK(json_log_line(-1, "error", "store", "") ==
        "{\"time\":\"1969-12-31T23:59:59.999Z\",\"level\":\"error\",\"logger\":\"store\","
        "\"message\":\"\"}\n");
}
