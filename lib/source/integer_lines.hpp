// The integer lines of LineFramer's fast path, parsed 8 digits at a time (SWAR: SIMD within a
// 64-bit register) and found 64 bytes at a time (SSE2 on x86-64, SWAR elsewhere), without
// branches that depend on how long a number is.
//
// A plain line is [+-]?[0-9]{1,19}\r?\n with a value inside int64; anything else (spaces, empty
// lines, longer numbers, leading zeros past 19 digits, values outside int64, garbage) is left to
// parse_line(), which knows every rule and every reason for a rejection. The fast path only has
// to be exact on what it accepts: a plain line gives the value parse_line() would give it.
//
// parse_plain_line() reads the number backwards from its end, right-aligned: the last 16 digits
// (or all, if fewer) in one SSE2 register (elsewhere: two 8-byte words, each converted with three
// multiplications), the 1-3 before them in a 32-bit word. The 19 digits of the int64 range fit
// in a uint64, so one comparison against INT64_MAX (or INT64_MAX + 1 after '-') decides whether
// the value is in range. Pure code.
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

// The last `count` (0 to 16) bytes before `end`, read as a number: are they all digits, and
// their value (below 10^16). Reads the 16 bytes before `end`.
inline bool last_sixteen_digits_swar(const char* end, std::size_t count, std::uint64_t& value) {
  const std::uint64_t keep_low = kKeep[std::min<std::size_t>(count, 8)];
  const std::uint64_t keep_mid = kKeep[count > 8 ? count - 8 : 0];
  const std::uint64_t low = load_word(end - 8) & keep_low;
  const std::uint64_t mid = load_word(end - 16) & keep_mid;
  value = eight_digits(mid) * 100'000'000 + eight_digits(low);
  return ((non_digits(low) & keep_low) | (non_digits(mid) & keep_mid)) == 0;
}

#if defined(__SSE2__)
// kSlide + k: 16 bytes whose last k are 0xFF, the rest 0.
inline constexpr unsigned char kSlide[32] = {
    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

// The same in one 16-byte register: pairs of digits, then fours, then eights, each step one
// multiply-add of adjacent lanes.
inline bool last_sixteen_digits_sse2(const char* end, std::size_t count, std::uint64_t& value) {
  const __m128i keep = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kSlide + count));
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(end - 16));
  const __m128i d = _mm_sub_epi8(bytes, _mm_set1_epi8('0'));  // digits become 0..9
  const __m128i is_digit = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
  const bool ok = _mm_movemask_epi8(_mm_andnot_si128(is_digit, keep)) == 0;
  const __m128i digits = _mm_and_si128(d, keep);  // bytes before the number count as 0
  const __m128i zero = _mm_setzero_si128();
  // 16-bit lanes, the first (more significant) of each pair times 10, 100, then 10000.
  const __m128i tens = _mm_set1_epi32((1 << 16) | 10);
  const __m128i pairs = _mm_packs_epi32(_mm_madd_epi16(_mm_unpacklo_epi8(digits, zero), tens),
                                        _mm_madd_epi16(_mm_unpackhi_epi8(digits, zero), tens));
  const __m128i fours = _mm_madd_epi16(pairs, _mm_set1_epi32((1 << 16) | 100));  // <= 9999
  const __m128i eights =
      _mm_madd_epi16(_mm_packs_epi32(fours, fours), _mm_set1_epi32((1 << 16) | 10000));
  const auto both = static_cast<std::uint64_t>(_mm_cvtsi128_si64(eights));
  value = (both & 0xFFFFFFFF) * 100'000'000 + (both >> 32);
  return ok;
}
#endif

inline bool last_sixteen_digits(const char* end, std::size_t count, std::uint64_t& value) {
#if defined(__SSE2__)
  return last_sixteen_digits_sse2(end, count, value);
#else
  return last_sixteen_digits_swar(end, count, value);
#endif
}

// The last `count` (0 to 3) bytes before `end` as a number, in a 32-bit word (the immediates of
// 32-bit operations need no 64-bit constants): are they all digits, and their value.
inline bool last_three_digits(const char* end, std::size_t count, std::uint32_t& value) {
  static constexpr std::uint32_t kKeep32[4] = {0, 0xFF000000, 0xFFFF0000, 0xFFFFFF00};
  std::uint32_t word;
  std::memcpy(&word, end - 4, sizeof word);
  if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap32(word);
  const std::uint32_t keep = kKeep32[count];
  word &= keep;
  const std::uint32_t t = word ^ 0x30303030;
  const std::uint32_t bad = (((t & 0x7F7F7F7F) + 0x76767676) | t) & 0x80808080 & keep;
  std::uint32_t v = (word & 0x0F0F0F0F) * (1 + (10 << 8)) >> 8;  // pairs in bytes 0 and 2
  value = (v & 0x00FF00FF) * (1 + (100 << 16)) >> 16;
  return bad == 0;
}

// Is [line, newline) a plain line ([+-]?[0-9]{1,19}\r? with a value inside int64)? If so, stores
// its value in `out`. Needs kLookBehind readable bytes before `newline` (bytes before `line` are
// read and ignored). Up to 16 digits take the same steps whatever their number; the 17th to
// 19th (and the range check they need) are behind one branch, which a payload only mispredicts
// as often as it mixes numbers above and below 10^16.
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
  if (digits - 1 >= 19) return false;
  std::uint64_t magnitude = 0;
  bool ok = last_sixteen_digits(end, std::min<std::size_t>(digits, 16), magnitude);
  if (digits > 16) {
    std::uint32_t high = 0;
    ok &= last_three_digits(end - 16, digits - 16, high);
    magnitude += high * std::uint64_t{10'000'000'000'000'000};  // < 10^19 < 2^64
    ok &= magnitude <=
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + negative;
  }
  out = apply_sign(magnitude, negative);
  return ok;
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
  // Counted in a local: `lines` itself may alias what on_value stores (an int64), which would
  // make every line wait for the previous line's store.
  std::uint64_t count = 0;
  const auto stop = [&] {
    lines += count;
    return line;
  };
  // The first lines byte by byte, until a newline has kLookBehind bytes of the buffer before it.
  while (line < begin + kLookBehind) {
    const char* const next = parse_plain_line_bytewise(line, end, value);
    if (next == nullptr) return stop();
    on_value(value);
    ++count;
    line = next;
  }
  // 64 bytes at a time: the newlines of a block, then each line that ends at one. A line may
  // start in an earlier block; one longer than a plain line stops the loop.
  for (const char* block = line; end - block >= 64; block += 64) {
    for (std::uint64_t mask = newlines(block); mask != 0; mask &= mask - 1) {
      const char* const newline = block + std::countr_zero(mask);
      if (!parse_plain_line(line, newline, value)) return stop();
      on_value(value);
      ++count;
      line = newline + 1;
    }
  }
  // The last lines (less than a block) byte by byte.
  while (line < end) {
    const char* const next = parse_plain_line_bytewise(line, end, value);
    if (next == nullptr) return stop();
    on_value(value);
    ++count;
    line = next;
  }
  return stop();
}

}  // namespace tumbled::source::integer_lines
