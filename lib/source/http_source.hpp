// HttpSource: InfluxDB's write API as a pipeline's source, so that any InfluxDB client (Telegraf,
// the client libraries, curl) can send to tumbled, and learn when what it sent is safe.
//
//   POST /write?precision=…          (v1; db, rp, u, p accepted, db and rp ignored)
//   POST /api/v2/write?precision=…   (v2; org, bucket accepted and ignored)
//   GET|HEAD /ping                   204, for clients that ping first
// Routing, credentials and error bodies are the pure core in influx_write_api.hpp.
//
// A request is read whole (bounded by max_body_bytes after gzip decompression, 16 KiB of
// headers), then its body is decoded by a decoder of the request's precision: the good lines go
// into the pipeline's windows, bad ones are counted by reason. Then the source waits on the
// pipeline's Commit, which returns once everything handed over so far is in the state store with
// its WAL synced: requests decoded together share that one synced write (group commit). Only
// then is the answer sent: 204, or 400 "partial write: <first bad line> dropped=N" when some
// lines were refused (the good ones are kept, as InfluxDB 1.x does). So a 204 means on disk: a
// kill -9 right after it loses nothing of the request. A request whose connection ends before
// its answer (a kill, a client timeout) may or may not have been counted, as with InfluxDB.
//
// Refusals, each counted by status: 401 without the token (auth.token), checked as soon as the
// headers are in, before any body is read; 404/405 for other paths and methods; 413 for a body
// too large, 415 for a content coding other than gzip; 503 with Retry-After while the pipeline
// is paused (buffer full with when_full: block, or checkpoints failing): nothing of such a
// request is taken. With tls set the listener speaks only HTTPS (TLS 1.2+); a failed handshake
// (plain HTTP included) closes the connection and is counted. Slow clients: headers (and the TLS
// handshake) must arrive within 10 s, the whole request within 60 s. At max_connections a
// newcomer closes the connection idle longest, or is closed itself if all are busy.
// stop() closes the listener and every connection not waiting for its commit; those answer and
// close after the pipeline's final checkpoint. Runs on one executor; not thread-safe.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "net/listener.hpp"
#include "source/decoder.hpp"
#include "source/influx_write_api.hpp"
#include "source/source.hpp"

namespace boost::asio::ssl {
class context;
}

namespace spdlog {
class logger;
}

namespace tumbled::source {

class HttpSource final : public Source {
 public:
  // Called with a request's body right after it was decoded (nothing in between): returns once
  // the body, or a checkpoint holding its lines, is in the state store, synced: true; false if
  // that cannot be promised (the store fails for long, or the pipeline stops before its final
  // checkpoint).
  using Commit = std::function<boost::asio::awaitable<bool>(std::string body)>;

  HttpSource(boost::asio::any_io_executor executor, config::HttpSourceConfig settings,
             DecoderFactory decoders, Commit commit, std::shared_ptr<spdlog::logger> log);
  ~HttpSource() override;

  void listen() override;  // also loads the TLS certificate and key (throws naming them)
  config::Endpoint local_endpoint() const override;
  boost::asio::awaitable<void> run() override;
  void stop() override;
  void pause() override { paused_ = true; }
  void resume() override { paused_ = false; }
  bool paused() const override { return paused_; }
  const SourceCounters& counters() const override { return counters_; }

 private:
  struct Answer;
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
  template <class Stream>
  boost::asio::awaitable<void> serve_requests(Stream& stream, net::ConnectionTable::Entry& entry,
                                              const std::string& peer);
  template <class Request>
  Answer check_header(const Request& request, const WriteRoute& route) const;
  template <class Request>
  boost::asio::awaitable<Answer> write(Request& request, const WriteRoute& route,
                                       const std::string& peer);
  bool admit();

  config::HttpSourceConfig settings_;
  DecoderFactory decoders_;
  Commit commit_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  net::ConnectionTable connections_;
  net::LogThrottle rejection_log_;
  net::LogThrottle connection_log_;
  SourceCounters counters_;
  bool paused_ = false;
  bool stopped_ = false;
};

}  // namespace tumbled::source
