// LineProtocolParser: reads one line of InfluxDB 1.x line protocol into views of its parts.
//
//   measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
//
// Grammar as InfluxDB 1.x documents it and as its parser (models/points.go) reads it:
//   - escapes: `\,` and `\ ` in measurements; `\,`, `\=` and `\ ` in tag keys, tag values and field
//     keys; a backslash before anything else is a literal backslash. String field values are
//     double-quoted with `\"` and `\\` escapes (another backslash stays literal) and may hold any
//     byte, commas, spaces and line breaks included.
//   - field values: `<int64>i`, `<uint64>u`, floats (`1`, `-1.5`, `.5`, `1.e+78`, `-1.2E-3`; no
//     `inf`/`nan`, no `+` sign; underflow reads as 0 like Go's ParseFloat, overflow is an error),
//     booleans t/T/true/True/TRUE and f/F/false/False/FALSE, and strings.
//   - the timestamp is optional, `-?[0-9]+` within int64, in whatever precision the writer chose.
//   - leading spaces, tabs and NULs are skipped, then a line that is empty or starts with `#` is
//     ParseStatus::skip. Several spaces (tabs, NULs) may separate the sections; only spaces may
//     follow a timestamp. One trailing "\n", "\r\n" or "\r" is ignored.
//   - a repeated tag key is an error (InfluxDB: "duplicate tags"). A repeated field key is not:
//     InfluxDB keeps the last value, and so does `fields` (at the first key's position), so keys
//     in `fields` are unique. Tags stay in input order (unsorted input is fine).
//   - the measurement and tags (as written) may not exceed 65535 bytes, nor may they plus 4 plus
//     any field key (InfluxDB's series key limit).
// Where InfluxDB's code accepts what its documentation does not, this parser refuses it, with the
// cases listed in line_protocol_parser.cpp (e.g. `t==x` as a tag, bytes after a string's closing
// quote). Rules InfluxDB applies after parsing are left to the caller: the timestamp range of a
// precision ([-2^63+2, 2^63-2] ns), `time` as a key, string length, field types across points.
//
// Views (measurement, tag keys/values, field keys, string values) point into `line` when nothing
// in them was escaped and into a buffer owned by the parser otherwise: they stay valid until the
// next parse() on the same parser and while `line` lives. One forward scan (a value's bytes are
// read once more to convert them, exactly: the result is what std::from_chars gives); no recursion;
// memory in use is bounded by the line (reused between lines, so a parser and ParsedLine reused
// for lines no longer than before allocate nothing); never throws on any input (only
// std::bad_alloc). Pure code, no I/O; one parser per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tumbled::source {

// The unit of line-protocol timestamps: the pipeline's `source.precision`, or an HTTP write
// request's own `precision` (InfluxDB's v1 API also knows minutes and hours).
enum class Precision : std::uint8_t { ns, us, ms, s, m, h };

struct ParsedField {
  enum class Type : std::uint8_t { integer, unsigned_integer, floating, boolean, string };

  std::string_view key;
  Type type = Type::floating;
  // Only the member for `type` is set; the others stay zero/empty, so == compares values.
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double f = 0;
  bool b = false;
  std::string_view s;

  bool operator==(const ParsedField&) const = default;
};

struct ParsedLine {
  std::string_view measurement;
  std::vector<std::pair<std::string_view, std::string_view>> tags;  // input order, unique keys
  std::vector<ParsedField> fields;                                  // input order, unique keys
  std::optional<std::int64_t> timestamp;

  bool operator==(const ParsedLine&) const = default;
};

enum class ParseStatus : std::uint8_t { ok, skip, error };

enum class ParseError : std::uint8_t {
  none,
  missing_measurement,  // line starts with ','
  missing_tag_key,      // ",=v", ",,", ", " or ',' at the end
  missing_tag_value,    // "k=" followed by ',' ' ' or the end; or a tag key without '='
  invalid_tag_value,    // unescaped '=' in a tag value
  duplicate_tag,        // the same tag key twice
  missing_fields,       // no field set
  missing_field_key,    // "=v", ",=v", or ',' followed by ' ' or the end
  missing_field_value,  // "k=" followed by ',' ' ' or the end; or a field key without '='
  invalid_number,       // not an integer, unsigned or float literal (incl. nan, inf)
  number_out_of_range,  // beyond int64, uint64 or double
  invalid_boolean,      // unquoted value that is no number and no boolean spelling
  unterminated_string,  // opening '"' without closing one
  invalid_string,       // bytes after a string's closing quote
  invalid_timestamp,    // not -?[0-9]+
  timestamp_out_of_range,
  trailing_characters,  // anything but spaces after the timestamp
  key_too_long,         // series key beyond InfluxDB's 65535 bytes
  line_break,           // '\n' outside a string value
};

// A short static description of `error` ("missing tag value"); "" for ParseError::none.
std::string_view describe(ParseError error);

struct ParseResult {
  ParseStatus status = ParseStatus::ok;
  ParseError error = ParseError::none;
  std::size_t column = 0;    // error: 1-based byte offset in `line` where it was detected
  std::string_view message;  // error: describe(error); empty otherwise

  bool ok() const { return status == ParseStatus::ok; }
  bool operator==(const ParseResult&) const = default;
};

class LineProtocolParser {
 public:
  // Parses `line` (one line, its "\n" optional) into `out`, whose vectors are cleared and reused.
  // On ParseStatus::ok `out` holds the point; on skip or error its content is unspecified.
  ParseResult parse(std::string_view line, ParsedLine& out);

 private:
  std::string_view unescape(const char* first, const char* last, std::string_view specials);
  ParseResult check_duplicates(ParsedLine& out);

  std::string scratch_;                // unescaped text; capacity >= line, so views stay put
  std::size_t line_bytes_ = 0;         // size of the line being parsed
  std::vector<std::size_t> tag_at_;    // offset of each tag key in the line (error columns)
  std::vector<std::uint32_t> order_;   // indices sorted by key (duplicates among many keys)
  std::vector<std::uint8_t> dropped_;  // field repeated later (many keys)
};

}  // namespace tumbled::source
