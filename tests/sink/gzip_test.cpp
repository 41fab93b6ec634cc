// gzip for request bodies: the `gzip: true|false|auto` decision, and compression that any gzip
// reader (here zlib's inflate, in the component tests InfluxDB itself) reads back exactly.
#include "sink/gzip.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>

using tumbled::config::GzipMode;
using namespace tumbled::sink;

namespace {

std::string points(std::size_t n) {
  std::string body;
  for (std::size_t i = 0; i < n; ++i) {
    body += "records,window=10-sec sum=" + std::to_string(500500 + i * 7919) + "i " +
            std::to_string(1795538790000 + i * 10'000) + "\n";
  }
  return body;
}

}  // namespace

TEST_CASE("should_gzip follows sink.influxdb.gzip", "[gzip]") {
  const auto [mode, bytes, local, expected] = GENERATE(table<GzipMode, std::size_t, bool, bool>({
      {GzipMode::never, 0, false, false},
      {GzipMode::never, 10'000'000, false, false},
      {GzipMode::always, 0, false, true},
      {GzipMode::always, 1, true, true},
      {GzipMode::always, 10'000'000, true, true},
      {GzipMode::automatic, 0, false, false},
      {GzipMode::automatic, kGzipAutoMinBytes - 1, false, false},
      {GzipMode::automatic, kGzipAutoMinBytes, false, true},
      {GzipMode::automatic, 10'000'000, false, true},
      // Over loopback compressing only costs time: auto leaves even large bodies alone.
      {GzipMode::automatic, kGzipAutoMinBytes, true, false},
      {GzipMode::automatic, 10'000'000, true, false},
  }));
  CAPTURE(static_cast<int>(mode), bytes, local);
  CHECK(should_gzip(mode, bytes, local) == expected);
}

TEST_CASE("gzip_compress writes a gzip stream that decompresses to the input", "[gzip]") {
  std::mt19937_64 random(42);
  std::string noise(3 << 20, '\0');  // incompressible: the output grows past the first guess
  for (auto& c : noise) c = static_cast<char>(random());
  const std::string input =
      GENERATE_COPY(std::string(), std::string("m v=1i 1\n"), points(100), points(5000), noise);
  for (int level : {1, 6, 9}) {
    CAPTURE(input.size(), level);
    const std::string compressed = gzip_compress(input, level);
    REQUIRE(compressed.size() >= 18);  // 10-byte header, 8-byte trailer
    CHECK(static_cast<std::uint8_t>(compressed[0]) == 0x1f);
    CHECK(static_cast<std::uint8_t>(compressed[1]) == 0x8b);
    CHECK(gzip_decompress(compressed) == input);
  }
}

TEST_CASE("a GzipCompressor gives the same result however often it is reused", "[gzip]") {
  tumbled::sink::GzipCompressor compressor;
  const std::string big = points(5000);
  const std::string small = points(3);
  for (int round = 0; round < 3; ++round) {
    CHECK(compressor.compress(big) == gzip_compress(big));
    CHECK(compressor.compress(small) == gzip_compress(small));
    CHECK(gzip_decompress(compressor.compress("")) == std::string());
  }
}

TEST_CASE("line protocol shrinks several times at the default level", "[gzip]") {
  const std::string body = points(5000);
  const std::string compressed = gzip_compress(body);
  CAPTURE(body.size(), compressed.size());
  CHECK(compressed.size() * 4 < body.size());
}

TEST_CASE("gzip_decompress refuses what is not one whole gzip stream", "[gzip]") {
  const std::string body = points(200);
  const std::string good = gzip_compress(body);
  CHECK_FALSE(gzip_decompress(body));                             // not gzip at all
  CHECK_FALSE(gzip_decompress(""));                               // nothing
  CHECK_FALSE(gzip_decompress(good.substr(0, good.size() - 1)));  // truncated trailer
  CHECK_FALSE(gzip_decompress(good.substr(0, good.size() / 2)));  // truncated data
  CHECK_FALSE(gzip_decompress(good + "x"));                       // trailing garbage
  std::string corrupt = good;
  corrupt[corrupt.size() - 6] ^= 1;  // CRC-32 of the data
  CHECK_FALSE(gzip_decompress(corrupt));
  CHECK_FALSE(gzip_decompress(good, body.size() - 1));  // larger than allowed
  CHECK(gzip_decompress(good, body.size()) == body);
}

TEST_CASE("gzip_decompress reads every member of a multi-member stream", "[gzip]") {
  const std::string first = points(50), second = points(70);
  const std::string two = gzip_compress(first) + gzip_compress(second);
  CHECK(gzip_decompress(two) == first + second);
  CHECK(gzip_decompress(two + gzip_compress("")) == first + second);  // an empty member
  CHECK_FALSE(gzip_decompress(two.substr(0, two.size() - 3)));        // second one truncated
  CHECK_FALSE(gzip_decompress(gzip_compress(first) + "\x1f"));        // a member's start only
}

TEST_CASE("gzip_decompress says when the output, not the input, is the problem", "[gzip]") {
  const std::string body = points(200);
  const std::string good = gzip_compress(body);
  bool too_large = true;
  CHECK(gzip_decompress(good, body.size(), &too_large) == body);
  CHECK_FALSE(too_large);
  CHECK_FALSE(gzip_decompress(good, body.size() - 1, &too_large));
  CHECK(too_large);
  CHECK_FALSE(gzip_decompress(body, body.size() * 2, &too_large));  // not gzip
  CHECK_FALSE(too_large);
  // Two members, each within the bound, together over it.
  CHECK_FALSE(gzip_decompress(good + good, body.size() * 2 - 1, &too_large));
  CHECK(too_large);
}
