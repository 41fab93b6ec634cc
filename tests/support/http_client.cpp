#include "support/http_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <exception>
#include <sstream>
#include <stdexcept>

namespace tumbled::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

HttpResponse http_request(http::verb method, std::string_view host, std::uint16_t port,
                          std::string_view target, std::string_view body,
                          const HttpHeaders& headers, std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  HttpResponse out;
  std::exception_ptr failure;

  auto exchange = [&]() -> asio::awaitable<void> {
    // One expiry for the whole exchange: tcp_stream keeps it until changed.
    stream.expires_after(timeout);
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(std::string(host)), port);
    co_await stream.async_connect(endpoint, asio::use_awaitable);

    http::request<http::string_body> req{method, std::string(target), 11};
    req.set(http::field::host, std::string(host) + ":" + std::to_string(port));
    req.set(http::field::user_agent, "tumbled-test");
    req.set(http::field::connection, "close");
    for (const auto& [name, value] : headers) req.set(name, value);
    req.body() = std::string(body);
    req.prepare_payload();
    co_await http::async_write(stream, req, asio::use_awaitable);

    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    co_await http::async_read(stream, buffer, res, asio::use_awaitable);
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    out.content_type = std::string(res[http::field::content_type]);

    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  };
  asio::co_spawn(ioc, exchange(), [&](std::exception_ptr e) { failure = e; });
  ioc.run();
  if (failure) std::rethrow_exception(failure);
  return out;
}

std::string url_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0x0F];
    }
  }
  return out;
}

std::map<std::string, double> scrape_metrics(std::uint16_t port) {
  const auto response = http_request(boost::beast::http::verb::get, "127.0.0.1", port, "/metrics");
  if (response.status != 200) {
    throw std::runtime_error("/metrics answered " + std::to_string(response.status));
  }
  std::map<std::string, double> samples;
  std::istringstream in(response.body);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

double pipeline_metric(const std::map<std::string, double>& samples, const std::string& name,
                       const std::string& labels, const std::string& pipeline) {
  const std::string key = name + "{pipeline=\"" + pipeline + "\"" + labels + "}";
  const auto it = samples.find(key);
  if (it == samples.end()) throw std::runtime_error("no sample " + key + " on /metrics");
  return it->second;
}

}  // namespace tumbled::test
