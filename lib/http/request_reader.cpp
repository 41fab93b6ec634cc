#include "http/request_reader.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <exception>
#include <iterator>

namespace tumbled::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;

RequestReader::RequestReader(RequestLimits limits) : limits_(limits), buffer_(limits.buffer_bytes) {
  next();
}

void RequestReader::next() {
  parser_.emplace();
  parser_->header_limit(limits_.header_bytes);
  parser_->body_limit(limits_.body_bytes);
  wire_bytes_ = 0;
  header_checked_ = false;
  progress_ = Progress::need_more;
}

boost::asio::mutable_buffer RequestReader::receive_space(std::size_t max) {
  const std::size_t room = limits_.buffer_bytes - buffer_.size();
  return buffer_.prepare(std::min(max, room));
}

RequestReader::Progress RequestReader::received(std::size_t bytes) {
  buffer_.commit(bytes);
  return parse();
}

RequestReader::Progress RequestReader::refuse(unsigned status, std::string reason) {
  refusal_ = {status, std::move(reason)};
  return progress_ = Progress::refused;
}

RequestReader::Progress RequestReader::parse() {
  while (progress_ == Progress::need_more && buffer_.size() > 0) {
    // Beast 1.81 asserts (debug builds) that a final chunk it is waiting on comes back with at
    // least 5 bytes ("0\r\n" and one more byte can be 4). Nothing is lost by waiting: the bytes
    // of a chunked body still to come always include the 5 of "0\r\n\r\n", unconsumed.
    if (header_checked_ && parser_->chunked() && buffer_.size() < 5) break;
    beast::error_code ec;
    std::size_t used = 0;
    try {
      used = parser_->put(buffer_.data(), ec);
    } catch (const std::length_error&) {
      // basic_fields refuses a field over 64 KiB by throwing: a trailer can be that long.
      return refuse(431, "header or trailer field too large");
    } catch (const std::exception& e) {
      return refuse(400, std::string("malformed request: ") + e.what());
    }
    buffer_.consume(used);
    wire_bytes_ += used;
    if (wire_bytes_ + buffer_.size() > limits_.request_bytes()) {
      return refuse(413, "request too large");
    }
    if (ec == bhttp::error::need_more) {
      if (buffer_.size() < limits_.buffer_bytes) return progress_;
      return header_done() ? refuse(431, "chunk size line or trailers too large")
                           : refuse(431, "request headers too large");
    }
    if (ec == bhttp::error::header_limit) return refuse(431, "request headers too large");
    if (ec == bhttp::error::body_limit) return refuse(413, "request body too large");
    if (ec) return refuse(400, "bad request: " + ec.message());
    if (header_done() && !header_checked_) {
      header_checked_ = true;
      if (auto refusal = check_header()) return refuse(refusal->status, refusal->reason);
      header_fields_.clear();
      if (parser_->chunked()) {  // only a chunked body can bring trailers
        for (const auto& field : parser_->get()) {
          header_fields_.emplace_back(field.name_string(), field.value());
        }
      }
      parser_->eager(true);  // the body in as few put() calls as the bytes allow
    }
    if (parser_->is_done()) {
      discard_trailers();
      return progress_ = Progress::complete;
    }
  }
  return progress_;
}

void RequestReader::discard_trailers() {
  // Beast adds a chunked body's trailer fields to the header's (beside any of the same name).
  // They arrive after the header was checked, so they could add a second Host, or credentials,
  // unchecked: put the header back as it was checked (RFC 9110 6.5.1 lets a recipient discard
  // trailers it does not know).
  auto& fields = parser_->get();
  if (!parser_->chunked() ||
      static_cast<std::size_t>(std::distance(fields.begin(), fields.end())) ==
          header_fields_.size()) {
    return;
  }
  fields.clear();
  for (const auto& [name, value] : header_fields_) fields.insert(name, value);
}

std::optional<RequestReader::Refusal> RequestReader::check_header() const {
  const auto& request = parser_->get();
  const std::size_t hosts = request.count(bhttp::field::host);
  if (request.version() >= 11 && hosts != 1) {
    return Refusal{400, "an HTTP/1.1 request needs exactly one Host header"};
  }
  if (hosts > 1) return Refusal{400, "more than one Host header"};
  std::size_t codings = 0, chunked = 0;
  const auto [first, last] = request.equal_range(bhttp::field::transfer_encoding);
  for (auto field = first; field != last; ++field) {
    for (const auto coding : bhttp::token_list{field->value()}) {
      ++codings;
      if (!beast::iequals(coding, "chunked")) {
        return Refusal{501, "transfer coding \"" + std::string(coding) + "\" not implemented"};
      }
      ++chunked;
    }
    if (field->value().empty()) return Refusal{400, "empty Transfer-Encoding"};
  }
  if (codings > 0 && request.version() < 11) {
    return Refusal{400, "Transfer-Encoding in an HTTP/1.0 request"};
  }
  if (chunked > 1) return Refusal{400, "chunked applied more than once"};
  return std::nullopt;
}

}  // namespace tumbled::http
