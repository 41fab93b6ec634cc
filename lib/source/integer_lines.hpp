// The integer lines of LineFramer's fast path, parsed 8 digits at a time (SWAR: SIMD within a
// 64-bit register) and found 64 bytes at a time (SSE2 on x86-64, SWAR elsewhere), without
// branches that depend on how long a number is.
//
// A plain line is [+-]?[0-9]{1,19}\r?\n with a value inside int64; anything else (spaces, empty
// lines, longer numbers, leading zeros past 19 digits, values outside int64, garbage) is left to
// parse_line(), which knows every rule and every reason for a rejection. The fast path only has
// to be exact on what it accepts: a plain line gives the value parse_line() would give it.
//
// parse_plain_line() reads the number backwards from its end, right-aligned in three 8-byte words
// (the last 8 digits, the 8 before them, the first 3), each converted with three multiplications;
// the 19 digits of the int64 range fit in a uint64, so one comparison against INT64_MAX (or
// INT64_MAX + 1 after '-') decides whether the value is in range. Pure code.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tumbled::source::integer_lines {

// Bytes parse_plain_line() may read before a line's newline: the three words ending at it.
inline constexpr std::size_t kLookBehind = 24;
// The longest plain line without its '\n': a sign, 19 digits and '\r'.
inline constexpr std::size_t kMaxPlainLine = 21;

// 8 bytes at p as a little-endian word: the byte at p is the lowest.
inline std::uint64_t load_word(const char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, sizeof word);
  if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
  return word;
}

inline constexpr std::uint64_t kOnes = 0x0101010101010101;

// 0x80 in each byte of `word` that is not an ASCII digit, 0 in each that is.
inline std::uint64_t non_digits(std::uint64_t word) {
  const std::uint64_t t = word ^ (kOnes * '0');  // digits become 0..9
  // A byte below 0x80 reaches 0x80 when 0x76 is added iff it is 10 or more; no carry leaves it.
  return (((t & (kOnes * 0x7F)) + kOnes * 0x76) | t) & (kOnes * 0x80);
}

// The value of 8 ASCII digits, the first in the lowest byte; a zero byte counts as a digit 0.
inline std::uint64_t eight_digits(std::uint64_t word) {
  word = (word & (kOnes * 0x0F)) * (1 + (10 << 8)) >> 8;
  word = (word & 0x00FF00FF00FF00FF) * (1 + (100 << 16)) >> 16;
  return (word & 0x0000FFFF0000FFFF) * (1 + (10000ULL << 32)) >> 32;
}

// The int64 of that magnitude (at most 2^63 if negative) and sign.
inline std::int64_t apply_sign(std::uint64_t magnitude, bool negative) {
  const std::uint64_t flip = 0 - static_cast<std::uint64_t>(negative);  // all ones or zero
  return static_cast<std::int64_t>((magnitude ^ flip) - flip);
}

// kKeep[k]: the k highest bytes of a word (the last k characters of the 8 loaded).
inline constexpr std::uint64_t kKeep[9] = {
    0,
    0xFF00000000000000,
    0xFFFF000000000000,
    0xFFFFFF0000000000,
    0xFFFFFFFF00000000,
    0xFFFFFFFFFF000000,
    0xFFFFFFFFFFFF0000,
    0xFFFFFFFFFFFFFF00,
    0xFFFFFFFFFFFFFFFF,
};

// Is [line, newline) a plain line ([+-]?[0-9]{1,19}\r? with a value inside int64)? If so, stores
// its value in `out`. Needs kLookBehind readable bytes before `newline` (bytes before `line` are
// read and ignored). Up to 8 digits take one word; 9 to 19 take three, behind one branch that
// only a payload mixing both often enough mispredicts.
[[gnu::always_inline]] inline bool parse_plain_line(const char* line, const char* newline,
                                                    std::int64_t& out) {
  // An empty line reads the byte before it, which is not '\r': a '\n', or ignored bytes.
  const bool cr = newline[-1] == '\r';
  const char* const end = newline - cr;  // one past the last digit
  const char first = *line;              // the '\n' itself for an empty line
  const bool negative = first == '-';
  const bool sign = negative || first == '+';
  // Counted from the end, so no sign or '\r' is ever taken for a digit; "-" and "\r" give 0.
  const auto digits = static_cast<std::size_t>(end - line) - sign;
  if (digits - 1 < 8) [[likely]] {  // below 10^8: in range
    const std::uint64_t keep = kKeep[digits];
    const std::uint64_t low = load_word(end - 8) & keep;
    out = apply_sign(eight_digits(low), negative);
    return (non_digits(low) & keep) == 0;
  }
  if (digits - 1 >= 19) return false;
  const std::uint64_t keep_mid = kKeep[std::min<std::size_t>(digits - 8, 8)];
  const std::uint64_t keep_high = kKeep[digits > 16 ? digits - 16 : 0];
  const std::uint64_t low = load_word(end - 8);
  const std::uint64_t mid = load_word(end - 16) & keep_mid;
  const std::uint64_t high = load_word(end - 24) & keep_high;
  const std::uint64_t bad =
      non_digits(low) | (non_digits(mid) & keep_mid) | (non_digits(high) & keep_high);
  const std::uint64_t magnitude = eight_digits(high) * 10'000'000'000'000'000 +
                                  eight_digits(mid) * 100'000'000 +
                                  eight_digits(low);  // < 10^19 < 2^64
  const std::uint64_t limit =
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + negative;
  out = apply_sign(magnitude, negative);
  return (bad == 0) & (magnitude <= limit);
}

// The same, one byte at a time, for lines too close to either end of a buffer for the words
// above; `end` bounds what may be read. Stops at the first line that is not plain (or not
// complete before `end`) and returns one past its '\n', or nullptr.
inline const char* parse_plain_line_bytewise(const char* line, const char* end, std::int64_t& out) {
  const char* p = line;
  if (p == end) return nullptr;
  const bool negative = *p == '-';
  p += negative || *p == '+';
  const char* const digits = p;
  std::uint64_t magnitude = 0;  // wraps past 19 digits, which are rejected anyway
  while (p < end && static_cast<unsigned char>(*p - '0') < 10) {
    magnitude = magnitude * 10 + static_cast<unsigned char>(*p - '0');
    ++p;
  }
  const auto count = p - digits;
  if (count == 0 || count > 19) return nullptr;
  if (p < end && *p == '\r') ++p;
  if (p == end || *p != '\n') return nullptr;
  const std::uint64_t limit =
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + negative;
  if (magnitude > limit) return nullptr;
  out = apply_sign(magnitude, negative);
  return p + 1;
}

// Bit i set iff block[i] == '\n', for the 64 bytes at `block`.
inline std::uint64_t newlines_swar(const char* block) {
  std::uint64_t mask = 0;
  for (int i = 0; i < 8; ++i) {
    const std::uint64_t t = load_word(block + 8 * i) ^ (kOnes * '\n');  // '\n' becomes 0
    // 0x80 in each zero byte, exactly (no borrow crosses bytes).
    const std::uint64_t zero = ~(((t & (kOnes * 0x7F)) + kOnes * 0x7F) | t) & (kOnes * 0x80);
    // Gathers the eight 0x80 bits into one byte, byte 0 to bit 0.
    mask |= ((zero >> 7) * 0x0102040810204080 >> 56) << (8 * i);
  }
  return mask;
}

#if defined(__SSE2__)
inline std::uint64_t newlines_sse2(const char* block) {
  const __m128i newline = _mm_set1_epi8('\n');
  std::uint64_t mask = 0;
  for (int i = 0; i < 4; ++i) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * i));
    const auto bits = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, newline)));
    mask |= static_cast<std::uint64_t>(bits) << (16 * i);
  }
  return mask;
}
#endif

inline std::uint64_t newlines(const char* block) {
#if defined(__SSE2__)
  return newlines_sse2(block);
#else
  return newlines_swar(block);
#endif
}

// Parses the plain lines of [begin, end) from the start, calling on_value(std::int64_t) for each,
// up to the first line that is not plain or not complete; returns where that line starts (end if
// every line was plain). `lines` counts the values.
template <class OnValue>
const char* parse_plain_lines(const char* const begin, const char* const end, OnValue& on_value,
                              std::uint64_t& lines) {
  const char* line = begin;
  std::int64_t value = 0;
  // The first lines byte by byte, until a newline has kLookBehind bytes of the buffer before it.
  while (line < begin + kLookBehind) {
    const char* const next = parse_plain_line_bytewise(line, end, value);
    if (next == nullptr) return line;
    on_value(value);
    ++lines;
    line = next;
  }
  // 64 bytes at a time: the newlines of a block, then each line that ends at one. A line may
  // start in an earlier block; one longer than a plain line stops the loop.
  for (const char* block = line; end - block >= 64; block += 64) {
    for (std::uint64_t mask = newlines(block); mask != 0; mask &= mask - 1) {
      const char* const newline = block + std::countr_zero(mask);
      if (!parse_plain_line(line, newline, value)) return line;
      on_value(value);
      ++lines;
      line = newline + 1;
    }
  }
  // The last lines (less than a block) byte by byte.
  while (line < end) {
    const char* const next = parse_plain_line_bytewise(line, end, value);
    if (next == nullptr) return line;
    on_value(value);
    ++lines;
    line = next;
  }
  return line;
}

}  // namespace tumbled::source::integer_lines
