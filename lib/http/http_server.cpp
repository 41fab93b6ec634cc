#include "http/http_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <tuple>

#include "pipeline/pipeline.hpp"
#include "sink/influx_writer.hpp"

namespace tumbled::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// GET /ping to one InfluxDB through the sink's client, on a connection of its own (the writer's
// is busy with its batches): "" when it answered 2xx, otherwise what went wrong.
asio::awaitable<std::string> ping(asio::any_io_executor executor,
                                  config::InfluxSinkConfig settings) {
  const std::string where = sink::describe_destination(settings);
  try {
    sink::InfluxClient client(executor, settings);
    const sink::WriteResult result = co_await client.ping();
    if (result.status == 0) co_return "ping " + where + ": " + result.error;
    if (result.status < 200 || result.status > 299) {
      co_return "ping " + where + " answered HTTP " + std::to_string(result.status);
    }
    co_return "";
  } catch (const std::exception& e) {
    co_return "ping " + where + ": " + e.what();
  }
}

}  // namespace

HttpServer::HttpServer(asio::any_io_executor executor, config::Endpoint listen,
                       std::vector<const pipeline::Pipeline*> pipelines,
                       std::shared_ptr<spdlog::logger> log, HttpServerLimits limits)
    : listen_(std::move(listen)),
      pipelines_(std::move(pipelines)),
      log_(std::move(log)),
      limits_(limits),
      acceptor_(std::move(executor)) {}

void HttpServer::listen() {
  net::listen_on(acceptor_, listen_, "http.listen");
}

config::Endpoint HttpServer::local_endpoint() const {
  const auto endpoint = acceptor_.local_endpoint();
  return {endpoint.address().to_string(), endpoint.port()};
}

HttpServerStats HttpServer::stats() const {
  HttpServerStats s = stats_;
  s.connections_open = connections_.size();
  return s;
}

asio::awaitable<void> HttpServer::run() {
  net::LogThrottle throttle;
  const auto warn = [&](const char* what, std::uint64_t count) {
    if (!throttle.allow()) return;
    log_->warn("{} HTTP connections open on {}: {} ({} so far; logged at most every 30 s)",
               limits_.max_connections, listen_.to_string(), what, count);
  };
  const auto admit = [&] {
    if (connections_.size() < limits_.max_connections) {
      ++stats_.connections_accepted;
      return true;
    }
    if (connections_.evict_idlest(std::chrono::steady_clock::duration::zero())) {
      ++stats_.connections_evicted;
      ++stats_.connections_accepted;
      warn("closed the idlest to admit a new one", stats_.connections_evicted);
      return true;
    }
    ++stats_.connections_refused;
    warn("all busy, closed a new one at once", stats_.connections_refused);
    return false;
  };
  co_await net::accept_connections(
      acceptor_, stopped_, admit, [this](tcp::socket socket) { return serve(std::move(socket)); },
      log_, listen_.to_string() + " (http)", stats_.connection_failures);
}

asio::awaitable<void> HttpServer::serve(tcp::socket socket) {
  if (stopped_) co_return;  // accepted just before stop()
  beast::tcp_stream stream(std::move(socket));
  net::ConnectionTable::Entry& connection = connections_.add(stream.socket());
  RequestReader reader(limits_.request);
  for (;;) {
    // The headers' deadline counts from now, idle keep-alive time included: a client that opens
    // a connection and trickles its headers cannot hold it for long.
    stream.expires_after(limits_.header_timeout);
    bool whole_request_deadline = false;
    auto progress = reader.parse();  // a pipelined request may be here already
    beast::error_code read_error;
    while (progress == RequestReader::Progress::need_more) {
      auto [ec, n] = co_await stream.async_read_some(reader.receive_space(), use_tuple);
      if (ec) {
        read_error = ec;
        break;
      }
      connection.last_active = net::ConnectionTable::Clock::now();
      progress = reader.received(n);
      if (!whole_request_deadline && reader.header_done()) {
        stream.expires_after(limits_.request_timeout);
        whole_request_deadline = true;
      }
    }
    if (read_error) {
      // The client left, was closed by stop() or eviction, or ran out of time. Only a request
      // cut short by its deadline is worth counting: idle keep-alive connections just end.
      if (read_error == beast::error::timeout && reader.mid_request()) {
        ++stats_.connections_timed_out;
      }
      break;
    }

    ++stats_.requests;
    Answer reply;
    bool keep_alive = false;
    unsigned version = 11;
    if (progress == RequestReader::Progress::refused) {
      // The rest of the connection's bytes cannot be trusted to frame a next request: close.
      ++stats_.requests_refused;
      const auto& refusal = reader.refusal();
      log_->debug("refused a request: {} {}", refusal.status, refusal.reason);
      reply = {refusal.status, "text/plain; charset=utf-8", refusal.reason + "\n"};
    } else {
      const auto& request = reader.request();
      version = request.version();
      keep_alive = request.keep_alive();
      connection.busy = true;
      reply = co_await answer(request.method(), request.target());
      connection.busy = false;
      if (stopped_) break;
    }
    bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(reply.status), version};
    response.set(bhttp::field::server, "tumbled");
    response.set(bhttp::field::content_type, reply.content_type);
    response.set(bhttp::field::cache_control, "no-store");
    if (reply.status == 405) response.set(bhttp::field::allow, "GET");
    response.keep_alive(keep_alive);
    response.body() = std::move(reply.body);
    response.prepare_payload();
    stream.expires_after(limits_.request_timeout);
    auto [write_error, written] = co_await bhttp::async_write(stream, response, use_tuple);
    connection.last_active = net::ConnectionTable::Clock::now();
    if (write_error || !keep_alive) break;
    reader.next();
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  connections_.remove(stream.socket());
}

asio::awaitable<HttpServer::Answer> HttpServer::answer(bhttp::verb method,
                                                       std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  const bool known = path == "/metrics" || path == "/health" || path == "/ready";
  if (!known) co_return Answer{404, "text/plain; charset=utf-8", "not found\n"};
  if (method != bhttp::verb::get) {
    co_return Answer{405, "text/plain; charset=utf-8", "method not allowed\n"};
  }
  if (path == "/health") co_return Answer{200, "text/plain; charset=utf-8", "ok\n"};
  if (path == "/ready") co_return co_await ready();
  std::vector<pipeline::PipelineStats> stats;
  stats.reserve(pipelines_.size());
  for (const auto* p : pipelines_) stats.push_back(p->stats());
  const HttpServerStats server = this->stats();
  co_return Answer{200, std::string(kMetricsContentType), prometheus_text(stats, &server)};
}

asio::awaitable<HttpServer::Answer> HttpServer::ready() {
  // Everything needed is copied before the first ping: a reload may replace the pipelines while
  // this request waits.
  struct Verdict {
    std::string name;
    Readiness readiness;
    config::InfluxSinkConfig sink;
  };
  std::vector<Verdict> verdicts;
  for (const auto* p : pipelines_) {
    verdicts.push_back({p->settings().name, readiness(p->stats()), p->settings().influx});
  }
  // Pipelines writing to the same InfluxDB share one ping per request.
  std::map<std::string, std::string> pings;  // destination -> "" or the failure
  std::string body;
  bool all_ready = true;
  for (auto& v : verdicts) {
    if (v.readiness.state == Readiness::State::needs_ping) {
      const std::string url = sink::describe_destination(v.sink);
      auto known = pings.find(url);
      if (known == pings.end()) {
        std::string failure = co_await ping(acceptor_.get_executor(), v.sink);
        known = pings.emplace(url, std::move(failure)).first;
      }
      v.readiness =
          known->second.empty()
              ? Readiness{Readiness::State::ready, ""}
              : Readiness{Readiness::State::not_ready,
                          "nothing written yet and InfluxDB does not answer: " + known->second};
    }
    if (v.readiness.state == Readiness::State::ready) {
      body += v.name + ": ready\n";
    } else {
      all_ready = false;
      body += v.name + ": not ready: " + v.readiness.reason + "\n";
    }
  }
  co_return Answer{all_ready ? 200u : 503u, "text/plain; charset=utf-8", std::move(body)};
}

void HttpServer::stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  connections_.close_all();
}

}  // namespace tumbled::http
