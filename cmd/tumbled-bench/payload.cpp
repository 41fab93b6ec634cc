#include "payload.hpp"

#include <charconv>
#include <cstdio>
#include <random>

namespace tumbled::bench {

namespace {

void append_value(std::string& out, std::int64_t v) {
  char text[24];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, v);
  (void)ec;
  out.append(text, end);
  out.push_back('\n');
}

Int128 abs128(Int128 v) {
  return v < 0 ? -v : v;
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

Payload make_payload(std::size_t min_bytes, std::uint64_t seed) {
  Payload p;
  p.bytes.reserve(min_bytes + 64);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(0, 99);
  std::uniform_int_distribution<std::int64_t> small(-99'999, 99'999);
  std::uniform_int_distribution<std::int64_t> medium(100'000, 999'999'999);
  std::uniform_int_distribution<std::int64_t> large(100'000'000'000'000'000,
                                                    999'999'999'999'999'999);
  std::bernoulli_distribution coin(0.5);
  Int128 running = 0;
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
      if (running > 0) v = -v;  // against the running sum: prefix sums stay within ~1e18
      ++p.large;
    }
    append_value(p.bytes, v);
    running += v;
    ++p.lines;
    if (abs128(running) > p.max_abs_prefix) p.max_abs_prefix = abs128(running);
  }
  // The last line cancels the rest: the buffer sums to exactly 0.
  append_value(p.bytes, static_cast<std::int64_t>(-running));
  ++p.lines;
  running = 0;
  p.sum = running;
  return p;
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
      const auto [next, ec] = std::from_chars(p, stop, v);
      (void)ec;
      c.sum += v;
      ++c.lines;
      p = next + 1;  // skip '\n'
    }
    out.push_back(c);
    offset = end;
  }
  return out;
}

std::string Payload::describe() const {
  char text[512];
  std::snprintf(text, sizeof text,
                "payload: %zu bytes, %llu lines, %.2f bytes/line; %.1f%% |v|<1e5, %.1f%% "
                "1e5<=|v|<1e9, %.1f%% 1e17<=|v|<1e18 (sign against the running sum), last line "
                "makes the buffer sum 0; max |prefix sum| %s",
                bytes.size(), static_cast<unsigned long long>(lines), bytes_per_line(),
                100.0 * double(small) / double(lines), 100.0 * double(medium) / double(lines),
                100.0 * double(large) / double(lines), to_string(max_abs_prefix).c_str());
  return text;
}

}  // namespace tumbled::bench
