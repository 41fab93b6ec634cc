#include "support/influxd.hpp"

#include "support/http_client.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <csignal>
#include <fstream>
#include <stdexcept>

namespace tumbled::test {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr auto kHost = "127.0.0.1";

std::string tail(const std::string& text, std::size_t max_bytes = 4000) {
  return text.size() <= max_bytes ? text : "..." + text.substr(text.size() - max_bytes);
}

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

InfluxServer::InfluxServer(std::chrono::milliseconds startup_timeout)
    : startup_timeout_(startup_timeout) {
  std::string failure;
  for (int attempt = 0; attempt < 2; ++attempt) {
    http_port_ = free_port();
    do rpc_port_ = free_port();
    while (rpc_port_ == http_port_);
    write_config();
    if (launch(startup_timeout_, failure)) return;
    // free_port() is a race; only a lost race is worth a second try.
    if (failure.find("address already in use") == std::string::npos) break;
  }
  throw std::runtime_error(failure);
}

InfluxServer::~InfluxServer() {
  try {
    stop();
  } catch (...) {
    // ~ChildProcess SIGKILLs whatever is left.
  }
}

std::string InfluxServer::url() const {
  return std::string("http://") + kHost + ":" + std::to_string(http_port_);
}

void InfluxServer::write_config() const {
  const auto& d = dir_.path();
  std::ofstream conf(d / "influxdb.conf", std::ios::trunc);
  // Section names as printed by `influxd config` on 1.6. Keys not set here
  // fall back to influxd's built-in defaults, NOT /etc/influxdb/influxdb.conf
  // (whose defaults would point meta/data at $HOME/.influxdb).
  conf << "reporting-enabled = false\n"
       << "bind-address = \"" << kHost << ':' << rpc_port_ << "\"\n"
       << "\n[meta]\n  dir = \"" << (d / "meta").string() << "\"\n  logging-enabled = false\n"
       << "\n[data]\n  dir = \"" << (d / "data").string() << "\"\n  wal-dir = \""
       << (d / "wal").string() << "\"\n  query-log-enabled = false\n"
       << "\n[monitor]\n  store-enabled = false\n"
       << "\n[subscriber]\n  enabled = false\n"
       << "\n[http]\n  enabled = true\n  bind-address = \"" << kHost << ':' << http_port_ << "\"\n"
       << "  auth-enabled = false\n  log-enabled = false\n  pprof-enabled = false\n"
       << "  unix-socket-enabled = false\n"
       << "\n[ifql]\n  enabled = false\n"
       << "\n[continuous_queries]\n  enabled = false\n"
       << "\n[logging]\n  suppress-logo = true\n"
       << "\n[[graphite]]\n  enabled = false\n"
       << "\n[[collectd]]\n  enabled = false\n"
       << "\n[[opentsdb]]\n  enabled = false\n"
       << "\n[[udp]]\n  enabled = false\n";
  if (!conf) throw std::runtime_error("cannot write " + (d / "influxdb.conf").string());
}

bool InfluxServer::launch(std::chrono::milliseconds timeout, std::string& failure) {
  const auto log_path = dir_.path() / "influxd.log";
  const auto log_offset = read_file(log_path).size();  // restarts append
  const auto started = std::chrono::steady_clock::now();
  // Scrub INFLUXDB_*: influxd lets such env vars override the config file.
  process_.emplace(std::vector<std::string>{"/usr/bin/influxd", "-config",
                                            (dir_.path() / "influxdb.conf").string()},
                   log_path, EnvVars{}, std::vector<std::string>{"INFLUXDB_"});
  auto ping = [&] {
    try {
      return http_request(http::verb::get, kHost, http_port_, "/ping", {}, {},
                          std::chrono::milliseconds(500))
                 .status == 204;
    } catch (const std::exception&) {
      return false;
    }
  };
  if (wait_until([&] { return !process_->running() || ping(); }, timeout) && process_->running())
    return true;

  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  const auto exit_code = process_->wait_for(std::chrono::milliseconds(0));
  process_.reset();  // SIGKILL if it is merely slow
  const std::string log = read_file(log_path).substr(log_offset);
  failure = "influxd on " + url() + " not ready after " + std::to_string(elapsed.count()) +
            " ms (" +
            (exit_code ? "exited with " + std::to_string(*exit_code)
                       : std::string("still running, killed")) +
            "); log " + log_path.string() + " tail:\n" + tail(log);
  return false;
}

void InfluxServer::start() {
  if (process_ && process_->running())
    throw std::logic_error("InfluxServer::start: already running");
  std::string failure;
  if (!launch(startup_timeout_, failure)) throw std::runtime_error(failure);
}

void InfluxServer::stop() {
  if (!process_) return;
  process_->signal(SIGTERM);
  if (!process_->wait_for(std::chrono::seconds(10))) process_->signal(SIGKILL);
  process_.reset();
}

bool InfluxServer::running() {
  return process_ && process_->running();
}

std::string InfluxServer::log_text() const {
  return read_file(dir_.path() / "influxd.log");
}

void InfluxServer::create_database(std::string_view name) {
  // POST: a GET of a write statement works in 1.x but comes back with a
  // deprecation warning in the response.
  const auto res = http_request(http::verb::post, kHost, http_port_, "/query",
                                "q=" + url_encode("CREATE DATABASE " + quote_identifier(name)),
                                {{"Content-Type", "application/x-www-form-urlencoded"}});
  if (res.status != 200) {
    throw std::runtime_error("CREATE DATABASE " + std::string(name) + ": HTTP " +
                             std::to_string(res.status) + " " + res.body);
  }
  const auto body = json::parse(res.body);
  const auto& result = body.at("results").at(0).as_object();
  if (const auto* error = result.if_contains("error")) {
    throw std::runtime_error("CREATE DATABASE " + std::string(name) + ": " +
                             json::serialize(*error));
  }
}

json::value InfluxServer::query(std::string_view db, std::string_view influxql) {
  std::string target = "/query?epoch=ms&q=" + url_encode(influxql);
  if (!db.empty()) target += "&db=" + url_encode(db);
  const auto res = http_request(http::verb::get, kHost, http_port_, target);
  if (res.status != 200) {
    throw std::runtime_error("query '" + std::string(influxql) + "': HTTP " +
                             std::to_string(res.status) + " " + res.body);
  }
  boost::system::error_code ec;
  auto parsed = json::parse(res.body, ec);
  if (ec) throw std::runtime_error("query '" + std::string(influxql) + "': bad JSON: " + res.body);
  return parsed;
}

int InfluxServer::write(std::string_view db, std::string_view line_protocol) {
  return http_request(http::verb::post, kHost, http_port_,
                      "/write?precision=ms&db=" + url_encode(db), line_protocol)
      .status;
}

std::vector<std::vector<json::value>> InfluxServer::series_values(std::string_view db,
                                                                  std::string_view influxql) {
  const auto response = query(db, influxql);
  const auto& result = response.at("results").at(0).as_object();
  if (const auto* error = result.if_contains("error")) {
    throw std::runtime_error("query '" + std::string(influxql) + "': " + json::serialize(*error));
  }
  std::vector<std::vector<json::value>> rows;
  const auto* series = result.if_contains("series");
  if (!series || series->as_array().empty()) return rows;
  const auto* values = series->as_array().at(0).as_object().if_contains("values");
  if (!values) return rows;
  for (const auto& row : values->as_array()) {
    const auto& cells = row.as_array();
    rows.emplace_back(cells.begin(), cells.end());
  }
  return rows;
}

}  // namespace tumbled::test
