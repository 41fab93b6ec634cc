// The InfluxDB sink: an HTTP/1.1 keep-alive client for `POST /write`, and the BatchWriter loop that
// drains a PointQueue through it.
//
// InfluxClient::write() sends one line-protocol body and reports the HTTP status, or status 0 with
// the error for a transport failure or a request that did not finish within request_timeout (the
// timeout lives on the stream and covers resolve, connect, write and read). Credentials travel in
// an Authorization header only, never in the URL or in logs: `Basic` for API v1 (POST /write),
// `Token` for API v2 (POST /api/v2/write). With an https:// URL the connection is TLS (OpenSSL):
// the server's certificate is checked against the system's CAs or tls.ca_file and must match the
// URL's host (sent as SNI), unless tls.insecure_skip_verify; the TLS handshake is part of the
// exchange, under the same request_timeout, and a failed one (a certificate that does not verify
// included) is a transport error like a refused connection. Bodies are gzip-compressed as
// sink.influxdb.gzip says (gzip.hpp).
//
// BatchWriter drains the queue through the client: it asks its SendPlan (send_plan.hpp) which
// batch is due and when, writes it, reports the outcome, and carries out the answer: acks the
// points, waits out a backoff, hands a batch to the dead-letter callback, logs what the plan says
// the operator should hear. Every decision (batch sizes while a refused batch is split, backoff
// with jitter and Retry-After, when to give up, what a failing dead-letter store means, how often
// to log an episode, the counters) lives in the plan, where it is tested without sockets; this
// shell owns only the client, the timers, the random numbers for jitter and the words of the
// logs. Runs on the pipeline's executor; every member is called from it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <variant>

#include "config/config.hpp"
#include "sink/gzip.hpp"
#include "sink/point_queue.hpp"
#include "sink/send_plan.hpp"

namespace spdlog {
class logger;
}

namespace tumbled::sink {

using Clock = std::function<TimeMs()>;  // wall clock, Unix epoch ms

// `POST` target for a write, URL-encoded, under the path prefix: API v1
// /write?db=..&rp=..&precision=ms, API v2 /api/v2/write?org=..&bucket=..&precision=ms.
std::string write_target(const config::InfluxSinkConfig& settings);
// Where a sink writes, for logs: "http://host:8086 db=telemetry rp=week",
// "https://host:8086/prefix org=acme bucket=telemetry". No credentials.
std::string describe_destination(const config::InfluxSinkConfig& settings);

class InfluxClient {
 public:
  // Throws std::runtime_error if TLS cannot be set up, e.g. tls.ca_file holds no PEM certificate.
  InfluxClient(boost::asio::any_io_executor executor, const config::InfluxSinkConfig& settings);
  boost::asio::awaitable<WriteResult> write(const std::string& body);
  // GET /ping on a connection of its own, closed afterwards (readiness checks): the status, or
  // status 0 with the transport error, within request_timeout. Same TLS and proxy path as writes.
  boost::asio::awaitable<WriteResult> ping();
  void close();  // drops the connection; an exchange in flight ends with an error

 private:
  using PlainStream = boost::beast::tcp_stream;
  using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  boost::asio::awaitable<WriteResult> exchange(const std::string& body, bool gzipped);
  // One request and its answer on the connected stream, plain or TLS.
  boost::asio::awaitable<WriteResult> send(
      const boost::beast::http::request<boost::beast::http::string_body>& request,
      boost::beast::http::response<boost::beast::http::string_body>& response);
  boost::asio::awaitable<std::optional<WriteResult>> connect();  // the failure, if any
  PlainStream& tcp_layer();

  const config::InfluxSinkConfig& settings_;
  boost::asio::any_io_executor executor_;
  std::string target_;
  std::string authorization_;  // "Basic ..." (v1), "Token ..." (v2), or empty
  std::unique_ptr<boost::asio::ssl::context> tls_context_;  // https only
  // A fresh stream per connection: an OpenSSL session cannot be reused after a close.
  std::variant<std::monostate, PlainStream, TlsStream> stream_;
  std::string tls_verify_error_;          // why the certificate check of the last handshake failed
  std::unique_ptr<GzipCompressor> gzip_;  // made on first use
  bool server_is_local_ = false;          // loopback: gzip: auto never compresses
  boost::beast::flat_buffer buffer_;
  bool connected_ = false;
};

class BatchWriter {
 public:
  // Called with a batch that will never be retried, before it leaves the queue. Returns false if
  // the batch could not be stored; the writer then keeps it and tries again after a backoff.
  using DeadLetterFn = std::function<bool(const PointQueue::Batch&, const std::string& error)>;

  BatchWriter(boost::asio::any_io_executor executor, const config::InfluxSinkConfig& settings,
              PointQueue& queue, DeadLetterFn dead_letter, std::shared_ptr<spdlog::logger> log,
              Clock clock);

  boost::asio::awaitable<void> run();
  void wake();       // more points became sendable
  void flush_all();  // from now on every sendable point is due at once (shutdown)
  void stop();       // end run() as soon as possible
  // Called after points left the queue (written or dead-lettered), e.g. to lift backpressure.
  void on_progress(std::function<void()> callback) { on_progress_ = std::move(callback); }
  // Called with each delay the writer is about to wait before its next attempt (backoff,
  // Retry-After, a dead letter that could not be stored), so that tests can check the delays it
  // chose without timing them.
  void on_pause(std::function<void(std::chrono::milliseconds)> callback) {
    on_pause_ = std::move(callback);
  }
  const SinkCounters& counters() const { return plan_.counters(); }
  bool in_retry_episode() const { return plan_.in_retry_episode(); }

 private:
  boost::asio::awaitable<void> send_batch(const PointQueue::Batch& batch);
  // Logs what `step` says the operator should hear; `waiting`: the queue's size before the step.
  void report(const SendPlan::Step& step, const PointQueue::Batch& batch, std::size_t waiting);
  boost::asio::awaitable<void> pause(std::chrono::milliseconds delay);

  const config::InfluxSinkConfig& settings_;
  PointQueue& queue_;
  DeadLetterFn dead_letter_;
  std::function<void()> on_progress_;
  std::function<void(std::chrono::milliseconds)> on_pause_;
  std::shared_ptr<spdlog::logger> log_;
  Clock clock_;
  InfluxClient client_;
  SendPlan plan_;
  boost::asio::steady_timer wake_timer_;     // waits for a batch to become due
  boost::asio::steady_timer backoff_timer_;  // waits between attempts; only stop() cuts it short
  bool stopped_ = false;
  std::mt19937_64 random_{std::random_device{}()};
  std::uniform_real_distribution<double> jitter_{0.0, 1.0};
};

}  // namespace tumbled::sink
