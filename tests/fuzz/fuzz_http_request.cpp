// libFuzzer target for http/request_reader: the bytes of one connection, delivered in
// fuzzer-chosen pieces, through the same limits the HTTP server uses (RequestLimits defaults).
// Invariants checked (any violation aborts, which libFuzzer reports; an exception escaping the
// reader is a crash too — that is what ended the daemon before):
//   - the reader never offers more room than its buffer, and never an empty one while it wants
//     more bytes;
//   - the wire bytes of one request never exceed request_bytes() before a verdict;
//   - a refusal has a 4xx/5xx status and a reason; a complete request's body is within
//     body_bytes, and an HTTP/1.1 one has exactly one Host;
//   - after a complete request, next() goes on with the following pipelined bytes.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "http/request_reader.hpp"

using tumbled::http::RequestLimits;
using tumbled::http::RequestReader;
using Progress = RequestReader::Progress;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_http_request: invariant violated: %s\n", what);
  std::abort();
}

#define CHECK(cond)           \
  do {                        \
    if (!(cond)) fail(#cond); \
  } while (0)

void check_verdict(RequestReader& reader, Progress progress, const RequestLimits& limits) {
  if (progress == Progress::refused) {
    CHECK(reader.refusal().status >= 400 && reader.refusal().status <= 599);
    CHECK(!reader.refusal().reason.empty());
  } else if (progress == Progress::complete) {
    const auto& request = reader.request();
    CHECK(request.body().size() <= limits.body_bytes);
    if (request.version() >= 11) {
      CHECK(request.count(boost::beast::http::field::host) == 1);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  const RequestLimits limits;
  RequestReader reader(limits);
  std::uint64_t fed = 0;  // bytes handed over since the last verdict
  while (input.remaining_bytes() > 0) {
    const std::size_t want = input.ConsumeIntegralInRange<std::size_t>(1, 20000);
    auto space = reader.receive_space(want);
    CHECK(space.size() > 0);
    CHECK(space.size() <= limits.buffer_bytes);
    const std::string piece = input.ConsumeBytesAsString(space.size());
    if (piece.empty()) break;
    std::memcpy(space.data(), piece.data(), piece.size());
    fed += piece.size();
    Progress progress = reader.received(piece.size());
    // Several pipelined requests may be complete in what arrived.
    while (progress == Progress::complete) {
      check_verdict(reader, progress, limits);
      reader.next();
      fed = 0;
      progress = reader.parse();
    }
    check_verdict(reader, progress, limits);
    if (progress == Progress::refused) break;  // the server answers and closes
    // Bytes of later requests may be buffered, so `fed` can run ahead by one buffer at most.
    CHECK(fed <= limits.request_bytes() + limits.buffer_bytes);
  }
  return 0;
}
