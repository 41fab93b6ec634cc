// Shared pieces of tumbled-bench: command-line options, a keep-alive HTTP client for InfluxDB,
// a tumbled child process with a generated config, TCP senders, /proc sampling, and reporting.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "payload.hpp"
#include "support/http_client.hpp"
#include "support/influxd.hpp"
#include "support/process.hpp"

namespace tumbled::bench {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double seconds_since(Clock::time_point t);
std::int64_t wall_ms();  // Unix epoch ms, the clock tumbled's windows use

// --key value options after the subcommand; flags without a value get "1".
class Options {
 public:
  Options(int argc, char** argv, int first);
  std::string get(const std::string& key, const std::string& fallback) const;
  long long get_int(const std::string& key, long long fallback) const;
  double get_double(const std::string& key, double fallback) const;
  // A comma-separated list ("1,2", "small,int64"), as integers or as it is.
  std::vector<std::string> get_list(const std::string& key, const std::string& fallback) const;
  std::vector<int> get_int_list(const std::string& key, const std::string& fallback) const;
  bool has(const std::string& key) const {
    used_[key] = true;
    return values_.count(key) > 0;
  }
  // Throws if an option was given that none of the get()s asked about.
  void check_all_used() const;

 private:
  std::map<std::string, std::string> values_;
  mutable std::map<std::string, bool> used_;
};

// A blocking HTTP/1.1 client over one keep-alive connection (Beast), reconnecting when needed.
class KeepAliveHttp {
 public:
  KeepAliveHttp(std::string host, std::uint16_t port);
  ~KeepAliveHttp();
  struct Response {
    int status = 0;
    std::string body;
  };
  Response post(const std::string& target, const std::string& body);
  Response get(const std::string& target);
  std::uint64_t connects() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs an InfluxQL query against db with epoch=ms; returns the parsed JSON rows of the first
// series of the first statement (empty if none) and their column names.
struct QueryRows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // each value as its JSON text (numbers exact)
};
QueryRows query_rows(KeepAliveHttp& http, std::string_view db, std::string_view influxql);
void create_database(KeepAliveHttp& http, std::string_view db);

// Settings of one generated tumbled config; empty strings mean "leave the daemon's default".
struct TumbledSpec {
  std::string binary;
  std::uint16_t influx_port = 0;
  std::string database = "bench";
  std::string window = "1s";
  std::string aggregates = "[sum, count]";
  std::string batch_size;           // "" = default (100)
  std::string max_batch_size;       // "" = default (5000, or batch_size if larger)
  std::string batch_interval;       // "" = default (1s)
  std::string max_backoff;          // "" = default (30s)
  std::string checkpoint_interval;  // "" = default (1s)
  std::string log_level = "info";
  std::string source_extra;  // more keys of `source:`, e.g. "format: line_protocol, precision: s"
  std::string window_extra;  // more keys of `window:`, e.g. "time: event, group_by: [stream]"
  // The `point:` mapping; nullopt: {measurement: records, tags: {window: <window>}}; "": none
  // (the daemon's defaults).
  std::optional<std::string> point;
  bool metrics = false;  // serve /metrics on a free port (Tumbled::metrics_port())
  // Keys of source.kafka as YAML flow map entries ("brokers: ..., topic: ..."): the pipeline
  // reads Kafka instead of TCP, and start-up waits for /metrics only (set `metrics`).
  std::string kafka;
  std::size_t tcp_threads = 1;  // source.tcp.threads
};

class Tumbled {
 public:
  // Writes the config into `dir` (state in dir/state) and starts the daemon; returns once it
  // accepts connections. A state dir prepared beforehand (replay) is used as it is.
  Tumbled(TumbledSpec spec, const std::filesystem::path& dir);
  ~Tumbled();
  std::uint16_t port() const { return port_; }
  std::uint16_t metrics_port() const { return metrics_port_; }  // 0 without spec.metrics
  pid_t pid() const { return process_->pid(); }
  Clock::time_point started_at() const { return started_at_; }
  std::filesystem::path state_dir() const { return dir_ / "state"; }
  static std::filesystem::path state_dir_of(const std::filesystem::path& dir) {
    return dir / "state";
  }
  // SIGTERM and wait; returns the exit code. Throws if it does not stop within `timeout`.
  int stop(milliseconds timeout = milliseconds(30'000));
  std::string log_text() const { return process_->log_text(); }
  bool running() { return process_->running(); }

 private:
  TumbledSpec spec_;
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  std::uint16_t metrics_port_ = 0;
  Clock::time_point started_at_;
  std::optional<test::ChildProcess> process_;
};

// The windows InfluxDB holds for measurement `records`: sum of their `sum` and `count` fields,
// computed in 128 bits here, their number, and whether any carries sum_saturated.
struct InfluxTotals {
  Int128 sum = 0;
  std::uint64_t count = 0;
  std::uint64_t windows = 0;
  bool saturated = false;
  std::string influx_sum;  // SELECT sum(sum): InfluxDB's own int64 total, as text
};
InfluxTotals influx_totals(KeepAliveHttp& http, std::string_view db);

// /metrics of the bench's tumbled (tests/support/http_client.hpp), pipeline "bench".
using test::scrape_metrics;
inline double pipeline_metric(const std::map<std::string, double>& samples, const std::string& name,
                              const std::string& labels = "") {
  return test::pipeline_metric(samples, name, labels, "bench");
}

// Sends the payload over `connections` TCP connections to 127.0.0.1:port, each connection
// repeating the payload from the start in ~64 KiB chunks of whole lines, until `stop` is set
// (then each finishes its chunk) or `seconds` passed. Optionally rate-limited (lines per second
// per connection). After stopping each connection half-closes and waits until the peer closes,
// i.e. until the receiver has read every byte: `elapsed` runs from the start to the last close.
// A connection goes on past `seconds` until it has sent `min_lines` lines (0: no minimum).
struct SendResult {
  std::uint64_t bytes = 0;
  std::uint64_t lines = 0;
  Int128 sum = 0;
  double elapsed = 0;                           // s, start to the receiver having read everything
  double send_elapsed = 0;                      // s, start to the last write
  std::vector<std::uint64_t> connection_lines;  // lines each connection sent
};
SendResult send_payload(const Payload& payload, const std::vector<Chunk>& chunks,
                        std::uint16_t port, int connections, double seconds,
                        double lines_per_second = 0, const std::atomic<bool>* stop = nullptr,
                        std::uint64_t min_lines = 0);

// Sends `bytes` over one new connection to 127.0.0.1:port and waits until the peer closed it.
void send_text(std::uint16_t port, std::string_view bytes);

// An in-process receiver on 127.0.0.1: one thread, epoll over every connection, 256 KiB reads,
// counting newlines with memchr and nothing else. The ceiling for a reader of this stream.
class NewlineCounter {
 public:
  NewlineCounter();  // listens on a free port
  ~NewlineCounter();
  std::uint16_t port() const { return port_; }
  // Accepts exactly `connections` connections and serves them until all are closed by the peer.
  void start(int connections);
  std::uint64_t join();  // newlines counted

 private:
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  struct Thread;
  std::unique_ptr<Thread> thread_;
};

// `perf record -F 999 -g -p PID -o output` while alive; stop() ends it (SIGINT) and waits for it to
// write its file. Empty `output`: does nothing.
class PerfRecorder {
 public:
  PerfRecorder(const std::string& output, pid_t pid, const std::filesystem::path& log_dir);
  void stop();

 private:
  std::string output_;
  std::optional<test::ChildProcess> process_;
};

// /proc/PID sampling.
struct ProcSample {
  double cpu_seconds = 0;  // utime + stime
  std::uint64_t rss_kib = 0;
  std::uint64_t hwm_kib = 0;
  int threads = 0;
  Clock::time_point at;
};
ProcSample sample_proc(pid_t pid);

// "2 CPUs, AMD EPYC (model name of /proc/cpuinfo)".
std::string machine_description();

// Result rows collected for the summary table printed at the end (and grepped by run.sh).
void result_row(const std::string& bench, const std::string& metric, const std::string& value,
                const std::string& note = "");
void print_result_rows();

std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));

// The median of the runs' figures.
double median(std::vector<double> v);
// "1234567 (1200000 - 1300000)": the median and range of the runs' figures, with `decimals`
// digits after the point (one run: its figure alone; none: "failed").
std::string median_and_range(const std::vector<double>& v, int decimals = 0);

}  // namespace tumbled::bench
