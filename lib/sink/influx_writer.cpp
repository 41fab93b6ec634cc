#include "sink/influx_writer.hpp"

#include <spdlog/spdlog.h>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <chrono>
#include <stdexcept>

#include "sink/retry_policy.hpp"

namespace tumbled::sink {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Bound on waiting for the server's close_notify when it ends a TLS connection.
constexpr std::chrono::milliseconds kTlsShutdownTimeout{1000};

// A query parameter value: everything but RFC 3986's unreserved characters %-encoded, so that
// '&', '=', '#' and '+' (a space to InfluxDB's Go server) stay data.
std::string query_value(const std::string& text) {
  return boost::urls::encode(text, boost::urls::unreserved_chars);
}

std::string basic_authorization(const std::string& user, const std::string& password) {
  if (user.empty()) return {};  // username "" means no authentication, whatever the password
  const std::string plain = user + ":" + password;
  std::string encoded(beast::detail::base64::encoded_size(plain.size()), '\0');
  encoded.resize(beast::detail::base64::encode(encoded.data(), plain.data(), plain.size()));
  return "Basic " + encoded;
}

// https only: TLS 1.2 or later, the system's CAs or tls.ca_file.
std::unique_ptr<ssl::context> make_tls_context(const config::InfluxSinkConfig& settings) {
  if (settings.scheme != "https") return nullptr;
  auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  beast::error_code error;
  if (settings.tls_ca_file.empty()) {
    context->set_default_verify_paths(error);
    if (error)
      throw std::runtime_error("cannot use the system's CA certificates: " + error.message());
  } else {
    context->load_verify_file(settings.tls_ca_file, error);
    if (error) {
      throw std::runtime_error(
          "sink.influxdb.tls.ca_file \"" + settings.tls_ca_file +
          "\": cannot load CA certificates from it (expected PEM): " + error.message());
    }
  }
  return context;
}

// Sends `request` and reads the answer into `response`: the WriteResult of a response, or of the
// transport error that prevented one. The same for a plain and a TLS stream.
template <class Stream>
asio::awaitable<WriteResult> round_trip(Stream& stream, beast::flat_buffer& buffer,
                                        const http::request<http::string_body>& request,
                                        http::response<http::string_body>& response) {
  auto [write_error, written] = co_await http::async_write(stream, request, use_tuple);
  if (write_error) {
    co_return WriteResult{0, "send request: " + write_error.message(), std::nullopt,
                          write_error == beast::error::timeout};
  }
  auto [read_error, read] = co_await http::async_read(stream, buffer, response, use_tuple);
  if (read_error) {
    const bool timed_out = read_error == beast::error::timeout;
    co_return WriteResult{
        0,
        timed_out ? "no response within request_timeout" : "read response: " + read_error.message(),
        std::nullopt, timed_out};
  }
  std::string error = response.body().substr(0, 300);
  while (!error.empty() && (error.back() == '\n' || error.back() == '\r')) error.pop_back();
  const auto retry_after = response.find(http::field::retry_after);
  co_return WriteResult{
      static_cast<int>(response.result_int()), std::move(error),
      retry_after == response.end()
          ? std::nullopt
          : parse_retry_after({retry_after->value().data(), retry_after->value().size()}),
      false};
}

}  // namespace

std::string write_target(const config::InfluxSinkConfig& settings) {
  if (settings.api == "v2") {
    return settings.path_prefix + "/api/v2/write?org=" + query_value(settings.org) +
           "&bucket=" + query_value(settings.bucket) + "&precision=ms";
  }
  std::string target = settings.path_prefix + "/write?db=" + query_value(settings.database);
  if (!settings.retention_policy.empty()) target += "&rp=" + query_value(settings.retention_policy);
  return target + "&precision=ms";
}

std::string describe_destination(const config::InfluxSinkConfig& settings) {
  std::string text = settings.scheme + "://" + settings.endpoint.to_string() + settings.path_prefix;
  if (settings.api == "v2") return text + " org=" + settings.org + " bucket=" + settings.bucket;
  text += " db=" + settings.database;
  if (!settings.retention_policy.empty()) text += " rp=" + settings.retention_policy;
  return text;
}

InfluxClient::InfluxClient(asio::any_io_executor executor, const config::InfluxSinkConfig& settings)
    : settings_(settings),
      executor_(std::move(executor)),
      target_(write_target(settings)),
      authorization_(settings.api == "v2"
                         ? (settings.token.empty() ? std::string() : "Token " + settings.token)
                         : basic_authorization(settings.username, settings.password)),
      tls_context_(make_tls_context(settings)),
      server_is_local_(config::is_loopback_host(settings.endpoint.host)) {}

InfluxClient::PlainStream& InfluxClient::tcp_layer() {
  if (auto* tls = std::get_if<TlsStream>(&stream_)) return beast::get_lowest_layer(*tls);
  if (std::holds_alternative<std::monostate>(stream_)) stream_.emplace<PlainStream>(executor_);
  return std::get<PlainStream>(stream_);
}

void InfluxClient::close() {
  // Abrupt on purpose: after an error or during stop() the TLS state is unknown or there is no
  // time for close_notify; a connection the server ends is shut down gracefully in exchange().
  beast::error_code ignored;
  PlainStream& tcp = tcp_layer();
  tcp.socket().shutdown(tcp::socket::shutdown_both, ignored);
  tcp.close();
  connected_ = false;
  buffer_.clear();
}

asio::awaitable<WriteResult> InfluxClient::write(const std::string& body) {
  // Compressed once for both attempts below.
  const bool gzipped = should_gzip(settings_.gzip, body.size(), server_is_local_);
  if (gzipped && !gzip_) gzip_ = std::make_unique<GzipCompressor>();
  const std::string compressed = gzipped ? gzip_->compress(body) : std::string();
  const std::string& payload = gzipped ? compressed : body;

  const bool reused = connected_;
  WriteResult result = co_await exchange(payload, gzipped);
  // close() during the exchange (stop()) leaves connected_ false: then there is nothing to re-send.
  const bool stale = result.status == 0 && reused && connected_ && !result.timed_out;
  if (result.status == 0) close();  // never reuse a connection in an unknown state
  if (stale) {
    // Servers and proxies close idle keep-alive connections; that is no reason to back off.
    // Writes are idempotent, so sending again on a new connection at once is safe.
    result = co_await exchange(payload, gzipped);
    if (result.status == 0) close();
  }
  co_return result;
}

asio::awaitable<WriteResult> InfluxClient::send(const http::request<http::string_body>& request,
                                                http::response<http::string_body>& response) {
  if (auto* tls = std::get_if<TlsStream>(&stream_)) {
    co_return co_await round_trip(*tls, buffer_, request, response);
  }
  co_return co_await round_trip(std::get<PlainStream>(stream_), buffer_, request, response);
}

asio::awaitable<WriteResult> InfluxClient::ping() {
  if (auto failure = co_await connect()) {
    close();
    co_return std::move(*failure);
  }
  http::request<http::string_body> request{http::verb::get, settings_.path_prefix + "/ping", 11};
  request.set(http::field::host, settings_.endpoint.to_string());
  request.set(http::field::user_agent, "tumbled");
  request.keep_alive(false);
  request.prepare_payload();
  http::response<http::string_body> response;
  WriteResult result = co_await send(request, response);
  close();
  co_return result;
}

asio::awaitable<std::optional<WriteResult>> InfluxClient::connect() {
  const auto& host = settings_.endpoint.host;
  // A fresh stream: a TLS session cannot be reused once closed, and a plain socket is reopened.
  if (tls_context_) {
    stream_.emplace<TlsStream>(executor_, *tls_context_);
  } else {
    stream_.emplace<PlainStream>(executor_);
  }
  PlainStream& tcp = tcp_layer();
  tcp.expires_after(settings_.request_timeout);
  tcp::resolver resolver(executor_);
  auto [resolve_error, endpoints] =
      co_await resolver.async_resolve(host, std::to_string(settings_.endpoint.port), use_tuple);
  if (resolve_error) co_return WriteResult{0, "resolve " + host + ": " + resolve_error.message()};
  auto [connect_error, endpoint] = co_await tcp.async_connect(endpoints, use_tuple);
  if (connect_error) {
    co_return WriteResult{
        0, "connect " + settings_.endpoint.to_string() + ": " + connect_error.message(),
        std::nullopt, connect_error == beast::error::timeout};
  }

  if (auto* tls = std::get_if<TlsStream>(&stream_)) {
    beast::error_code ignored;
    const bool ip_literal = (asio::ip::make_address(host, ignored), !ignored);
    // SNI carries host names only (RFC 6066): a server with several certificates picks by it.
    if (!ip_literal && !SSL_set_tlsext_host_name(tls->native_handle(), host.c_str())) {
      co_return WriteResult{0, "TLS: cannot set the server name " + host};
    }
    tls_verify_error_.clear();
    if (settings_.tls_insecure_skip_verify) {
      tls->set_verify_mode(ssl::verify_none);
    } else {
      tls->set_verify_mode(ssl::verify_peer);
      tls->set_verify_callback([this, matches = ssl::host_name_verification(host), host](
                                   bool preverified, ssl::verify_context& context) {
        const bool ok = matches(preverified, context);
        if (!ok && tls_verify_error_.empty()) {
          X509_STORE_CTX* store = context.native_handle();
          tls_verify_error_ = preverified
                                  ? "certificate is not valid for " + host
                                  : X509_verify_cert_error_string(X509_STORE_CTX_get_error(store));
        }
        return ok;
      });
    }
    auto [handshake_error] = co_await tls->async_handshake(ssl::stream_base::client, use_tuple);
    if (handshake_error) {
      const bool timed_out = handshake_error == beast::error::timeout;
      std::string why = timed_out ? "no handshake within request_timeout"
                        : tls_verify_error_.empty()
                            ? handshake_error.message()
                            : "certificate verify failed: " + tls_verify_error_;
      co_return WriteResult{0, "TLS handshake with " + settings_.endpoint.to_string() + ": " + why,
                            std::nullopt, timed_out};
    }
  }
  connected_ = true;
  co_return std::nullopt;
}

asio::awaitable<WriteResult> InfluxClient::exchange(const std::string& body, bool gzipped) {
  if (!connected_) {
    if (auto failure = co_await connect()) co_return std::move(*failure);
  } else {
    tcp_layer().expires_after(settings_.request_timeout);
  }

  http::request<http::string_body> request{http::verb::post, target_, 11};
  request.set(http::field::host, settings_.endpoint.to_string());
  request.set(http::field::user_agent, "tumbled");
  request.set(http::field::content_type, "text/plain; charset=utf-8");
  if (gzipped) request.set(http::field::content_encoding, "gzip");
  if (!authorization_.empty()) request.set(http::field::authorization, authorization_);
  request.keep_alive(true);
  request.body() = body;
  request.prepare_payload();
  http::response<http::string_body> response;
  WriteResult result = co_await send(request, response);
  if (result.status == 0 || response.keep_alive()) co_return result;

  // The server ends the connection: say goodbye properly, but never wait long for its reply.
  if (auto* tls = std::get_if<TlsStream>(&stream_)) {
    tcp_layer().expires_after(
        std::min<std::chrono::milliseconds>(settings_.request_timeout, kTlsShutdownTimeout));
    co_await tls->async_shutdown(use_tuple);  // its error changes nothing
  }
  close();
  co_return result;
}

BatchWriter::BatchWriter(asio::any_io_executor executor, const config::InfluxSinkConfig& settings,
                         PointQueue& queue, DeadLetterFn dead_letter,
                         std::shared_ptr<spdlog::logger> log, Clock clock)
    : settings_(settings),
      queue_(queue),
      dead_letter_(std::move(dead_letter)),
      log_(std::move(log)),
      clock_(std::move(clock)),
      client_(executor, settings),
      plan_(settings),
      wake_timer_(executor),
      backoff_timer_(executor) {}

void BatchWriter::wake() {
  wake_timer_.cancel();
}

void BatchWriter::flush_all() {
  plan_.flush_all();
  wake_timer_.cancel();
}

void BatchWriter::stop() {
  stopped_ = true;
  wake_timer_.cancel();
  backoff_timer_.cancel();
  client_.close();
}

asio::awaitable<void> BatchWriter::run() {
  while (!stopped_) {
    const TimeMs now = clock_();
    const SendPlan::Next next = plan_.next_send(queue_, now);
    if (next.limit == 0) {
      // Nothing due yet: sleep until it is, or until wake() says new points arrived.
      wake_timer_.expires_after(next.due_at ? std::chrono::milliseconds(*next.due_at - now)
                                            : std::chrono::milliseconds(std::chrono::hours(24)));
      co_await wake_timer_.async_wait(use_tuple);
      continue;
    }
    co_await send_batch(queue_.front_batch(next.limit));
  }
}

asio::awaitable<void> BatchWriter::send_batch(const PointQueue::Batch& batch) {
  using Action = SendPlan::Step::Action;
  const auto began = std::chrono::steady_clock::now();
  const WriteResult result = co_await client_.write(batch.body);
  if (stopped_) co_return;  // the answer may be lost; the points stay queued for the next start
  plan_.observe_write_seconds(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  const std::size_t waiting = queue_.size();
  SendPlan::Step step = plan_.on_write(batch, result, clock_(), jitter_(random_));
  if (step.action == Action::dead_letter) {
    const bool stored = dead_letter_(batch, step.reason);
    step = plan_.on_dead_letter(batch, stored, clock_());
  }
  report(step, batch, waiting);
  switch (step.action) {
    case Action::ack:
    case Action::drop:
      queue_.ack_through(batch.last_seq);
      if (on_progress_) on_progress_();
      break;
    case Action::retry:
    case Action::keep: co_await pause(step.delay); break;
    case Action::split:        // the next_send() pieces are due at once
    case Action::dead_letter:  // answered by on_dead_letter() above
      break;
  }
}

void BatchWriter::report(const SendPlan::Step& step, const PointQueue::Batch& batch,
                         std::size_t waiting) {
  if (step.action == SendPlan::Step::Action::keep) {
    log_->error(
        "InfluxDB refused a batch of {} points ({}) and it could not be stored as a dead "
        "letter; keeping it queued",
        batch.points, step.reason);
  }
  if (step.log_dead_letter) {
    log_->error(
        "InfluxDB refused {} points for good: {}; moved to dead letters ({} points "
        "dead-lettered so far; list them with `tumbled deadletter list`)",
        batch.points, step.reason, plan_.counters().points_dead_lettered);
  }
  if (step.recovered_after > 0) {
    log_->info("InfluxDB write recovered after {} failed attempts; {} points still waiting",
               step.recovered_after, waiting - batch.points);
  }
  if (step.log_failing == SendPlan::Failing::started) {
    log_->warn("InfluxDB write of {} points failed: {}; retrying with backoff, {} points waiting",
               batch.points, step.failure, waiting);
  } else if (step.log_failing == SendPlan::Failing::still) {
    log_->warn(
        "InfluxDB write still failing after {} attempts: {}; {} points waiting, next try in {}",
        step.failures, step.failure, waiting, config::format_duration(step.delay));
  }
  if (step.log_split_started) {
    log_->warn(
        "InfluxDB refused a batch of {} points: {}; sending it in smaller pieces to "
        "isolate the points it refuses",
        batch.points, step.failure);
  }
  if (step.log_split_done) {
    if (settings_.max_batch_size > settings_.batch_size) {
      log_->info(
          "the refused batch has been sent in pieces; back to batches of {} (up to {} while "
          "more wait)",
          settings_.batch_size, settings_.max_batch_size);
    } else {
      log_->info("the refused batch has been sent in pieces; back to batches of {}",
                 settings_.batch_size);
    }
  }
}

asio::awaitable<void> BatchWriter::pause(std::chrono::milliseconds delay) {
  if (on_pause_) on_pause_(delay);
  backoff_timer_.expires_after(delay);
  co_await backoff_timer_.async_wait(use_tuple);
}

}  // namespace tumbled::sink
