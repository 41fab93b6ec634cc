// tumbled-bench http-write: acknowledged lines/s through InfluxDB's write API, into a tumbled
// whose pipeline reads HTTP (source.http) and into InfluxDB 1.x's own /write, with the same
// clients and the same bodies.
//
// Bodies: the line-protocol payload of `ingest --format line_protocol` (payload.hpp) with --keys
// keys, `cdn,stream=s<k>,isp=i<k % 50> bytes=<n>i <ts>` with timestamps (s) in the previous hour,
// cut into bodies of --lines-per-body lines. Each client is a thread with its own keep-alive
// connection (KeepAliveHttp) posting one body after the other to /write?db=bench&precision=s,
// client c starting at body c * bodies / clients. A request counts when it is answered 204; any
// other answer, or a failed exchange, stops every client and fails the benchmark. No client sends
// a request once --seconds have passed, so when all have stopped every request sent has had its
// answer: lines/s = lines acknowledged / (start to the last answer).
//
// Every run of every client count and target starts a fresh influxd (database bench) and, for
// tumbled, a fresh tumbled: pipeline bench reading source.http, 1h event-time windows with
// group_by [stream, isp], fields [bytes], aggregates [sum, count, max], as the keyed ingest. All
// lines of a run fall into one window that stays open, so tumbled writes nothing to its influxd
// during the run. After each tumbled run its /metrics must count exactly the acknowledged lines as
// accepted, none rejected and exactly the acknowledged requests as answered 204, and it must exit
// 0 on SIGTERM. Printed besides: the fsyncs of the accepted writes' log during the run, i.e. how
// many requests shared one (a 204 from source.http means the request is in the state store, WAL
// synced).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <thread>

#include "bench_common.hpp"
#include "subcommands.hpp"

namespace tumbled::bench {

namespace {

constexpr std::string_view kTarget = "/write?db=bench&precision=s";

struct Body {
  std::string text;
  std::uint64_t lines = 0;
};

// The payload cut into bodies of `lines_per_body` whole lines; a shorter rest is left out.
std::vector<Body> make_bodies(const Payload& payload, std::uint64_t lines_per_body) {
  std::vector<Body> bodies;
  std::size_t begin = 0, end = 0;
  std::uint64_t lines = 0;
  while (end < payload.bytes.size()) {
    end = payload.bytes.find('\n', end) + 1;
    if (++lines == lines_per_body) {
      bodies.push_back({payload.bytes.substr(begin, end - begin), lines});
      begin = end;
      lines = 0;
    }
  }
  return bodies;
}

// What the clients of one run got.
struct Load {
  std::uint64_t requests = 0, lines = 0, bytes = 0, connects = 0;
  double elapsed = 0;     // s, start to the last answer
  double client_cpu = 0;  // of this process (the clients), share of one core
  std::vector<double> latencies_ms;
  std::string failure;  // the first request not answered 204 (or a failed exchange), or ""

  double lines_per_s() const { return double(lines) / elapsed; }
  double percentile_ms(double p) {
    if (latencies_ms.empty()) return 0;
    const auto at = latencies_ms.begin() + std::ptrdiff_t(p * double(latencies_ms.size() - 1));
    std::nth_element(latencies_ms.begin(), at, latencies_ms.end());
    return *at;
  }
  std::string describe() {
    return fmt(
        "%llu requests, %llu lines, %.1f MB acknowledged in %.2f s: %.0f lines/s; request p50 "
        "%.1f ms, p99 %.1f ms; %llu connections; clients' CPU %.0f%%",
        static_cast<unsigned long long>(requests), static_cast<unsigned long long>(lines),
        double(bytes) / 1e6, elapsed, lines_per_s(), percentile_ms(0.5), percentile_ms(0.99),
        static_cast<unsigned long long>(connects), 100 * client_cpu);
  }
};

// `clients` threads, each with its own keep-alive connection to 127.0.0.1:port, post bodies to
// kTarget for `seconds` (see the top of the file).
Load post_bodies(std::uint16_t port, const std::vector<Body>& bodies, int clients, double seconds) {
  std::vector<Load> each(static_cast<std::size_t>(clients));
  std::vector<Clock::time_point> done(each.size());
  std::atomic<bool> go{false}, failed{false};
  Clock::time_point start;
  std::vector<std::thread> threads;
  for (std::size_t c = 0; c < each.size(); ++c) {
    threads.emplace_back([&, c] {
      Load& mine = each[c];
      try {
        KeepAliveHttp http("127.0.0.1", port);
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(seconds));
        for (std::size_t i = c * bodies.size() / each.size();
             !failed.load() && Clock::now() < deadline; i = (i + 1) % bodies.size()) {
          const auto sent = Clock::now();
          const auto res = http.post(std::string(kTarget), bodies[i].text);
          mine.latencies_ms.push_back(1e3 * seconds_since(sent));
          if (res.status != 204) {
            const auto shown = res.body.substr(0, res.body.find_last_not_of(" \r\n") + 1);
            mine.failure = fmt("client %zu: HTTP %d %.300s", c, res.status, shown.c_str());
            failed = true;
            break;
          }
          ++mine.requests;
          mine.lines += bodies[i].lines;
          mine.bytes += bodies[i].text.size();
        }
        mine.connects = http.connects();
      } catch (const std::exception& e) {
        mine.failure = fmt("client %zu: %s", c, e.what());
        failed = true;
      }
      done[c] = Clock::now();
    });
  }
  const auto before = sample_proc(::getpid());
  start = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  Load total;
  total.client_cpu = sample_proc(::getpid()).cpu_seconds - before.cpu_seconds;
  for (std::size_t c = 0; c < each.size(); ++c) {
    total.requests += each[c].requests;
    total.lines += each[c].lines;
    total.bytes += each[c].bytes;
    total.connects += each[c].connects;
    total.latencies_ms.insert(total.latencies_ms.end(), each[c].latencies_ms.begin(),
                              each[c].latencies_ms.end());
    if (total.failure.empty()) total.failure = each[c].failure;
    total.elapsed = std::max(total.elapsed, std::chrono::duration<double>(done[c] - start).count());
  }
  total.client_cpu /= total.elapsed;
  return total;
}

// A tumbled whose pipeline bench is the keyed line-protocol pipeline of `ingest --format
// line_protocol` reading source.http (InfluxDB's write API) on a free port instead of source.tcp,
// with /metrics on another one.
class HttpTumbled {
 public:
  HttpTumbled(const std::string& binary, std::uint16_t influx_port, std::uint64_t keys,
              const std::filesystem::path& dir) {
    for (int attempt = 0;; ++attempt) {
      port_ = test::free_port();
      do {
        metrics_port_ = test::free_port();
      } while (metrics_port_ == port_);
      const auto config = dir / "tumbled.yaml";
      std::ofstream(config)
          << "log: {level: info}\n"
          << "http: {listen: \"127.0.0.1:" << metrics_port_ << "\"}\n"
          << "state: {dir: " << (dir / "state").string() << "}\n"
          << "pipelines:\n  - name: bench\n"
          << "    source: {http: {listen: 127.0.0.1:" << port_
          << ", max_body_bytes: 26214400, max_connections: 256}}\n"
          << fmt("    window: {size: 1h, time: event, group_by: [stream, isp], fields: [bytes], "
                 "aggregates: [sum, count, max], idle_timeout: 0, max_keys: %llu}\n",
                 static_cast<unsigned long long>(keys + 1000))
          << "    sink: {influxdb: {url: http://127.0.0.1:" << influx_port
          << ", database: bench}}\n";
      process_.emplace(std::vector<std::string>{binary, "--config", config.string()},
                       dir / "tumbled.log");
      const bool up = test::wait_until(
          [&] { return !process_->running() || (answers_ping() && serves_metrics()); },
          test::hang_guard(), milliseconds(5));
      if (up && process_->running()) return;
      const auto log = process_->log_text();
      process_.reset();
      if (attempt == 0 && log.find("in use") != std::string::npos) continue;  // free_port() race
      throw std::runtime_error("tumbled did not start; log:\n" + log);
    }
  }
  std::uint16_t port() const { return port_; }
  std::uint16_t metrics_port() const { return metrics_port_; }
  pid_t pid() const { return process_->pid(); }
  std::string log_text() const { return process_->log_text(); }
  // SIGTERM and wait; the exit code.
  int stop() {
    process_->signal(SIGTERM);
    const auto code = process_->wait_for(milliseconds(60'000));
    if (!code) throw std::runtime_error("tumbled did not stop after SIGTERM; log:\n" + log_text());
    return *code;
  }

 private:
  bool answers_ping() const {
    try {
      return test::http_request(boost::beast::http::verb::get, "127.0.0.1", port_, "/ping", {}, {},
                                milliseconds(2000))
                 .status == 204;
    } catch (const std::exception&) {
      return false;
    }
  }
  bool serves_metrics() const {
    try {
      scrape_metrics(metrics_port_);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  std::uint16_t port_ = 0, metrics_port_ = 0;
  std::optional<test::ChildProcess> process_;
};

struct Settings {
  std::string binary;
  std::uint64_t keys = 10'000;
  double seconds = 5;
};

// One run with a fresh influxd, into a fresh tumbled (`into_tumbled`) or into influxd's own
// /write: the lines/s, or nullopt after printing what failed.
std::optional<double> run_once(const Settings& s, const std::vector<Body>& bodies, int clients,
                               bool into_tumbled) {
  test::InfluxServer influx;
  KeepAliveHttp admin("127.0.0.1", influx.port());
  create_database(admin, "bench");
  if (!into_tumbled) {
    Load load = post_bodies(influx.port(), bodies, clients, s.seconds);
    std::cout << "influxd: " << load.describe() << "\n";
    if (load.failure.empty()) return load.lines_per_s();
    std::cout << "influxd: FAILED: " << load.failure << "\n";
    return std::nullopt;
  }

  test::TempDir dir("tumbled-bench-http-");
  HttpTumbled daemon(s.binary, influx.port(), s.keys, dir.path());
  // Counters before the run: start-up checkpoints, the /ping that found the daemon up.
  const auto at_start = scrape_metrics(daemon.metrics_port());
  const auto grown = [&](const std::map<std::string, double>& now, const std::string& name,
                         const std::string& labels = "") {
    return pipeline_metric(now, name, labels) - pipeline_metric(at_start, name, labels);
  };
  const auto before = sample_proc(daemon.pid());
  Load load = post_bodies(daemon.port(), bodies, clients, s.seconds);
  const auto after = sample_proc(daemon.pid());
  std::cout << "tumbled: " << load.describe()
            << fmt("; tumbled CPU %.0f%%\n",
                   100 * (after.cpu_seconds - before.cpu_seconds) / load.elapsed);
  bool ok = load.failure.empty();
  if (!ok) std::cout << "tumbled: FAILED: " << load.failure << "\n";

  // The daemon counts a request once its answer is written, which the client may see first.
  std::map<std::string, double> metrics;
  const auto answered_204 = [&] {
    return grown(metrics, "tumbled_source_http_requests_total", ",code=\"204\"");
  };
  test::wait_until(
      [&] {
        metrics = scrape_metrics(daemon.metrics_port());
        return answered_204() >= double(load.requests);
      },
      milliseconds(5000));
  const double accepted = pipeline_metric(metrics, "tumbled_lines_accepted_total");
  double rejected = 0;
  for (const auto& [name, value] : metrics) {
    if (name.starts_with("tumbled_lines_rejected_total{pipeline=\"bench\"")) rejected += value;
  }
  const double answered = answered_204();
  const bool counted =
      accepted == double(load.lines) && rejected == 0 && answered == double(load.requests);
  std::cout << fmt(
      "/metrics: %.0f lines accepted (acknowledged %llu), %.0f rejected, %.0f requests answered "
      "204 (%llu) -> %s\n",
      accepted, static_cast<unsigned long long>(load.lines), rejected, answered,
      static_cast<unsigned long long>(load.requests), counted ? "OK" : "MISMATCH");
  // Each fsync of the accepted writes' log commits the requests decoded since the one before.
  const double syncs = grown(metrics, "tumbled_source_http_log_syncs_total");
  std::cout << fmt("%.0f log fsyncs during the run: %.2f requests each (group commit)\n", syncs,
                   double(load.requests) / std::max(syncs, 1.0));
  const int code = daemon.stop();
  if (code != 0) std::cout << "tumbled exit " << code << "; log:\n" << daemon.log_text() << "\n";
  ok = ok && counted && code == 0;
  return ok ? std::optional(load.lines_per_s()) : std::nullopt;
}

}  // namespace

int run_http_write(const Options& options) {
  Settings s;
  s.binary = options.get("tumbled", TUMBLED_DEFAULT_BINARY);
  const std::vector<int> client_counts = options.get_int_list("clients", "1,16");
  const auto lines_per_body = static_cast<std::uint64_t>(options.get_int("lines-per-body", 5000));
  s.keys = static_cast<std::uint64_t>(options.get_int("keys", 10'000));
  s.seconds = options.get_double("seconds", 5);
  const int runs = static_cast<int>(options.get_int("runs", 3));
  options.check_all_used();
  if (client_counts.empty() || *std::min_element(client_counts.begin(), client_counts.end()) < 1 ||
      lines_per_body < 1 || s.keys < 1 || runs < 1) {
    throw std::invalid_argument("--clients, --lines-per-body, --keys and --runs must be >= 1");
  }

  // At least two bodies for each client of the largest count, so that clients post different
  // bodies at the same time.
  const auto most_clients =
      static_cast<std::size_t>(*std::max_element(client_counts.begin(), client_counts.end()));
  const Payload payload = make_line_protocol_payload(
      std::max<std::size_t>(16 << 20, 2 * most_clients * lines_per_body * 52), s.keys,
      wall_ms() / 3'600'000 * 3600 - 3600);
  const auto bodies = make_bodies(payload, lines_per_body);
  std::cout << payload.describe() << "\n"
            << fmt("%zu bodies of %llu lines (%.0f KB each), POST %s\n", bodies.size(),
                   static_cast<unsigned long long>(lines_per_body),
                   double(bodies.at(0).text.size()) / 1e3, std::string(kTarget).c_str());

  bool all_ok = true;
  std::vector<std::string> table;
  for (const int clients : client_counts) {
    std::vector<double> tumbled_rates, influxd_rates;
    for (int i = 0; i < runs; ++i) {
      std::cout << fmt("-- %d client%s, run %d of %d\n", clients, clients == 1 ? "" : "s", i + 1,
                       runs);
      // Alternating the targets in every run spreads drifts of the machine's load over both.
      const auto tumbled = run_once(s, bodies, clients, true);
      const auto influxd = run_once(s, bodies, clients, false);
      if (tumbled) tumbled_rates.push_back(*tumbled);
      if (influxd) influxd_rates.push_back(*influxd);
      all_ok = all_ok && tumbled && influxd;
      if (!all_ok) break;
    }
    const std::string ratio = tumbled_rates.empty() || influxd_rates.empty()
                                  ? "-"
                                  : fmt("%.2f", median(tumbled_rates) / median(influxd_rates));
    table.push_back(fmt("%d | %s | %s | %s", clients, median_and_range(tumbled_rates).c_str(),
                        median_and_range(influxd_rates).c_str(), ratio.c_str()));
    result_row(
        fmt("http-write, %d client%s, %llu-line bodies, %llu keys", clients,
            clients == 1 ? "" : "s", static_cast<unsigned long long>(lines_per_body),
            static_cast<unsigned long long>(s.keys)),
        "acknowledged lines/s, tumbled vs influxd /write",
        median_and_range(tumbled_rates) + " vs " + median_and_range(influxd_rates),
        "tumbled / influxd " + ratio + (runs > 1 ? fmt("; median (range) of %d runs", runs) : ""));
    if (!all_ok) break;
  }

  // Without outer pipes: run.sh collects the lines starting with "| " as result rows.
  std::cout << fmt(
      "\nclients | tumbled lines/s, median (range) of %d | influxd lines/s, median (range) of %d "
      "| tumbled / influxd\n--- | --- | --- | ---\n",
      runs, runs);
  for (const auto& row : table) std::cout << row << "\n";
  print_result_rows();
  return all_ok ? 0 : 1;
}

}  // namespace tumbled::bench
