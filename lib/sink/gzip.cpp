#include "sink/gzip.hpp"

#include <zlib.h>

#include <algorithm>
#include <limits>
#include <new>

namespace tumbled::sink {

namespace {

// zlib counts in uInt: feed larger inputs in pieces.
constexpr std::size_t kChunk = std::numeric_limits<uInt>::max() / 2;

constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window, gzip header and trailer

}  // namespace

bool should_gzip(config::GzipMode mode, std::size_t body_bytes, bool server_is_local) {
  switch (mode) {
    case config::GzipMode::always: return true;
    case config::GzipMode::never: return false;
    case config::GzipMode::automatic: return !server_is_local && body_bytes >= kGzipAutoMinBytes;
  }
  return false;
}

struct GzipCompressor::State {
  z_stream z{};
};

GzipCompressor::GzipCompressor(int level) : state_(std::make_unique<State>()) {
  if (deflateInit2(&state_->z, level, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::bad_alloc();
  }
}

GzipCompressor::~GzipCompressor() {
  deflateEnd(&state_->z);
}

std::string GzipCompressor::compress(std::string_view data) {
  z_stream& z = state_->z;
  if (deflateReset(&z) != Z_OK) throw std::bad_alloc();
  // deflateBound is for one call; with chunked input add a little per chunk.
  std::string out(deflateBound(&z, static_cast<uLong>(std::min(data.size(), kChunk))) +
                      (data.size() / kChunk + 1) * 64,
                  '\0');
  std::size_t in_done = 0;
  std::size_t out_done = 0;
  int result = Z_OK;
  while (result != Z_STREAM_END) {
    if (z.avail_in == 0 && in_done < data.size()) {
      const std::size_t n = std::min(data.size() - in_done, kChunk);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + in_done));
      z.avail_in = static_cast<uInt>(n);
      in_done += n;
    }
    if (out_done == out.size()) out.resize(out.size() * 2);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + out_done);
    z.avail_out = static_cast<uInt>(std::min(out.size() - out_done, kChunk));
    const uInt room = z.avail_out;
    result = deflate(&z, in_done == data.size() ? Z_FINISH : Z_NO_FLUSH);
    if (result != Z_OK && result != Z_STREAM_END && result != Z_BUF_ERROR) throw std::bad_alloc();
    out_done += room - z.avail_out;
  }
  out.resize(out_done);
  return out;
}

std::string gzip_compress(std::string_view data, int level) {
  return GzipCompressor(level).compress(data);
}

std::optional<std::string> gzip_decompress(std::string_view data, std::size_t max_bytes,
                                           bool* too_large) {
  z_stream z{};
  if (inflateInit2(&z, kGzipWindowBits) != Z_OK) return std::nullopt;
  std::string out;
  std::size_t in_done = 0;
  char buffer[64 * 1024];
  int result = Z_OK;
  while (result != Z_STREAM_END) {
    if (z.avail_in == 0) {
      if (in_done == data.size()) break;  // truncated
      const std::size_t n = std::min(data.size() - in_done, kChunk);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + in_done));
      z.avail_in = static_cast<uInt>(n);
      in_done += n;
    }
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    result = inflate(&z, Z_NO_FLUSH);
    if (result != Z_OK && result != Z_STREAM_END) break;
    out.append(buffer, sizeof buffer - z.avail_out);
    if (out.size() > max_bytes) break;
    // Another member follows (RFC 1952 2.2: a gzip file is a series of members; gzip, Go and
    // InfluxDB read them all as one stream).
    if (result == Z_STREAM_END && (z.avail_in > 0 || in_done < data.size())) {
      if (inflateReset(&z) != Z_OK) break;
      result = Z_OK;
    }
  }
  const bool complete = result == Z_STREAM_END && z.avail_in == 0 && in_done == data.size() &&
                        out.size() <= max_bytes;
  inflateEnd(&z);
  if (too_large) *too_large = out.size() > max_bytes;
  if (!complete) return std::nullopt;
  return out;
}

}  // namespace tumbled::sink
