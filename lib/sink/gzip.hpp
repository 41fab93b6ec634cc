// gzip for InfluxDB request bodies (`Content-Encoding: gzip`), with zlib.
//
// gzip_compress() and GzipCompressor wrap a whole body in one gzip member (RFC 1952);
// gzip_decompress() reverses it, for the HTTP source, tests and test servers. should_gzip() is the
// `sink.influxdb.gzip` decision. Measured (README, Writer): compressing costs time at both ends
// and pays only where bytes are slow to move, so `auto` compresses a body of kGzipAutoMinBytes
// or more, and only when InfluxDB is not on this machine (over loopback it is pure cost).
// Pure code, no I/O.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace tumbled::sink {

// Below this a body is a few TCP segments sent in one flight anyway, and compressing saves at
// most a few hundred microseconds even on a 100 Mbit/s link; from here on the saving grows with
// the body on any link slower than about 1 Gbit/s.
inline constexpr std::size_t kGzipAutoMinBytes = 8 * 1024;
// zlib level 1: line protocol shrinks about 5x at the fastest level already; level 6 gains a
// fifth more at three times the CPU.
inline constexpr int kGzipLevel = 1;

// `server_is_local`: the URL's host is a loopback address or "localhost".
bool should_gzip(config::GzipMode mode, std::size_t body_bytes, bool server_is_local);

// Throws std::bad_alloc only (zlib cannot fail on valid input with enough memory).
std::string gzip_compress(std::string_view data, int level = kGzipLevel);

// The same, reusing zlib's ~256 KiB of state between bodies: allocating it afresh costs more
// than compressing a small body. One per InfluxClient; not thread-safe.
class GzipCompressor {
 public:
  explicit GzipCompressor(int level = kGzipLevel);
  ~GzipCompressor();
  GzipCompressor(const GzipCompressor&) = delete;
  GzipCompressor& operator=(const GzipCompressor&) = delete;

  std::string compress(std::string_view data);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The decompressed data (of every member, concatenated), or nullopt if `data` is not a series of
// complete, valid gzip members or would exceed `max_bytes` decompressed (then *too_large, if
// given, is set to true).
std::optional<std::string> gzip_decompress(std::string_view data,
                                           std::size_t max_bytes = std::size_t{1} << 30,
                                           bool* too_large = nullptr);

}  // namespace tumbled::sink
