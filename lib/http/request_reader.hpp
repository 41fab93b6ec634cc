// RequestReader: HTTP/1.1 requests out of the bytes of one connection, within fixed bounds.
//
// Sans-I/O: the server reads from its socket into receive_space(), hands the count to received()
// and learns whether a request is complete, more bytes are needed, or the request is refused with
// a status to answer before closing the connection. Beast's parser does the parsing; this class
// owns what a hostile client could otherwise exploit:
//   - memory: the bytes held at once are at most `buffer_bytes` (a header section, a chunk-size
//     line with its extensions, or a trailer section must fit in it), the body at most
//     `body_bytes`, and the bytes on the wire per request, chunk framing and trailers included,
//     at most `request_bytes()`: so a connection holds at most buffer + body bytes, whatever it
//     sends;
//   - exceptions: whatever the parser throws (an over-long trailer field) becomes a refusal;
//   - RFC 9112: HTTP/1.1 without exactly one Host, or HTTP/1.0 with more than one: 400; a
//     Transfer-Encoding other than "chunked": 501; Transfer-Encoding on HTTP/1.0: 400;
//   - trailers: checked for size like the rest, then dropped, so that nothing arriving after the
//     header's checks (a second Host, credentials) ever reaches the request.
// Pipelined requests are kept: after a complete request, next() starts on the bytes already here.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tumbled::http {

struct RequestLimits {
  std::uint32_t header_bytes = 8 * 1024;  // request line and headers
  std::uint64_t body_bytes = 1024;        // decoded body
  std::size_t buffer_bytes = 16 * 1024;   // bytes held unparsed at once; > header_bytes
  // Wire bytes of one request: headers, body, and room for chunk framing and trailers.
  std::uint64_t request_bytes() const { return header_bytes + body_bytes + body_bytes / 8 + 16384; }
};

class RequestReader {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  enum class Progress { need_more, complete, refused };
  struct Refusal {
    unsigned status = 400;
    std::string reason;  // one line for the client and the counters, e.g. "request too large"
  };

  explicit RequestReader(RequestLimits limits);

  // Where the next read goes: at most `max` bytes, never empty while need_more.
  boost::asio::mutable_buffer receive_space(std::size_t max = 16 * 1024);
  Progress received(std::size_t bytes);
  Progress parse();  // parses what is buffered (after next(): a pipelined request)

  bool header_done() const { return parser_->is_header_done(); }
  // Some bytes of a request that is not complete yet have arrived.
  bool mid_request() const {
    return progress_ == Progress::need_more && wire_bytes_ + buffer_.size() > 0;
  }
  Request& request() { return parser_->get(); }  // when complete
  const Refusal& refusal() const { return refusal_; }
  // After a complete request: starts on the next one, keeping bytes that already arrived.
  void next();

 private:
  Progress refuse(unsigned status, std::string reason);
  std::optional<Refusal> check_header() const;
  void discard_trailers();

  RequestLimits limits_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::uint64_t wire_bytes_ = 0;  // of the current request, counted as they are parsed
  bool header_checked_ = false;
  // The header's fields as checked, kept for a chunked request: trailers must not add to them.
  std::vector<std::pair<std::string, std::string>> header_fields_;
  Progress progress_ = Progress::need_more;
  Refusal refusal_;
};

}  // namespace tumbled::http
