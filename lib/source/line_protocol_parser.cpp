#include "source/line_protocol_parser.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstring>
#include <system_error>

// Where this parser is stricter than InfluxDB 1.x's code (models/points.go), which accepts:
//   - a tag value starting with '=' (`t==x` reads as t = "=x"): the documented grammar requires
//     `\=`, and every other unescaped '=' in a tag value is an error there too;
//   - bytes between a string's closing quote and the next ',' or ' ' (`f="a"b` reads as `a"`);
//   - a measurement `\=` or `\"` read as '=' / '"', and a field key `\"` read as '"' (its
//     pkg/escape): the documentation lists only `\,` and `\ ` (measurements) and `\,` `\=` `\ `
//     (keys), and its own tests read `cpu\=load` literally, as we do. sink::name_problem refuses
//     the names where the two readings differ, so what we write reads back the same either way;
//   - a field key ending in a backslash (`a\\=1`): InfluxDB's scanner takes `\\` as a pair there
//     and its field iterator does not; here `\=` escapes the '=' as in every other key.
// And more lenient in one case: a trailing '\r' (CRLF input) is ignored, not a bad timestamp.

namespace tumbled::source {

namespace {

// InfluxDB's limit on a series key: measurement and tags as written, plus 4 (its field key
// separator) plus the field key.
constexpr std::size_t kMaxKeyBytes = 65535;
constexpr std::size_t kFieldKeySeparatorBytes = 4;

// Up to this many tags (fields), duplicates are found by comparing pairs; beyond, by sorting, so
// a line with thousands of tags costs n log n, not n^2.
constexpr std::size_t kPairwiseLimit = 16;

// Byte classes, looked up once per byte by the scanners.
enum : std::uint8_t {
  kStopsMeasurement = 1 << 0,      // ',' ' ' '\\' '\n'
  kEscapedInMeasurement = 1 << 1,  // ',' ' '
  kStopsName = 1 << 2,             // ',' '=' ' ' '\\' '\n' (tag keys, tag values, field keys)
  kEscapedInName = 1 << 3,         // ',' '=' ' '
  kEscapedInString = 1 << 4,       // '"' '\\'
  kBlank = 1 << 5,                 // ' ' '\t' '\0': skipped before each section
  kFloatByte = 1 << 6,             // [0-9.eE+-]
};

constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> classes{};
  const auto mark = [&classes](std::string_view bytes, std::uint8_t bit) {
    for (const char c : bytes) classes[static_cast<unsigned char>(c)] |= bit;
  };
  mark(", \\\n", kStopsMeasurement);
  mark(", ", kEscapedInMeasurement);
  mark(",= \\\n", kStopsName);
  mark(",= ", kEscapedInName);
  mark("\"\\", kEscapedInString);
  mark(std::string_view(" \t\0", 3), kBlank);
  mark("0123456789.eE+-", kFloatByte);
  return classes;
}
constexpr std::array<std::uint8_t, 256> kClasses = make_classes();

bool has(char c, std::uint8_t bits) {
  return (kClasses[static_cast<unsigned char>(c)] & bits) != 0;
}

const char* skip_blanks(const char* p, const char* last) {
  while (p < last && has(*p, kBlank)) ++p;
  return p;
}

// Scans a name up to the first byte of kStops that a backslash does not escape (or `last`); a
// backslash escapes only a byte of kEscaped and is literal before anything else. Sets `escaped`
// when the name holds an escape, so it must be copied without its backslashes.
template <std::uint8_t kStops, std::uint8_t kEscaped>
const char* scan_name(const char* p, const char* last, bool& escaped) {
  while (p < last) {
    if (!has(*p, kStops)) {
      ++p;
    } else if (*p != '\\') {
      return p;
    } else if (p + 1 < last && has(p[1], kEscaped)) {
      escaped = true;
      p += 2;
    } else {
      ++p;
    }
  }
  return p;
}

std::string_view view(const char* first, const char* last) {
  return {first, static_cast<std::size_t>(last - first)};
}

bool read_boolean(std::string_view token, bool& out) {
  if (token.size() == 1) {
    out = token[0] == 't' || token[0] == 'T';
    return out || token[0] == 'f' || token[0] == 'F';
  }
  if (token == "true" || token == "True" || token == "TRUE") {
    out = true;
    return true;
  }
  out = false;
  return token == "false" || token == "False" || token == "FALSE";
}

// For a float literal from_chars found out of range: whether its magnitude is below 1, i.e. an
// underflow, which Go's ParseFloat (so InfluxDB) reads as zero, rather than an overflow. The
// token is known to be well formed: -?digits*[.digits*][(e|E)[+-]?digits].
bool is_underflow(std::string_view token) {
  std::size_t i = token[0] == '-' ? 1 : 0;
  const auto is_digit = [&token](std::size_t at) {
    return at < token.size() && token[at] >= '0' && token[at] <= '9';
  };
  while (is_digit(i) && token[i] == '0') ++i;
  long long magnitude = -1;  // decimal exponent of the first nonzero digit
  while (is_digit(i)) {
    ++magnitude;
    ++i;
  }
  if (i < token.size() && token[i] == '.') {
    ++i;
    if (magnitude < 0) {
      while (is_digit(i) && token[i] == '0') {
        --magnitude;
        ++i;
      }
    }
    while (is_digit(i)) ++i;
  }
  long long exponent = 0;
  if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
    ++i;
    const bool negative = i < token.size() && token[i] == '-';
    if (i < token.size() && (token[i] == '-' || token[i] == '+')) ++i;
    for (; is_digit(i); ++i) {
      if (exponent < 1'000'000'000'000) exponent = exponent * 10 + (token[i] - '0');
    }
    if (negative) exponent = -exponent;
  }
  return magnitude + exponent < 0;
}

// Eight ASCII digits at `p` as their value, or false: SWAR over one 64-bit load (the technique
// of simdjson and fast_float), so a 19-digit nanosecond timestamp costs 3 steps, not 19.
bool read_eight_digits(const char* p, std::uint64_t& out) {
  std::uint64_t chunk = 0;
  std::memcpy(&chunk, p, sizeof chunk);
  if constexpr (std::endian::native != std::endian::little) {
    chunk = __builtin_bswap64(chunk);
  }
  // Each byte in '0'..'9' iff neither byte + 0x46 nor byte - 0x30 sets its top bit.
  if (((chunk + 0x4646464646464646) | (chunk - 0x3030303030303030)) & 0x8080808080808080) {
    return false;
  }
  chunk -= 0x3030303030303030;
  chunk = chunk * 10 + (chunk >> 8);  // pairs of digits
  constexpr std::uint64_t kMask = 0x000000FF000000FF;
  constexpr std::uint64_t kMul1 = 0x000F424000000064;  // 100 + (1000000 << 32)
  constexpr std::uint64_t kMul2 = 0x0000271000000001;  // 1 + (10000 << 32)
  out = (((chunk & kMask) * kMul1) + (((chunk >> 16) & kMask) * kMul2)) >> 32;
  return true;
}

// The common case without from_chars: -?[0-9]{1,19} within int64 (19 digits never overflow the
// uint64 they are summed in). Anything else is left to from_chars, which names the error.
bool read_short_int64(const char* first, const char* last, std::int64_t& out) {
  const bool negative = first < last && *first == '-';
  first += negative ? 1 : 0;
  if (first == last || last - first > 19) return false;
  std::uint64_t magnitude = 0;
  const char* p = first;
  for (std::uint64_t eight = 0; last - p >= 8; p += 8) {
    if (!read_eight_digits(p, eight)) return false;
    magnitude = magnitude * 100000000 + eight;
  }
  for (; p < last; ++p) {
    const auto digit = static_cast<unsigned char>(*p - '0');
    if (digit > 9) return false;
    magnitude = magnitude * 10 + digit;
  }
  constexpr std::uint64_t kMaxMagnitude = std::uint64_t{1} << 63;  // of INT64_MIN
  if (magnitude > kMaxMagnitude - (negative ? 0 : 1)) return false;
  // Negated as unsigned, so INT64_MIN's magnitude wraps to INT64_MIN instead of overflowing.
  out = static_cast<std::int64_t>(negative ? 0 - magnitude : magnitude);
  return true;
}

// -?digits[.digits] with at most 15 digits in all: the digits make an integer below 2^53 and
// the divisor is a power of ten below 2^53, both exact doubles, so their IEEE quotient is the
// correctly rounded value from_chars would give (Clinger's fast path), in a few cycles.
bool read_short_decimal(const char* first, const char* last, double& out) {
  static constexpr double kPowersOfTen[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                            1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
  const bool negative = first < last && *first == '-';
  const char* p = first + (negative ? 1 : 0);
  std::uint64_t mantissa = 0;
  int digits = 0;
  int fraction_digits = -1;  // -1: no '.' seen
  for (; p < last; ++p) {
    const auto digit = static_cast<unsigned char>(*p - '0');
    if (digit <= 9) {
      if (++digits > 15) return false;
      mantissa = mantissa * 10 + digit;
      if (fraction_digits >= 0) ++fraction_digits;
    } else if (*p == '.' && fraction_digits < 0) {
      fraction_digits = 0;
    } else {
      return false;
    }
  }
  // A '.' needs a digit on some side ("." and "-." are no numbers): from_chars decides those.
  if (digits == 0) return false;
  const double magnitude =
      static_cast<double>(mantissa) / kPowersOfTen[fraction_digits > 0 ? fraction_digits : 0];
  out = negative ? -magnitude : magnitude;
  return true;
}

// An unquoted value starting with a digit, '.', '-' or 'n'/'N' (InfluxDB's number start).
ParseError read_number(std::string_view token, ParsedField& field) {
  const char* const first = token.data();
  const char* const last = first + token.size();
  const char suffix = token.back();
  if (suffix == 'i') {
    if (read_short_int64(first, last - 1, field.i)) {
      field.type = ParsedField::Type::integer;
      return ParseError::none;
    }
    const auto [end, ec] = std::from_chars(first, last - 1, field.i);
    if (end != last - 1 || ec == std::errc::invalid_argument) return ParseError::invalid_number;
    if (ec == std::errc::result_out_of_range) return ParseError::number_out_of_range;
    field.type = ParsedField::Type::integer;
    return ParseError::none;
  }
  if (suffix == 'u') {
    // from_chars takes no sign for unsigned types, so "-1u" and "-0u" fail as InfluxDB's do.
    const auto [end, ec] = std::from_chars(first, last - 1, field.u);
    if (end != last - 1 || ec == std::errc::invalid_argument) return ParseError::invalid_number;
    if (ec == std::errc::result_out_of_range) return ParseError::number_out_of_range;
    field.type = ParsedField::Type::unsigned_integer;
    return ParseError::none;
  }
  if (read_short_decimal(first, last, field.f)) {
    field.type = ParsedField::Type::floating;
    return ParseError::none;
  }
  // from_chars also reads "inf", "nan" and "infinity", which line protocol has not.
  for (const char c : token) {
    if (!has(c, kFloatByte)) return ParseError::invalid_number;
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(first, last, value);
  if (end != last || ec == std::errc::invalid_argument) return ParseError::invalid_number;
  if (ec == std::errc::result_out_of_range) {
    if (!is_underflow(token)) return ParseError::number_out_of_range;
    value = token[0] == '-' ? -0.0 : 0.0;
  }
  field.type = ParsedField::Type::floating;
  field.f = value;
  return ParseError::none;
}

ParseResult error_at(ParseError error, std::size_t offset) {
  return {ParseStatus::error, error, offset + 1, describe(error)};
}

}  // namespace

std::string_view describe(ParseError error) {
  switch (error) {
    case ParseError::none: return "";
    case ParseError::missing_measurement: return "missing measurement";
    case ParseError::missing_tag_key: return "missing tag key";
    case ParseError::missing_tag_value: return "missing tag value";
    case ParseError::invalid_tag_value: return "unescaped '=' in tag value";
    case ParseError::duplicate_tag: return "duplicate tag key";
    case ParseError::missing_fields: return "missing fields";
    case ParseError::missing_field_key: return "missing field key";
    case ParseError::missing_field_value: return "missing field value";
    case ParseError::invalid_number: return "invalid number";
    case ParseError::number_out_of_range: return "number out of range";
    case ParseError::invalid_boolean: return "invalid boolean";
    case ParseError::unterminated_string: return "unterminated string";
    case ParseError::invalid_string: return "characters after closing quote";
    case ParseError::invalid_timestamp: return "bad timestamp";
    case ParseError::timestamp_out_of_range: return "timestamp out of int64 range";
    case ParseError::trailing_characters: return "characters after timestamp";
    case ParseError::key_too_long: return "series key longer than 65535 bytes";
    case ParseError::line_break: return "line break outside a string";
  }
  return "unknown error";
}

std::string_view LineProtocolParser::unescape(const char* first, const char* last,
                                              std::string_view specials) {
  // The unescaped parts of a line never add up to more than the line, so with this capacity
  // scratch_ never reallocates during a parse and earlier views into it stay valid.
  scratch_.reserve(line_bytes_);
  const std::size_t start = scratch_.size();
  for (const char* p = first; p < last; ++p) {
    if (*p == '\\' && p + 1 < last && specials.find(p[1]) != std::string_view::npos) ++p;
    scratch_.push_back(*p);
  }
  return {scratch_.data() + start, scratch_.size() - start};
}

ParseResult LineProtocolParser::parse(std::string_view line, ParsedLine& out) {
  out.measurement = {};
  out.tags.clear();
  out.fields.clear();
  out.timestamp.reset();
  scratch_.clear();
  tag_at_.clear();
  line_bytes_ = line.size();

  const char* const first = line.data();
  const char* last = first + line.size();
  if (last != first && last[-1] == '\n') --last;
  if (last != first && last[-1] == '\r') --last;
  const auto fail = [first](ParseError error, const char* at) {
    return error_at(error, static_cast<std::size_t>(at - first));
  };

  const char* p = skip_blanks(first, last);
  if (p == last || *p == '#') return {ParseStatus::skip, ParseError::none, 0, {}};

  // Measurement: up to an unescaped ',' (tags follow) or ' ' (fields follow).
  const char* const key_begin = p;
  if (*p == ',') return fail(ParseError::missing_measurement, p);
  bool escaped = false;
  p = scan_name<kStopsMeasurement, kEscapedInMeasurement>(p, last, escaped);
  if (p < last && *p == '\n') return fail(ParseError::line_break, p);
  out.measurement = escaped ? unescape(key_begin, p, ", ") : view(key_begin, p);

  // Tags: ",key=value" until the ' ' before the fields.
  while (p < last && *p == ',') {
    ++p;
    if (p == last || *p == ',' || *p == ' ' || *p == '=') {
      return fail(ParseError::missing_tag_key, p);
    }
    const char* const key = p;
    escaped = false;
    p = scan_name<kStopsName, kEscapedInName>(p, last, escaped);
    if (p < last && *p == '\n') return fail(ParseError::line_break, p);
    if (p == last || *p != '=') return fail(ParseError::missing_tag_value, p);
    const std::string_view key_text = escaped ? unescape(key, p, ",= ") : view(key, p);
    ++p;
    if (p == last || *p == ',' || *p == ' ') return fail(ParseError::missing_tag_value, p);
    const char* const value = p;
    escaped = false;
    p = scan_name<kStopsName, kEscapedInName>(p, last, escaped);
    if (p < last && *p == '=') return fail(ParseError::invalid_tag_value, p);
    if (p < last && *p == '\n') return fail(ParseError::line_break, p);
    out.tags.emplace_back(key_text, escaped ? unescape(value, p, ",= ") : view(value, p));
    tag_at_.push_back(static_cast<std::size_t>(key - first));
  }
  if (p == last) return fail(ParseError::missing_fields, p);
  const auto key_bytes = static_cast<std::size_t>(p - key_begin);
  if (key_bytes > kMaxKeyBytes) return fail(ParseError::key_too_long, key_begin);

  // Fields: "key=value[,key=value...]" up to the first ' ' outside a string.
  p = skip_blanks(p, last);
  if (p == last) return fail(ParseError::missing_fields, p);
  for (;;) {
    if (*p == '=' || *p == ',') return fail(ParseError::missing_field_key, p);
    const char* const key = p;
    escaped = false;
    p = scan_name<kStopsName, kEscapedInName>(p, last, escaped);
    if (p < last && *p == '\n') return fail(ParseError::line_break, p);
    if (p == last || *p != '=') return fail(ParseError::missing_field_value, p);
    if (key_bytes + kFieldKeySeparatorBytes + static_cast<std::size_t>(p - key) > kMaxKeyBytes) {
      return fail(ParseError::key_too_long, key);
    }
    ParsedField& field = out.fields.emplace_back();
    field.key = escaped ? unescape(key, p, ",= ") : view(key, p);
    ++p;
    if (p == last || *p == ',' || *p == ' ') return fail(ParseError::missing_field_value, p);

    const char c = *p;
    if (c == '"') {
      // As InfluxDB scans: a backslash takes the next byte with it, so `\"` never closes; only
      // `\"` and `\\` lose their backslash when the value is read.
      const char* const open = p++;
      escaped = false;
      while (p < last && *p != '"') {
        if (*p == '\\' && p + 1 < last) {
          escaped = escaped || has(p[1], kEscapedInString);
          p += 2;
        } else {
          ++p;
        }
      }
      if (p >= last) return fail(ParseError::unterminated_string, open);
      field.type = ParsedField::Type::string;
      field.s = escaped ? unescape(open + 1, p, "\"\\") : view(open + 1, p);
      ++p;
      if (p < last && *p != ',' && *p != ' ') return fail(ParseError::invalid_string, p);
    } else {
      const char* const token = p;
      while (p < last && *p != ',' && *p != ' ') ++p;
      const std::string_view text = view(token, p);
      if ((c >= '0' && c <= '9') || c == '.' || c == '-' || c == 'n' || c == 'N') {
        const ParseError error = read_number(text, field);
        if (error != ParseError::none) return fail(error, token);
      } else {
        field.type = ParsedField::Type::boolean;
        if (!read_boolean(text, field.b)) return fail(ParseError::invalid_boolean, token);
      }
    }
    if (p == last || *p == ' ') break;
    ++p;  // ','
    if (p == last || *p == ' ') return fail(ParseError::missing_field_key, p);
  }

  // Optional timestamp, then nothing but spaces.
  p = skip_blanks(p, last);
  if (p < last) {
    const char* const token = p;
    while (p < last && *p != ' ') ++p;
    std::int64_t timestamp = 0;
    if (!read_short_int64(token, p, timestamp)) {
      const auto [end, ec] = std::from_chars(token, p, timestamp);
      if (end != p || ec == std::errc::invalid_argument) {
        return fail(ParseError::invalid_timestamp, token);
      }
      if (ec == std::errc::result_out_of_range) {
        return fail(ParseError::timestamp_out_of_range, token);
      }
    }
    while (p < last && *p == ' ') ++p;
    if (p < last) return fail(ParseError::trailing_characters, p);
    out.timestamp = timestamp;
  }
  return check_duplicates(out);
}

// A repeated tag key is an error (reported at its second occurrence); a repeated field key keeps
// its first position and its last value, as InfluxDB's field map ends up.
ParseResult LineProtocolParser::check_duplicates(ParsedLine& out) {
  auto& tags = out.tags;
  const std::size_t tag_count = tags.size();
  if (tag_count <= kPairwiseLimit) {
    for (std::size_t j = 1; j < tag_count; ++j) {
      for (std::size_t i = 0; i < j; ++i) {
        if (tags[i].first == tags[j].first) return error_at(ParseError::duplicate_tag, tag_at_[j]);
      }
    }
  } else {
    order_.resize(tag_count);
    for (std::uint32_t i = 0; i < tag_count; ++i) order_[i] = i;
    std::sort(order_.begin(), order_.end(), [&tags](std::uint32_t a, std::uint32_t b) {
      return tags[a].first != tags[b].first ? tags[a].first < tags[b].first : a < b;
    });
    // Of all repeats, report the one a left-to-right reader meets first.
    std::size_t repeat = tag_count;
    for (std::size_t k = 1; k < tag_count; ++k) {
      if (tags[order_[k - 1]].first == tags[order_[k]].first) {
        repeat = std::min<std::size_t>(repeat, order_[k]);
      }
    }
    if (repeat < tag_count) return error_at(ParseError::duplicate_tag, tag_at_[repeat]);
  }

  auto& fields = out.fields;
  const std::size_t field_count = fields.size();
  const auto take_value = [](ParsedField& into, const ParsedField& from) {
    const std::string_view key = into.key;
    into = from;
    into.key = key;
  };
  if (field_count <= kPairwiseLimit) {
    // Repeats are rare: look first, compact only when there is one.
    bool repeated = false;
    for (std::size_t j = 1; j < field_count && !repeated; ++j) {
      for (std::size_t i = 0; i < j && !repeated; ++i) repeated = fields[i].key == fields[j].key;
    }
    if (!repeated) return {};
    std::size_t kept = 0;
    for (std::size_t j = 0; j < field_count; ++j) {
      std::size_t i = 0;
      while (i < kept && fields[i].key != fields[j].key) ++i;
      if (i < kept) {
        take_value(fields[i], fields[j]);
      } else if (kept++ != j) {
        fields[kept - 1] = fields[j];
      }
    }
    fields.resize(kept);
  } else {
    order_.resize(field_count);
    for (std::uint32_t i = 0; i < field_count; ++i) order_[i] = i;
    std::sort(order_.begin(), order_.end(), [&fields](std::uint32_t a, std::uint32_t b) {
      return fields[a].key != fields[b].key ? fields[a].key < fields[b].key : a < b;
    });
    dropped_.assign(field_count, 0);
    for (std::size_t start = 0, end = 0; start < field_count; start = end) {
      end = start + 1;
      while (end < field_count && fields[order_[end]].key == fields[order_[start]].key) ++end;
      if (end - start == 1) continue;
      take_value(fields[order_[start]], fields[order_[end - 1]]);
      for (std::size_t k = start + 1; k < end; ++k) dropped_[order_[k]] = 1;
    }
    std::size_t kept = 0;
    for (std::size_t j = 0; j < field_count; ++j) {
      if (!dropped_[j]) fields[kept++] = fields[j];
    }
    fields.resize(kept);
  }
  return {};
}

}  // namespace tumbled::source
