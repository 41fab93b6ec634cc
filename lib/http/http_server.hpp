// HttpServer: the daemon's health and metrics endpoints, HTTP/1.1 on `http.listen`.
//
//   GET /metrics  the pipelines' counters in the Prometheus text format (endpoints.hpp)
//   GET /health   200 "ok": the process is alive and its event loop turns (answering proves it)
//   GET /ready    200 when every pipeline accepts connections and its last write to InfluxDB
//                 succeeded; a pipeline that has not written since the start is asked instead
//                 with GET /ping to its InfluxDB (same URL and request_timeout as its writes).
//                 Otherwise 503. The body has one line per pipeline: "NAME: ready" or
//                 "NAME: not ready: REASON".
// Any other path is 404, any other method 405. Bounded like the TCP source: at most 64
// connections (more are accepted and closed at once), requests of at most 8 KiB of headers and
// 1 KiB of body (431, 413), 10 s to receive a request or send an answer (the timeout lives on the
// stream); keep-alive otherwise. listen() throws std::runtime_error naming the address when it
// cannot bind (startup); stop() closes the listener and every connection. Runs on the daemon's
// one executor and reads the pipelines' stats there: no locks. The pipelines must outlive it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/verb.hpp>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "config/config.hpp"

namespace spdlog {
class logger;
}

namespace tumbled::pipeline {
class Pipeline;
}

namespace tumbled::http {

class HttpServer {
 public:
  HttpServer(boost::asio::any_io_executor executor, config::Endpoint listen,
             std::vector<const pipeline::Pipeline*> pipelines, std::shared_ptr<spdlog::logger> log);

  void listen();
  config::Endpoint local_endpoint() const;
  boost::asio::awaitable<void> run();  // the accept loop; ends after stop()
  void stop();

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
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unordered_set<boost::asio::ip::tcp::socket*> connections_;
  std::uint64_t refused_ = 0;
  bool stopped_ = false;
};

}  // namespace tumbled::http
