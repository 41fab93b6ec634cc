// InfluxServer: a private, throw-away InfluxDB 1.x (/usr/bin/influxd) per test.
//
// Contract: the constructor writes a config into a fresh TempDir (meta, data,
// wal, log all inside it), binds the HTTP API and the RPC/backup service to
// free 127.0.0.1 ports, disables every other listener, reporting, the
// _internal monitor store and request/query logging, then starts influxd
// and returns once GET /ping answers 204. If influxd dies binding a port
// (free_port() is racy) it retries once with new ports; any other failure or
// a start-up slower than `startup_timeout` (the hang guard by default) throws std::runtime_error
// carrying the tail of influxd's log. stop() is SIGTERM + wait (SIGKILL after 10 s); start() brings
// the same server (same ports, same data) back after a stop, for tests of the sink riding out an
// outage. The destructor stops it and deletes the directory. Not thread-safe; the HTTP helpers are
// blocking.
#pragma once

#include "support/process.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tumbled::test {

class InfluxServer {
 public:
  explicit InfluxServer(std::chrono::milliseconds startup_timeout = hang_guard());
  ~InfluxServer();
  InfluxServer(const InfluxServer&) = delete;
  InfluxServer& operator=(const InfluxServer&) = delete;

  std::uint16_t port() const { return http_port_; }
  std::string url() const;  // "http://127.0.0.1:PORT"

  // Throws std::runtime_error on an HTTP or InfluxQL error.
  void create_database(std::string_view name);
  // GET /query?db=..&q=..&epoch=ms; the parsed response as-is (statement
  // errors are inside "results"). Throws on non-200 status or bad JSON.
  boost::json::value query(std::string_view db, std::string_view influxql);
  // POST /write?db=..&precision=ms; the HTTP status (204 on success).
  int write(std::string_view db, std::string_view line_protocol);
  // Rows ("values") of the first series of the first statement, each row
  // starting with the time in ms; empty if there is no series. Throws if the
  // statement failed. Note: JSON has one number type, so a float field that
  // holds 3.0 comes back as the integer 3.
  std::vector<std::vector<boost::json::value>> series_values(std::string_view db,
                                                             std::string_view influxql);

  void stop();
  void start();
  bool running();
  std::string log_text() const;
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  void write_config() const;
  bool launch(std::chrono::milliseconds timeout, std::string& failure);

  TempDir dir_{"tumbled-influxd-"};
  std::chrono::milliseconds startup_timeout_;
  std::uint16_t http_port_ = 0;
  std::uint16_t rpc_port_ = 0;
  std::optional<ChildProcess> process_;
};

}  // namespace tumbled::test
