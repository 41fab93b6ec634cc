// HttpServer: the daemon's health and metrics endpoints, HTTP/1.1 on `http.listen`.
//
//   GET /metrics  the pipelines' counters, then the server's own, in the Prometheus text format
//   GET /health   200 "ok": the process is alive and its event loop turns (answering proves it)
//   GET /ready    200 when every pipeline accepts connections and its last write to InfluxDB
//                 succeeded; a pipeline that has not written since the start is asked instead
//                 with GET /ping to its InfluxDB (the sink's own connection code: same URL, TLS
//                 settings and request_timeout as its writes). Otherwise 503. The body has one
//                 line per pipeline: "NAME: ready" or "NAME: not ready: REASON".
// Any other path is 404, any other method 405.
//
// No client can crash, bloat or hold it (the defaults below are the limits):
//   - requests are read by RequestReader (request_reader.hpp): 8 KiB of headers, 1 KiB of body,
//     16 KiB held unparsed, every byte of a request on the wire counted; anything over is
//     answered 413/431, malformed requests 400, unknown transfer codings 501, and the connection
//     closes. A connection so holds at most ~17 KiB, the server at most 64 of them (~1.1 MiB);
//   - a request's headers must arrive within 5 s of the server starting to wait for it (idle
//     keep-alive time included: slowloris), the whole request and its answer within 10 s;
//   - at 64 connections a newcomer closes the connection idle longest (not one being answered),
//     so idle connections cannot keep /health from answering; if all are busy it is closed;
//   - an exception on a connection's path ends that connection only, counted and logged at most
//     every 30 s.
// listen() throws std::runtime_error naming the address when it cannot bind (startup); stop()
// closes the listener and every connection. Runs on the daemon's one executor and reads the
// pipelines' stats there: no locks. The pipelines must outlive the requests that read them;
// set_pipelines() replaces them after a configuration reload.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/verb.hpp>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "http/endpoints.hpp"
#include "http/request_reader.hpp"
#include "net/listener.hpp"

namespace spdlog {
class logger;
}

namespace tumbled::pipeline {
class Pipeline;
}

namespace tumbled::http {

struct HttpServerLimits {
  RequestLimits request;
  std::size_t max_connections = 64;
  std::chrono::milliseconds header_timeout{5'000};
  std::chrono::milliseconds request_timeout{10'000};
};

class HttpServer {
 public:
  HttpServer(boost::asio::any_io_executor executor, config::Endpoint listen,
             std::vector<const pipeline::Pipeline*> pipelines, std::shared_ptr<spdlog::logger> log,
             HttpServerLimits limits = {});

  void listen();
  config::Endpoint local_endpoint() const;
  // The pipelines /metrics and /ready report on, from the next request on (after a reload).
  void set_pipelines(std::vector<const pipeline::Pipeline*> pipelines) {
    pipelines_ = std::move(pipelines);
  }
  boost::asio::awaitable<void> run();  // the accept loop; ends after stop()
  void stop();
  HttpServerStats stats() const;

 private:
  struct Answer {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };
  boost::asio::awaitable<Answer> answer(boost::beast::http::verb method, std::string_view target);
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<Answer> ready();

  config::Endpoint listen_;
  std::vector<const pipeline::Pipeline*> pipelines_;
  std::shared_ptr<spdlog::logger> log_;
  HttpServerLimits limits_;
  boost::asio::ip::tcp::acceptor acceptor_;
  net::ConnectionTable connections_;
  HttpServerStats stats_;
  bool stopped_ = false;
};

}  // namespace tumbled::http
