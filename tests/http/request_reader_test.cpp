// RequestReader: bounds, refusals and RFC 9112 rules, on bytes fed in pieces of every size.
#include <catch2/catch.hpp>

#include <boost/asio/buffer.hpp>
#include <cstring>
#include <string>

#include "http/request_reader.hpp"

using tumbled::http::RequestLimits;
using tumbled::http::RequestReader;
using Progress = RequestReader::Progress;

namespace {

// Feeds `bytes` in pieces of at most `piece` bytes; stops at the first verdict.
Progress feed(RequestReader& reader, const std::string& bytes, std::size_t piece) {
  Progress progress = Progress::need_more;
  std::size_t at = 0;
  while (progress == Progress::need_more && at < bytes.size()) {
    auto space = reader.receive_space(piece);
    REQUIRE(space.size() > 0);
    const std::size_t n = std::min(space.size(), bytes.size() - at);
    std::memcpy(space.data(), bytes.data() + at, n);
    at += n;
    progress = reader.received(n);
  }
  return progress;
}

const std::string kGet = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

}  // namespace

TEST_CASE("RequestReader accepts well-formed requests whatever the read sizes", "[http]") {
  const std::size_t piece = GENERATE(1, 2, 7, 100, 16384);
  RequestReader reader(RequestLimits{});

  SECTION("GET") {
    REQUIRE(feed(reader, kGet, piece) == Progress::complete);
    CHECK(reader.request().target() == "/health");
    CHECK(reader.request()["Host"] == "x");
  }
  SECTION("a chunked body with extensions and a trailer") {
    const std::string chunked =
        "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n";
    REQUIRE(feed(reader, chunked, piece) == Progress::complete);
    CHECK(reader.request().body() == "abcde");
  }
  SECTION("HTTP/1.0 without Host") {
    REQUIRE(feed(reader, "GET / HTTP/1.0\r\n\r\n", piece) == Progress::complete);
  }
}

TEST_CASE("RequestReader drops trailer fields: nothing unchecked joins the header", "[http]") {
  RequestReader reader(RequestLimits{});
  REQUIRE(feed(reader,
               "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n"
               "Host: b\r\nAuthorization: Token t\r\n\r\n",
               16384) == Progress::complete);
  const auto& request = reader.request();
  CHECK(request.body() == "z");
  CHECK(request.count("Host") == 1);
  CHECK(request["Host"] == "a");
  CHECK(request.count("Authorization") == 0);
  CHECK(request.count("Transfer-Encoding") == 1);
}

TEST_CASE("RequestReader keeps a pipelined request that arrived with the first", "[http]") {
  RequestReader reader(RequestLimits{});
  REQUIRE(feed(reader, kGet + "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n", 16384) ==
          Progress::complete);
  CHECK(reader.request().target() == "/health");
  reader.next();
  REQUIRE(reader.parse() == Progress::complete);
  CHECK(reader.request().target() == "/ready");
  reader.next();
  CHECK(reader.parse() == Progress::need_more);
  CHECK_FALSE(reader.mid_request());
}

TEST_CASE("RequestReader refuses what it must, with the status to answer", "[http]") {
  using Row = std::tuple<const char*, std::string, unsigned>;
  const auto [what, bytes, status] = GENERATE(table<const char*, std::string, unsigned>({
      Row{"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400},
      Row{"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      Row{"two Host headers on HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      Row{"an unknown transfer coding",
          "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\n\r\n", 501},
      Row{"gzip before chunked",
          "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
      Row{"Transfer-Encoding on HTTP/1.0",
          "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      Row{"Transfer-Encoding and Content-Length",
          "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
          400},
      Row{"headers over 8 KiB",
          "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(9000, 'h') + "\r\n\r\n", 431},
      Row{"a body over 1 KiB", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n", 413},
      Row{"a chunked body over 1 KiB",
          "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
              std::string(0x800, 'b') + "\r\n0\r\n\r\n",
          413},
      Row{"a trailer over 64 KiB",
          "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: " +
              std::string(65600, 't') + "\r\n\r\n",
          431},
      Row{"a chunk extension of 1 MiB",
          "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;e=" +
              std::string(1 << 20, 'e') + "\r\nx\r\n0\r\n\r\n",
          431},
      Row{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 tls hello\r\n\r\n", 400},
  }));
  CAPTURE(what);
  const std::size_t piece = GENERATE(1, 1000, 16384);
  if (piece == 1 && bytes.size() > 100'000) return;  // the same verdict, a lot slower
  RequestReader reader(RequestLimits{});
  REQUIRE(feed(reader, bytes, piece) == Progress::refused);
  CHECK(reader.refusal().status == status);
  CHECK_FALSE(reader.refusal().reason.empty());
}

TEST_CASE("RequestReader bounds the bytes of a request, trailers and chunk framing included",
          "[http]") {
  RequestLimits limits;
  RequestReader reader(limits);
  std::string bytes = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  // 10-byte trailers, far more of them than any request may carry.
  while (bytes.size() < 4 * limits.request_bytes()) bytes += "X-T: tttt\r\n";
  REQUIRE(feed(reader, bytes, 4096) == Progress::refused);
  CHECK((reader.refusal().status == 413 || reader.refusal().status == 431));

  // One-byte chunks: the framing costs 5 bytes a byte, the limit holds all the same.
  RequestReader tiny_chunks(limits);
  std::string chunks = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 100'000; ++i) chunks += "1\r\nb\r\n";
  REQUIRE(feed(tiny_chunks, chunks, 4096) == Progress::refused);
}

TEST_CASE("RequestReader never holds more than its buffer", "[http]") {
  RequestLimits limits;
  RequestReader reader(limits);
  const std::string start = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
  REQUIRE(feed(reader, start, 16384) == Progress::need_more);
  std::size_t offered = 0;
  Progress progress = Progress::need_more;
  while (progress == Progress::need_more) {
    auto space = reader.receive_space(1 << 20);
    CHECK(space.size() <= limits.buffer_bytes);
    std::memset(space.data(), 'h', space.size());
    offered += space.size();
    REQUIRE(offered <= limits.buffer_bytes);
    progress = reader.received(space.size());
  }
  CHECK(reader.refusal().status == 431);
}
