// The ingest payloads shared by tumbled-bench and the micro-benchmarks, each one pre-built buffer
// sent (or parsed) over and over.
//
// make_payload(): newline-terminated signed 64-bit integers (source.format: integers), the
// `small` shape of make_integer_payload(). Distribution (fixed seed, so every run sends the same
// bytes):
//   90 %  uniform in [-99 999, 99 999]                      ("small", 1-6 bytes + '\n')
//    9 %  magnitude uniform in [10^5, 10^9), random sign    ("medium", 6-10 bytes + '\n')
//    1 %  magnitude uniform in [10^17, 10^18), sign chosen against the running sum ("large")
// plus one last line that brings the sum of the whole buffer to exactly 0. Averages ~6.9 bytes a
// line. Because the buffer sums to 0 and every prefix sum stays within about +-1.1e18, any
// contiguous stretch of the repeated stream (one window of one connection) sums to within
// +-2.2e18, so even 4 connections' values in one window stay inside int64: InfluxDB's int64 sum
// field can hold every window exactly and the check "sum in InfluxDB == sum sent" is exact.
//
// make_integer_payload(shape): the same idea (fixed seed, the buffer sums to exactly 0, prefix
// sums bounded so that every window's sum is exact in int64) in other shapes:
//   small     make_payload() above: mostly 1-6 digits, a few up to 18
//   crlf      the values of `small`, each line ending in "\r\n"
//   uniform6  uniform in [-10^6, 10^6] (~7.4 bytes a line); the last lines, each inside that range
//             too, bring the sum back to 0
//   int64     95 % 19-digit values, magnitude uniform in [10^18, |running sum| + B] with the sign
//             against the running sum, 5 % of 1-18 digits (a uniform length, sign against the
//             running sum); B = INT64_MAX / (2 * connections), so the prefix sums stay within
//             +-B and any stretch of the repeated stream of each of `connections` connections
//             sums within +-2B: one window of all of them stays inside int64. With 1 connection
//             the magnitudes reach INT64_MAX - 1 (~20.7 bytes a line).
//
// make_line_protocol_payload(): InfluxDB line protocol (source.format: line_protocol), one key
// per line out of `keys`, seconds timestamps inside one hour:
//   cdn,stream=s<k>,isp=i<k % 50> bytes=<n>i <ts>
// Line i has key k = (i mod keys) * 2147483647 mod keys (a fixed permutation: every run of `keys`
// lines holds each key once, in an order that does not follow the order keys were first seen),
// n uniform in [1, 10^6] (fixed seed) and ts = first_second + (7 i mod 3600). The line count is a
// multiple of `keys`, so each pass over the buffer adds the same to every key. Key k's text is
// what tumbled interns with window.group_by [stream, isp]: `cdn,isp=i<k % 50>,stream=s<k>`.
// Pure code, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tumbled::bench {

__extension__ using Int128 = __int128;

// A run of whole lines inside the payload, with what it carries.
struct Chunk {
  std::size_t offset = 0;
  std::size_t size = 0;
  std::uint64_t lines = 0;
  Int128 sum = 0;
};

enum class PayloadFormat : std::uint8_t { integers, line_protocol };

// The shapes of make_integer_payload(), and their names on the command line.
enum class IntegerShape : std::uint8_t { small, uniform6, int64, crlf };
inline constexpr IntegerShape kIntegerShapes[] = {IntegerShape::small, IntegerShape::uniform6,
                                                  IntegerShape::int64, IntegerShape::crlf};
const char* name(IntegerShape shape);
// The shape of that name; throws std::invalid_argument if there is none.
IntegerShape integer_shape(std::string_view name);

struct Payload {
  PayloadFormat format = PayloadFormat::integers;
  IntegerShape shape = IntegerShape::small;  // integers
  std::string bytes;
  std::uint64_t lines = 0;
  Int128 sum = 0;             // integers: always 0 by construction; line_protocol: of `bytes=`
  Int128 max_abs_prefix = 0;  // integers: largest |prefix sum| over the buffer
  std::uint64_t small = 0, medium = 0, large = 0;
  std::uint64_t keys = 0;         // line_protocol: distinct keys (every one in the buffer)
  std::int64_t first_second = 0;  // line_protocol: timestamps in [first_second, +3600)

  double bytes_per_line() const { return lines ? double(bytes.size()) / double(lines) : 0.0; }
  std::string_view view(const Chunk& c) const { return {bytes.data() + c.offset, c.size}; }
  // Splits the buffer into chunks of about `target_bytes`, each ending at a newline. A chunk's
  // sum is of the integers, or of the line-protocol `bytes=` values.
  std::vector<Chunk> chunks(std::size_t target_bytes) const;
  std::string describe() const;
};

// Builds a payload of at least `min_bytes` bytes from a fixed seed.
Payload make_payload(std::size_t min_bytes, std::uint64_t seed = 20240601);

// Builds an integer payload of that shape (see above) of at least `min_bytes` bytes; the int64
// shape keeps the window sums of `connections` connections inside int64.
Payload make_integer_payload(IntegerShape shape, std::size_t min_bytes, int connections = 1,
                             std::uint64_t seed = 20240601);

// Builds a line-protocol payload of at least `min_bytes` bytes and `keys` lines (see above).
Payload make_line_protocol_payload(std::size_t min_bytes, std::uint64_t keys,
                                   std::int64_t first_second, std::uint64_t seed = 20240601);

// A line-protocol payload line's key number and `bytes=` value; false if it is not such a line.
bool parse_line_protocol_line(std::string_view line, std::uint64_t& key, std::int64_t& value);

std::string to_string(Int128 v);

}  // namespace tumbled::bench
