// The ingest payload shared by tumbled-bench and the micro-benchmarks: newline-terminated signed
// 64-bit integers in one pre-built buffer, sent (or parsed) over and over.
//
// Distribution (fixed seed, so every run sends the same bytes):
//   90 %  uniform in [-99 999, 99 999]                      ("small", 1-6 bytes + '\n')
//    9 %  magnitude uniform in [10^5, 10^9), random sign    ("medium", 6-10 bytes + '\n')
//    1 %  magnitude uniform in [10^17, 10^18), sign chosen against the running sum ("large")
// plus one last line that brings the sum of the whole buffer to exactly 0. Averages ~6.9 bytes a
// line. Because the buffer sums to 0 and every prefix sum stays within about +-1.1e18, any
// contiguous stretch of the repeated stream (one window of one connection) sums to within
// +-2.2e18, so even 4 connections' values in one window stay inside int64: InfluxDB's int64 sum
// field can hold every window exactly and the check "sum in InfluxDB == sum sent" is exact.
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

struct Payload {
  std::string bytes;
  std::uint64_t lines = 0;
  Int128 sum = 0;             // always 0 by construction
  Int128 max_abs_prefix = 0;  // largest |prefix sum| over the buffer
  std::uint64_t small = 0, medium = 0, large = 0;

  double bytes_per_line() const { return lines ? double(bytes.size()) / double(lines) : 0.0; }
  std::string_view view(const Chunk& c) const { return {bytes.data() + c.offset, c.size}; }
  // Splits the buffer into chunks of about `target_bytes`, each ending at a newline.
  std::vector<Chunk> chunks(std::size_t target_bytes) const;
  std::string describe() const;
};

// Builds a payload of at least `min_bytes` bytes from a fixed seed.
Payload make_payload(std::size_t min_bytes, std::uint64_t seed = 20240601);

std::string to_string(Int128 v);

}  // namespace tumbled::bench
