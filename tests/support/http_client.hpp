// Tiny synchronous HTTP/1.1 client for tests (Boost.Beast underneath).
//
// Contract: http_request() opens a fresh connection to host:port (host is an
// IP literal such as "127.0.0.1"; no DNS in tests), sends one
// request with "Connection: close", reads the whole response and closes. The
// timeout is one deadline for connect + write + read together, so a test
// talking to a black-holed peer fails after `timeout`, never hangs. Transport
// failures (refused, reset, timeout) throw boost::system::system_error; the
// timeout case carries boost::beast::error::timeout so tests can tell it
// apart. The default timeout is the hang guard (process.hpp): pass a short one
// only to test a timeout. Any HTTP status, including 4xx/5xx, is returned, not thrown.
// Thread-safe: every call uses its own io_context.
#pragma once

#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/process.hpp"

namespace tumbled::test {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string content_type;  // the Content-Type header, "" if none
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

HttpResponse http_request(boost::beast::http::verb method, std::string_view host,
                          std::uint16_t port, std::string_view target, std::string_view body = {},
                          const HttpHeaders& headers = {},
                          std::chrono::milliseconds timeout = hang_guard());

// Percent-encodes everything except RFC 3986 unreserved characters, which is
// what query-string values (InfluxQL with spaces, quotes, '=') need.
std::string url_encode(std::string_view text);

// One scrape of a tumbled's /metrics on 127.0.0.1:`port`: each sample's value by "name{labels}"
// ("name" alone for a metric without labels). Throws std::runtime_error unless it answers 200;
// usable from any thread.
std::map<std::string, double> scrape_metrics(std::uint16_t port);
// The sample of `name` for `pipeline` (`labels` are any further ones, e.g. ",reason=\"too_long\"");
// throws std::runtime_error if the scrape has none.
double pipeline_metric(const std::map<std::string, double>& samples, const std::string& name,
                       const std::string& labels, const std::string& pipeline);

}  // namespace tumbled::test
