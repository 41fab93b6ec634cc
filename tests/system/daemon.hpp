// Runs the tumbled binary for system tests: writes its YAML config into a temp dir, starts it,
// waits until its listeners accept, and stops or kills it. One TempDir holds config, state and log,
// so a restart with the same Daemon object keeps its state.
#pragma once

#include <csignal>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "support/http_client.hpp"
#include "support/influxd.hpp"
#include "support/process.hpp"

namespace tumbled::test {

// Settings the system tests vary; everything else stays at the daemon's defaults.
struct PipelineSpec {
  std::string name = "records";
  std::uint16_t listen_port = free_port();
  std::uint16_t influx_port = 0;
  std::string window = "1s";
  std::string aggregates = "[sum]";
  std::string batch_interval = "100ms";
  std::string request_timeout = "500ms";
  std::string max_backoff = "300ms";
  std::size_t batch_size = 50;
  std::string max_batch_size;  // sink.influxdb.max_batch_size; "" = the daemon's default
  std::size_t max_line_bytes = 64;
  std::size_t max_connections = 64;
  std::string idle_timeout = "5m";  // source.tcp.idle_timeout
  std::size_t threads = 1;          // source.tcp.threads
  std::string buffer = "{max_points: 1000, when_full: block}";
  std::string database = "telemetry";
  std::string tags;  // the points' tags as a YAML flow map; "" = {window: <window>}
  // More keys of `source` and `window`, as YAML flow map entries: e.g.
  // "format: line_protocol, precision: ms" and "time: event, group_by: [host]"; "" = none.
  std::string source_extra;
  std::string window_extra;
  // The whole `point` mapping as a YAML flow map; "" = {measurement: <name>, tags: <tags>}.
  std::string point;
  // Read InfluxDB's write API (source.http on 127.0.0.1:listen_port) instead of TCP;
  // `http_extra` adds keys of source.http as YAML flow map entries, e.g. "max_body_bytes: 4KiB".
  // The source.tcp keys above are then left out.
  bool http = false;
  std::string http_extra;
  // Read Kafka instead: the keys of source.kafka as YAML flow map entries, e.g.
  // "brokers: 127.0.0.1:1234, topic: telemetry"; no port is waited for at start.
  std::string kafka;
};

class Daemon {
 public:
  explicit Daemon(std::vector<PipelineSpec> pipelines, std::string checkpoint_interval = "200ms")
      : pipelines_(std::move(pipelines)), checkpoint_interval_(std::move(checkpoint_interval)) {}

  std::string config_path() const { return (dir_.path() / "tumbled.yaml").string(); }
  // Extra environment for the daemon from the next start() on. NOTIFY_SOCKET and WATCHDOG_* are
  // never inherited from the test's own environment, only set here.
  void set_environment(EnvVars env) { env_ = std::move(env); }
  // Serve /metrics, /health and /ready on a free loopback port from the next start() on (without
  // this, http.listen is ""): returns the port, which start() also waits for.
  std::uint16_t enable_http() { return http_port_ = free_port(); }
  std::uint16_t http_port() const { return http_port_; }
  // log.format from the next start() on: text (the default) or json.
  void set_log_format(std::string format) { log_format_ = std::move(format); }

  void start();
  // SIGTERM and wait; returns the exit code (128+signal if it died of one).
  int stop(std::chrono::milliseconds timeout = hang_guard());
  void kill();  // SIGKILL: no checkpoint, no flush
  // Runs `tumbled <args> --config <this daemon's config>` to completion: {exit code, output}.
  std::pair<int, std::string> run_command(std::vector<std::string> args);
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  std::string log_text() const { return process_ ? process_->log_text() : std::string(); }
  const PipelineSpec& pipeline(std::size_t i = 0) const { return pipelines_.at(i); }

  // shutdown_timeout from the next written config on ("3s" by default).
  void set_shutdown_timeout(std::string timeout) { shutdown_timeout_ = std::move(timeout); }
  // Waits for the daemon to exit by itself; its exit code (128+signal if it died of one).
  int wait_for_exit(std::chrono::milliseconds timeout = hang_guard());
  // Sends `signo` to the running daemon.
  void signal(int signo);
  bool running() { return process_ && process_->running(); }
  // Replaces the pipelines and rewrites the config file now (for a SIGHUP, or before a start()).
  void reconfigure(std::vector<PipelineSpec> pipelines);
  // Overwrites the config file with `yaml` as it is (e.g. an invalid one); start() rewrites it.
  void write_config_text(const std::string& yaml) const;
  // How often `text` occurs in the current run's log.
  std::size_t log_count(const std::string& text) const;
  // Waits until `text` occurs at least `times` times in the log; false if the daemon exited or
  // `timeout` (a hang guard, not a speed expectation) passed first.
  bool wait_for_log(const std::string& text, std::size_t times = 1,
                    std::chrono::milliseconds timeout = hang_guard());

 private:
  void write_config() const;

  std::vector<PipelineSpec> pipelines_;
  std::string checkpoint_interval_;
  TempDir dir_{"tumbled-daemon-"};
  int starts_ = 0;
  int commands_ = 0;
  EnvVars env_;
  std::uint16_t http_port_ = 0;
  std::string log_format_ = "text";
  std::string shutdown_timeout_ = "3s";
  std::optional<ChildProcess> process_;
};

// /metrics of a daemon: scrape_metrics() and pipeline_metric() of tests/support/http_client.hpp,
// here with pipeline "records" unless named.
double pipeline_metric(const std::map<std::string, double>& samples, const std::string& name,
                       const std::string& labels = "", const std::string& pipeline = "records");

// A process's memory from /proc/PID/status in KiB: `field` "VmRSS" (resident now) or "VmHWM"
// (the peak since it started). 0 if unreadable.
std::size_t memory_kib(pid_t pid, const std::string& field = "VmRSS");

// The sum of the `sum` field over every window of a measurement, and how many windows there are.
struct WindowTotals {
  std::int64_t sum = 0;
  std::size_t windows = 0;
};
WindowTotals window_totals(InfluxServer& influx, const std::string& measurement = "records");

}  // namespace tumbled::test
