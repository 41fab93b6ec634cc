#include "http/http_server.hpp"

#include "source/tcp_source.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <tuple>

#include "http/endpoints.hpp"
#include "pipeline/pipeline.hpp"

namespace tumbled::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxConnections = 64;
constexpr std::uint32_t kHeaderLimit = 8 * 1024;
constexpr std::uint64_t kBodyLimit = 1024;
constexpr auto kIoTimeout = std::chrono::seconds(10);
constexpr std::size_t kPingBodyLimit = 64 * 1024;

// GET /ping to one InfluxDB on a connection of its own (the writer's is busy with its batches);
// "" when it answered 2xx, otherwise what went wrong.
asio::awaitable<std::string> ping(asio::any_io_executor executor,
                                  const config::InfluxSinkConfig& settings) {
  if (settings.scheme != "http") co_return "cannot ping InfluxDB over " + settings.scheme;
  const std::string where = settings.endpoint.to_string();
  tcp::resolver resolver(executor);
  auto [resolve_error, endpoints] = co_await resolver.async_resolve(
      settings.endpoint.host, std::to_string(settings.endpoint.port), use_tuple);
  if (resolve_error) co_return "resolve " + settings.endpoint.host + ": " + resolve_error.message();
  beast::tcp_stream stream(executor);
  stream.expires_after(settings.request_timeout);
  auto [connect_error, endpoint] = co_await stream.async_connect(endpoints, use_tuple);
  if (connect_error) co_return "ping " + where + ": connect: " + connect_error.message();
  bhttp::request<bhttp::empty_body> request{bhttp::verb::get, settings.path_prefix + "/ping", 11};
  request.set(bhttp::field::host, where);
  request.set(bhttp::field::user_agent, "tumbled");
  request.keep_alive(false);
  auto [write_error, written] = co_await bhttp::async_write(stream, request, use_tuple);
  if (write_error) co_return "ping " + where + ": send: " + write_error.message();
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kPingBodyLimit);
  auto [read_error, read] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  if (read_error == beast::error::timeout) co_return "ping " + where + ": no answer in time";
  if (read_error) co_return "ping " + where + ": read: " + read_error.message();
  const unsigned status = parser.get().result_int();
  if (status < 200 || status > 299) {
    co_return "ping " + where + " answered HTTP " + std::to_string(status);
  }
  co_return "";
}

}  // namespace

HttpServer::HttpServer(asio::any_io_executor executor, config::Endpoint listen,
                       std::vector<const pipeline::Pipeline*> pipelines,
                       std::shared_ptr<spdlog::logger> log)
    : listen_(std::move(listen)),
      pipelines_(std::move(pipelines)),
      log_(std::move(log)),
      acceptor_(std::move(executor)) {}

void HttpServer::listen() {
  source::listen_on(acceptor_, listen_, "http.listen");
}

config::Endpoint HttpServer::local_endpoint() const {
  const auto endpoint = acceptor_.local_endpoint();
  return {endpoint.address().to_string(), endpoint.port()};
}

asio::awaitable<void> HttpServer::run() {
  const auto admit = [this] {
    if (connections_.size() < kMaxConnections) return true;
    if (refused_++ == 0) {
      log_->warn("{} HTTP connections open on {}: closing new ones at once", kMaxConnections,
                 listen_.to_string());
    }
    return false;
  };
  co_await source::accept_connections(
      acceptor_, stopped_, admit, [this](tcp::socket socket) { return serve(std::move(socket)); },
      log_, listen_.to_string() + " (http)");
}

asio::awaitable<void> HttpServer::serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  connections_.insert(&stream.socket());
  beast::flat_buffer buffer;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    stream.expires_after(kIoTimeout);
    auto [read_error, read] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
    Answer reply;
    bool keep_alive = false;
    unsigned version = 11;
    if (read_error) {
      // A refused request gets a status before the connection closes; a connection that ended,
      // timed out or was closed by stop() just ends.
      if (read_error == bhttp::error::header_limit) {
        reply = {431, "text/plain; charset=utf-8", "request headers too large\n"};
      } else if (read_error == bhttp::error::body_limit) {
        reply = {413, "text/plain; charset=utf-8", "request body too large\n"};
      } else if (read_error.category() ==
                     bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
                 read_error != bhttp::error::end_of_stream &&
                 read_error != bhttp::error::partial_message) {
        reply = {400, "text/plain; charset=utf-8", "bad request\n"};
      } else {
        break;
      }
    } else {
      const auto& request = parser.get();
      version = request.version();
      keep_alive = request.keep_alive();
      reply = co_await answer(request.method(), request.target());
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
    stream.expires_after(kIoTimeout);
    auto [write_error, written] = co_await bhttp::async_write(stream, response, use_tuple);
    if (write_error || !keep_alive) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  connections_.erase(&stream.socket());
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
  co_return Answer{200, std::string(kMetricsContentType), prometheus_text(stats)};
}

asio::awaitable<HttpServer::Answer> HttpServer::ready() {
  // Pipelines writing to the same InfluxDB share one ping per request.
  std::map<std::string, std::string> pings;  // URL -> "" or the failure
  std::string body;
  bool all_ready = true;
  for (const auto* p : pipelines_) {
    const auto& name = p->settings().name;
    Readiness verdict = readiness(p->stats());
    if (verdict.state == Readiness::State::needs_ping) {
      const auto& sink = p->settings().influx;
      const std::string url = sink.scheme + "://" + sink.endpoint.to_string() + sink.path_prefix;
      auto known = pings.find(url);
      if (known == pings.end()) {
        std::string failure = co_await ping(acceptor_.get_executor(), sink);
        known = pings.emplace(url, std::move(failure)).first;
      }
      verdict =
          known->second.empty()
              ? Readiness{Readiness::State::ready, ""}
              : Readiness{Readiness::State::not_ready,
                          "nothing written yet and InfluxDB does not answer: " + known->second};
    }
    if (verdict.state == Readiness::State::ready) {
      body += name + ": ready\n";
    } else {
      all_ready = false;
      body += name + ": not ready: " + verdict.reason + "\n";
    }
  }
  co_return Answer{all_ready ? 200u : 503u, "text/plain; charset=utf-8", std::move(body)};
}

void HttpServer::stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto* socket : connections_) socket->close(ignored);
}

}  // namespace tumbled::http
