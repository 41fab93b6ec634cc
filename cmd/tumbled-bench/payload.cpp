#include "payload.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>

namespace tumbled::bench {

namespace {

void append_value(std::string& out, std::int64_t v, bool crlf = false) {
  char text[24];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, v);
  (void)ec;
  out.append(text, end);
  if (crlf) out.push_back('\r');
  out.push_back('\n');
}

// Adds a value to a payload under construction: its line, the line count and the running sum.
struct Builder {
  Payload& p;
  bool crlf = false;
  Int128 running = 0;

  void add(std::int64_t v) {
    append_value(p.bytes, v, crlf);
    running += v;
    ++p.lines;
    const Int128 magnitude = running < 0 ? -running : running;
    if (magnitude > p.max_abs_prefix) p.max_abs_prefix = magnitude;
  }
};

std::uint64_t power_of_ten(int k) {
  std::uint64_t v = 1;
  while (k-- > 0) v *= 10;
  return v;
}

}  // namespace

std::string to_string(Int128 v) {
  if (v == 0) return "0";
  const bool negative = v < 0;
  // Work with negative numbers: -INT128_MIN does not exist.
  std::string digits;
  Int128 n = negative ? v : -v;
  while (n != 0) {
    digits.push_back(static_cast<char>('0' - static_cast<int>(n % 10)));
    n /= 10;
  }
  if (negative) digits.push_back('-');
  return {digits.rbegin(), digits.rend()};
}

namespace {

// The `small` distribution (payload.hpp), with "\n" or "\r\n" line ends.
Payload make_small(std::size_t min_bytes, std::uint64_t seed, bool crlf) {
  Payload p;
  p.shape = crlf ? IntegerShape::crlf : IntegerShape::small;
  p.bytes.reserve(min_bytes + 64);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(0, 99);
  std::uniform_int_distribution<std::int64_t> small(-99'999, 99'999);
  std::uniform_int_distribution<std::int64_t> medium(100'000, 999'999'999);
  std::uniform_int_distribution<std::int64_t> large(100'000'000'000'000'000,
                                                    999'999'999'999'999'999);
  std::bernoulli_distribution coin(0.5);
  Builder b{p, crlf};
  while (p.bytes.size() < min_bytes) {
    const int k = pick(rng);
    std::int64_t v;
    if (k < 90) {
      v = small(rng);
      ++p.small;
    } else if (k < 99) {
      v = medium(rng);
      if (coin(rng)) v = -v;
      ++p.medium;
    } else {
      v = large(rng);
      if (b.running > 0) v = -v;  // against the running sum: prefix sums stay within ~1e18
      ++p.large;
    }
    b.add(v);
  }
  // The last line cancels the rest: the buffer sums to exactly 0.
  b.add(static_cast<std::int64_t>(-b.running));
  p.sum = 0;
  return p;
}

Payload make_uniform6(std::size_t min_bytes, std::uint64_t seed) {
  constexpr std::int64_t kBound = 1'000'000;
  Payload p;
  p.shape = IntegerShape::uniform6;
  p.bytes.reserve(min_bytes + 64);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> uniform(-kBound, kBound);
  Builder b{p};
  while (p.bytes.size() < min_bytes) b.add(uniform(rng));
  // Back to 0 in steps inside the range (a random walk: a few hundred lines at most).
  while (b.running != 0) {
    b.add(static_cast<std::int64_t>(std::clamp<Int128>(-b.running, -kBound, kBound)));
  }
  p.sum = 0;
  return p;
}

Payload make_int64(std::size_t min_bytes, int connections, std::uint64_t seed) {
  const std::uint64_t bound = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) /
                              (2 * static_cast<std::uint64_t>(std::max(connections, 1)));
  Payload p;
  p.shape = IntegerShape::int64;
  p.bytes.reserve(min_bytes + 64);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(0, 99), length(1, 18);
  std::bernoulli_distribution coin(0.5);
  Builder b{p};
  while (p.bytes.size() < min_bytes) {
    std::uint64_t magnitude;
    const auto away = static_cast<std::uint64_t>(b.running < 0 ? -b.running : b.running);
    if (pick(rng) < 95) {  // 19 digits: [10^18, |running| + bound], at most INT64_MAX - 1
      magnitude = std::uniform_int_distribution<std::uint64_t>(power_of_ten(18), away + bound)(rng);
      ++p.large;
    } else {  // 1 to 18 digits
      const int k = length(rng);
      magnitude = std::uniform_int_distribution<std::uint64_t>(k == 1 ? 0 : power_of_ten(k - 1),
                                                               power_of_ten(k) - 1)(rng);
      ++p.medium;
    }
    const bool negative = b.running != 0 ? b.running > 0 : coin(rng);
    const auto v = static_cast<std::int64_t>(magnitude);
    b.add(negative ? -v : v);  // |new running| <= max(|running|, bound) <= bound
  }
  b.add(static_cast<std::int64_t>(-b.running));
  p.sum = 0;
  return p;
}

}  // namespace

const char* name(IntegerShape shape) {
  switch (shape) {
    case IntegerShape::small: return "small";
    case IntegerShape::uniform6: return "uniform6";
    case IntegerShape::int64: return "int64";
    case IntegerShape::crlf: return "crlf";
  }
  return "?";
}

IntegerShape integer_shape(std::string_view text) {
  for (const IntegerShape shape : kIntegerShapes) {
    if (text == name(shape)) return shape;
  }
  throw std::invalid_argument("unknown integer payload '" + std::string(text) +
                              "' (small, uniform6, int64 or crlf)");
}

Payload make_payload(std::size_t min_bytes, std::uint64_t seed) {
  return make_small(min_bytes, seed, false);
}

Payload make_integer_payload(IntegerShape shape, std::size_t min_bytes, int connections,
                             std::uint64_t seed) {
  switch (shape) {
    case IntegerShape::small: return make_small(min_bytes, seed, false);
    case IntegerShape::crlf: return make_small(min_bytes, seed, true);
    case IntegerShape::uniform6: return make_uniform6(min_bytes, seed);
    case IntegerShape::int64: return make_int64(min_bytes, connections, seed);
  }
  throw std::invalid_argument("unknown integer payload shape");
}

Payload make_line_protocol_payload(std::size_t min_bytes, std::uint64_t keys,
                                   std::int64_t first_second, std::uint64_t seed) {
  if (keys == 0) keys = 1;
  Payload p;
  p.format = PayloadFormat::line_protocol;
  p.keys = keys;
  p.first_second = first_second;
  p.bytes.reserve(std::max<std::size_t>(min_bytes, keys * 52) + 64);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> values(1, 1'000'000);
  constexpr std::uint64_t kStride = 2'147'483'647;  // prime: coprime with any keys below it
  char text[128];
  while (p.bytes.size() < min_bytes || p.lines % keys != 0) {
    const std::uint64_t i = p.lines;
    const std::uint64_t k = (i % keys) * (kStride % keys) % keys;
    const std::int64_t v = values(rng);
    const long long ts = first_second + static_cast<long long>((7 * i) % 3600);
    const int n =
        std::snprintf(text, sizeof text, "cdn,stream=s%llu,isp=i%llu bytes=%lldi %lld\n",
                      static_cast<unsigned long long>(k), static_cast<unsigned long long>(k % 50),
                      static_cast<long long>(v), ts);
    p.bytes.append(text, static_cast<std::size_t>(n));
    p.sum += v;
    ++p.lines;
  }
  return p;
}

bool parse_line_protocol_line(std::string_view line, std::uint64_t& key, std::int64_t& value) {
  constexpr std::string_view kStream = "cdn,stream=s";
  constexpr std::string_view kBytes = " bytes=";
  if (!line.starts_with(kStream)) return false;
  const char* const end = line.data() + line.size();
  const auto k = std::from_chars(line.data() + kStream.size(), end, key);
  const auto at = line.find(kBytes);
  if (k.ec != std::errc() || at == std::string_view::npos) return false;
  return std::from_chars(line.data() + at + kBytes.size(), end, value).ec == std::errc();
}

std::vector<Chunk> Payload::chunks(std::size_t target_bytes) const {
  std::vector<Chunk> out;
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    std::size_t end = std::min(bytes.size(), offset + target_bytes);
    const auto newline = bytes.rfind('\n', end - 1);
    end = (newline == std::string::npos || newline < offset) ? bytes.find('\n', offset) + 1
                                                             : newline + 1;
    Chunk c{offset, end - offset, 0, 0};
    std::int64_t v = 0;
    const char* p = bytes.data() + offset;
    const char* const stop = bytes.data() + end;
    while (p < stop) {
      const auto* const eol =
          static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(stop - p)));
      if (format == PayloadFormat::integers) {
        std::from_chars(p, eol, v);
      } else {
        std::uint64_t key = 0;
        parse_line_protocol_line({p, static_cast<std::size_t>(eol - p)}, key, v);
      }
      c.sum += v;
      ++c.lines;
      p = eol + 1;
    }
    out.push_back(c);
    offset = end;
  }
  return out;
}

std::string Payload::describe() const {
  char text[512];
  if (format == PayloadFormat::line_protocol) {
    std::snprintf(text, sizeof text,
                  "payload: %zu bytes, %llu lines, %.2f bytes/line; line protocol, %llu keys "
                  "(each %llu times), bytes=1..10^6, timestamps (s) in [%lld, %lld); e.g. %s",
                  bytes.size(), static_cast<unsigned long long>(lines), bytes_per_line(),
                  static_cast<unsigned long long>(keys),
                  static_cast<unsigned long long>(lines / keys),
                  static_cast<long long>(first_second), static_cast<long long>(first_second + 3600),
                  bytes.substr(0, bytes.find('\n')).c_str());
    return text;
  }
  std::string shape_text;
  switch (shape) {
    case IntegerShape::small:
    case IntegerShape::crlf:
      std::snprintf(text, sizeof text,
                    "%.1f%% |v|<1e5, %.1f%% 1e5<=|v|<1e9, %.1f%% 1e17<=|v|<1e18 (sign against the "
                    "running sum)%s",
                    100.0 * double(small) / double(lines), 100.0 * double(medium) / double(lines),
                    100.0 * double(large) / double(lines),
                    shape == IntegerShape::crlf ? ", lines end in \\r\\n" : "");
      shape_text = text;
      break;
    case IntegerShape::uniform6: shape_text = "uniform in [-10^6, 10^6]"; break;
    case IntegerShape::int64:
      std::snprintf(text, sizeof text,
                    "%.1f%% 19 digits (10^18 <= |v| < 2^63), %.1f%% 1-18 digits, sign against the "
                    "running sum",
                    100.0 * double(large) / double(lines), 100.0 * double(medium) / double(lines));
      shape_text = text;
      break;
  }
  std::snprintf(text, sizeof text,
                "payload %s: %zu bytes, %llu lines, %.2f bytes/line; %s; the buffer sums to 0; "
                "max |prefix sum| %s",
                name(shape), bytes.size(), static_cast<unsigned long long>(lines), bytes_per_line(),
                shape_text.c_str(), to_string(max_abs_prefix).c_str());
  return text;
}

}  // namespace tumbled::bench
