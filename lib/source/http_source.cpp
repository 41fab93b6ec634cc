#include "source/http_source.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <optional>
#include <tuple>

#include "http/request_reader.hpp"
#include "sink/gzip.hpp"
#include "source/influx_write_api.hpp"

namespace tumbled::source {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Headers (and the TLS handshake) of a request, idle keep-alive time included: slowloris.
constexpr std::chrono::seconds kHeaderTimeout{10};
// The rest of a request once its headers are in, and then its answer: a 25 MiB body at ~4 Mbit/s.
constexpr std::chrono::seconds kRequestTimeout{60};
constexpr std::uint32_t kHeaderBytes = 16 * 1024;
constexpr std::size_t kReadBytes = 64 * 1024;
// While the pipeline is paused: when a client should try again.
constexpr const char* kRetryAfterSeconds = "1";

}  // namespace

struct HttpSource::Answer {
  unsigned status = 0;  // 0: no answer yet (check_header: go on reading the body)
  std::string body;     // JSON ({"error": ...}) or empty
  std::string allow;    // 405: the Allow header
  bool close = false;   // the connection cannot carry another request (its body was not read)
};

HttpSource::HttpSource(asio::any_io_executor executor, config::HttpSourceConfig settings,
                       DecoderFactory decoders, Commit commit, std::shared_ptr<spdlog::logger> log)
    : settings_(std::move(settings)),
      decoders_(std::move(decoders)),
      commit_(std::move(commit)),
      log_(std::move(log)),
      acceptor_(std::move(executor)) {}

HttpSource::~HttpSource() = default;

void HttpSource::listen() {
  if (!settings_.tls_cert_file.empty()) {
    tls_ = std::make_unique<ssl::context>(ssl::context::tls_server);
    tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                      ssl::context::single_dh_use);
    boost::system::error_code ec;
    tls_->use_certificate_chain_file(settings_.tls_cert_file, ec);
    if (ec) {
      throw std::runtime_error("source.http.tls.cert_file " + settings_.tls_cert_file +
                               ": cannot use it as a certificate chain: " + ec.message());
    }
    tls_->use_private_key_file(settings_.tls_key_file, ssl::context::pem, ec);
    if (ec) {
      throw std::runtime_error("source.http.tls.key_file " + settings_.tls_key_file +
                               ": cannot use it as the private key: " + ec.message());
    }
    if (SSL_CTX_check_private_key(tls_->native_handle()) != 1) {
      throw std::runtime_error("source.http.tls.key_file " + settings_.tls_key_file +
                               " is not the key of the certificate in " + settings_.tls_cert_file);
    }
  }
  net::listen_on(acceptor_, *settings_.listen, "source.http.listen");
}

config::Endpoint HttpSource::local_endpoint() const {
  const auto endpoint = acceptor_.local_endpoint();
  return {endpoint.address().to_string(), endpoint.port()};
}

bool HttpSource::admit() {
  if (connections_.size() < settings_.max_connections) {
    ++counters_.connections_accepted;
    return true;
  }
  if (connections_.evict_idlest(std::chrono::steady_clock::duration::zero())) {
    ++counters_.connections_accepted;
    ++counters_.connections_evicted;
    if (connection_log_.allow()) {
      log_->warn(
          "{} connections open on {} (source.http.max_connections): closed the idlest to "
          "admit a new one ({} so far; logged at most every 30 s)",
          connections_.size() + 1, settings_.listen->to_string(), counters_.connections_evicted);
    }
    return true;
  }
  ++counters_.connections_refused;
  if (connection_log_.allow()) {
    log_->warn(
        "{} connections open on {} (source.http.max_connections), all busy: closed a new one "
        "({} so far; logged at most every 30 s)",
        connections_.size(), settings_.listen->to_string(), counters_.connections_refused);
  }
  return false;
}

asio::awaitable<void> HttpSource::run() {
  co_await net::accept_connections(
      acceptor_, stopped_, [this] { return admit(); },
      [this](tcp::socket socket) { return serve(std::move(socket)); }, log_,
      settings_.listen->to_string() + " (source.http)", counters_.connection_failures);
}

asio::awaitable<void> HttpSource::serve(tcp::socket socket) {
  if (stopped_) co_return;  // accepted just before stop()
  const std::string peer = net::peer_of(socket);
  beast::tcp_stream stream(std::move(socket));
  net::ConnectionTable::Entry& entry = connections_.add(stream.socket());
  ++counters_.connections_open;
  if (!tls_) {
    co_await serve_requests(stream, entry, peer);
  } else {
    beast::ssl_stream<beast::tcp_stream&> secure(stream, *tls_);
    stream.expires_after(kHeaderTimeout);
    const auto [ec] = co_await secure.async_handshake(ssl::stream_base::server, use_tuple);
    if (ec) {
      ++counters_.requests.tls_handshake_failures;
      log_->debug("TLS handshake with {} failed: {}", peer, ec.message());
    } else {
      co_await serve_requests(secure, entry, peer);
      stream.expires_after(std::chrono::seconds(1));
      co_await secure.async_shutdown(use_tuple);  // close_notify; the peer's answer is optional
    }
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  connections_.remove(stream.socket());
  --counters_.connections_open;
}

template <class Stream>
asio::awaitable<void> HttpSource::serve_requests(Stream& stream, net::ConnectionTable::Entry& entry,
                                                 const std::string& peer) {
  auto& timer = beast::get_lowest_layer(stream);
  http::RequestReader reader({kHeaderBytes, settings_.max_body_bytes, 2 * kHeaderBytes});
  for (;;) {
    timer.expires_after(kHeaderTimeout);
    auto progress = reader.parse();  // a pipelined request may be here already
    std::optional<std::chrono::steady_clock::time_point> headers_in;
    WriteRoute route;  // what the request asks for, once its headers are in
    Answer answer;
    beast::error_code read_error;
    while (true) {
      if (!headers_in && reader.header_done()) {
        headers_in = std::chrono::steady_clock::now();
        timer.expires_after(kRequestTimeout);
        if (progress != http::RequestReader::Progress::refused) {
          route = source::route(reader.request().method_string(), reader.request().target());
          answer = check_header(reader.request(), route);
          if (answer.status != 0) {
            // Answered from the headers: a body still to come cannot be skipped safely.
            answer.close = progress != http::RequestReader::Progress::complete;
            break;
          }
          if (progress == http::RequestReader::Progress::need_more &&
              beast::iequals(reader.request()[bhttp::field::expect], "100-continue")) {
            static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            std::tie(read_error, std::ignore) =
                co_await asio::async_write(stream, asio::buffer(kContinue), use_tuple);
            if (read_error) break;
          }
        }
      }
      if (progress != http::RequestReader::Progress::need_more) break;
      std::size_t n = 0;
      std::tie(read_error, n) =
          co_await stream.async_read_some(reader.receive_space(kReadBytes), use_tuple);
      if (read_error) break;
      entry.last_active = net::ConnectionTable::Clock::now();
      progress = reader.received(n);
    }
    if (read_error) {
      if (read_error == beast::error::timeout && reader.mid_request()) {
        ++counters_.requests.timed_out;
      }
      break;
    }
    if (answer.status == 0 && progress == http::RequestReader::Progress::refused) {
      const auto& refusal = reader.refusal();
      answer = {refusal.status, error_body(refusal.reason), "", true};
    } else if (answer.status == 0) {
      entry.busy = true;
      answer = co_await write(reader.request(), route, peer);
      entry.busy = false;
    }

    const unsigned version = answer.close ? 11 : reader.request().version();
    const bool keep_alive = !answer.close && !stopped_ && reader.request().keep_alive();
    bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(answer.status),
                                                 version};
    response.set(bhttp::field::server, "tumbled");
    response.set("X-Influxdb-Version", "tumbled");
    if (!answer.body.empty()) response.set(bhttp::field::content_type, "application/json");
    if (answer.status == 401) response.set(bhttp::field::www_authenticate, "Token");
    if (answer.status == 405) response.set(bhttp::field::allow, answer.allow);
    if (answer.status == 503) response.set(bhttp::field::retry_after, kRetryAfterSeconds);
    response.keep_alive(keep_alive);
    response.body() = std::move(answer.body);
    // RFC 9110 8.6: no Content-Length on a 204 (InfluxDB sends none either).
    if (answer.status != 204) response.prepare_payload();
    timer.expires_after(kRequestTimeout);
    const auto [write_error, written] = co_await bhttp::async_write(stream, response, use_tuple);
    ++counters_.requests.by_status[answer.status];
    if (headers_in) {
      counters_.requests.seconds.observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - *headers_in).count());
    }
    entry.last_active = net::ConnectionTable::Clock::now();
    if (write_error || !keep_alive) break;
    reader.next();
  }
}

// What can be answered from the headers alone, before any body is read: a ping, a path or method
// that is not a write, missing credentials, an unknown content coding. status 0: read the body.
template <class Request>
HttpSource::Answer HttpSource::check_header(const Request& request, const WriteRoute& route) const {
  switch (route.kind) {
    case WriteRoute::Kind::ping: return {204, "", "", false};
    case WriteRoute::Kind::not_found: return {404, error_body(route.error), "", false};
    case WriteRoute::Kind::method_not_allowed:
      return {405, error_body(route.error), route.allow, false};
    case WriteRoute::Kind::bad_request: return {400, error_body(route.error), "", false};
    case WriteRoute::Kind::write: break;
  }
  if (!authorized(settings_.token, request[bhttp::field::authorization], route.query_password)) {
    return {401, error_body("authorization failed"), "", false};
  }
  const auto coding = request[bhttp::field::content_encoding];
  if (!coding.empty() && !beast::iequals(coding, "gzip") && !beast::iequals(coding, "identity")) {
    return {
        415,
        error_body("unsupported Content-Encoding \"" + std::string(coding) + "\" (gzip or none)"),
        "", false};
  }
  return {};
}

template <class Request>
asio::awaitable<HttpSource::Answer> HttpSource::write(Request& request, const WriteRoute& route,
                                                      const std::string& peer) {
  if (paused_ || stopped_) {
    co_return Answer{503,
                     error_body(stopped_ ? "tumbled is shutting down; nothing of this request "
                                           "was taken, send it again"
                                         : "tumbled cannot take writes now (its buffer for "
                                           "InfluxDB is full, or its state store fails); "
                                           "nothing of this request was taken, send it again"),
                     "", false};
  }
  std::string body = std::move(request.body());
  counters_.requests.body_bytes += body.size();
  if (beast::iequals(request[bhttp::field::content_encoding], "gzip")) {
    bool too_large = false;
    auto plain = sink::gzip_decompress(body, settings_.max_body_bytes, &too_large);
    if (!plain) {
      co_return too_large ? Answer{413,
                                   error_body("the body inflates to more than "
                                              "source.http.max_body_bytes (" +
                                              std::to_string(settings_.max_body_bytes) + " bytes)"),
                                   "", false}
                          : Answer{400, error_body("the body is not valid gzip"), "", false};
    }
    body = std::move(*plain);
  }

  // The whole body in one go, as one chunk (a last line completed here rather than by finish()):
  // no checkpoint can fall between its lines, and the pipeline can log it as it was decoded.
  if (!body.empty() && body.back() != '\n') body.push_back('\n');
  const std::unique_ptr<Decoder> decoder =
      decoders_({route.precision, /*whole=*/true, std::nullopt});
  decoder->feed(body);
  decoder->finish();
  const std::string first_rejection = decoder->last_rejection();
  const LineCounters& lines = decoder->counters();
  counters_.lines += lines;

  if (lines.accepted > 0 && !co_await commit_(std::move(body))) {
    co_return Answer{500,
                     error_body("timeout: the lines were taken but are not on disk yet (the "
                                "state store fails); sending them again may count them twice"),
                     "", false};
  }
  if (lines.rejected() == 0) co_return Answer{204, "", "", false};
  if (rejection_log_.allow()) {
    log_->warn(
        "a write from {} kept {} lines and rejected {}, the first: {} (logged at most every "
        "30 s; all are counted)",
        peer, lines.accepted, lines.rejected(), first_rejection);
  }
  co_return Answer{400, error_body(partial_write_message(first_rejection, lines.rejected())), "",
                   false};
}

void HttpSource::stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  connections_.close_all(/*keep_busy=*/true);
}

}  // namespace tumbled::source
