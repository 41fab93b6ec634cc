// tumbled-bench latency: from a window's end (its timestamp, wall clock) to the moment its point
// can be read back from InfluxDB, over many windows. A trickle of values keeps every window
// non-empty; InfluxDB's /query is polled over one keep-alive connection every few ms.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <thread>

#include "bench_common.hpp"
#include "subcommands.hpp"
#include "support/tcp_feed.hpp"

namespace tumbled::bench {

namespace {

double percentile(std::vector<double> v, double p) {  // nearest rank
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * double(v.size())));
  return v.at(std::max<std::size_t>(rank, 1) - 1);
}

long long parse_ms(const std::string& duration) {
  // The few forms this benchmark passes: "250ms", "1s".
  if (duration.ends_with("ms")) return std::stoll(duration);
  if (duration.ends_with("s")) return std::stoll(duration) * 1000;
  throw std::invalid_argument("duration must end in ms or s: " + duration);
}

}  // namespace

int run_latency(const Options& options) {
  const auto binary = options.get("tumbled", TUMBLED_DEFAULT_BINARY);
  const auto window_ms = options.get_int("window-ms", 200);
  const auto batch_interval = options.get("batch-interval", "");  // "" = daemon default (1s)
  const double seconds = options.get_double("seconds", 20);
  const auto poll_ms = options.get_int("poll-ms", 5);
  options.check_all_used();
  const long long interval_ms = batch_interval.empty() ? 1000 : parse_ms(batch_interval);

  test::InfluxServer influx;
  KeepAliveHttp http("127.0.0.1", influx.port());
  create_database(http, "bench");
  test::TempDir dir("tumbled-bench-latency-");
  TumbledSpec spec;
  spec.binary = binary;
  spec.influx_port = influx.port();
  spec.window = std::to_string(window_ms) + "ms";
  spec.aggregates = "[sum]";
  spec.batch_interval = batch_interval;
  Tumbled daemon(spec, dir.path());

  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> last_sent_ms{0};
  std::thread trickle([&] {
    test::TcpFeeder feeder(daemon.port());
    while (!stop.load()) {
      feeder.send("1\n");
      last_sent_ms = wall_ms();
      std::this_thread::sleep_for(milliseconds(std::max<long long>(1, window_ms / 20)));
    }
    feeder.close();
  });

  std::vector<double> latencies;
  std::vector<double> query_ms;
  std::int64_t last_seen = 0;
  const auto started = Clock::now();
  std::int64_t wait_for_end = 0;  // after the trickle stops: the end of its last window
  const auto collect = [&] {
    const auto q0 = Clock::now();
    const auto rows =
        query_rows(http, "bench",
                   "SELECT \"sum\" FROM records WHERE time > " + std::to_string(last_seen) + "ms");
    const auto seen_at = wall_ms();
    query_ms.push_back(seconds_since(q0) * 1000);
    for (const auto& row : rows.rows) {
      const auto ts = std::stoll(row.at(0));
      if (ts <= last_seen) continue;
      latencies.push_back(double(seen_at - ts));
      last_seen = ts;
    }
  };
  while (seconds_since(started) < seconds) {
    collect();
    std::this_thread::sleep_for(milliseconds(poll_ms));
  }
  stop = true;
  trickle.join();
  wait_for_end = (last_sent_ms / window_ms + 1) * window_ms;
  const auto tail_started = Clock::now();
  while (last_seen < wait_for_end &&
         seconds_since(tail_started) < 10 + double(interval_ms) / 1000) {
    collect();
    std::this_thread::sleep_for(milliseconds(poll_ms));
  }
  const int code = daemon.stop();

  if (latencies.empty()) {
    std::cout << "no windows arrived in InfluxDB; tumbled log:\n" << daemon.log_text();
    return 1;
  }
  double mean_query = 0;
  for (double q : query_ms) mean_query += q;
  mean_query /= double(query_ms.size());
  const double p50 = percentile(latencies, 50), p90 = percentile(latencies, 90),
               p99 = percentile(latencies, 99), max = percentile(latencies, 100),
               min = percentile(latencies, 0);
  const double target = double(interval_ms) + 50;
  const std::string label = "latency, window " + std::to_string(window_ms) + "ms, batch_interval " +
                            std::to_string(interval_ms) + "ms";
  std::cout << fmt(
      "%zu windows; window end -> readable in InfluxDB: min %.0f, p50 %.0f, p90 %.0f, "
      "p99 %.0f, max %.0f ms (target p99 <= %.0f ms: %s); poll every %lld ms + "
      "query %.1f ms on average; tumbled exit %d\n",
      latencies.size(), min, p50, p90, p99, max, target, p99 <= target ? "met" : "MISSED", poll_ms,
      mean_query, code);
  result_row(label, "p50 / p99 / max", fmt("%.0f / %.0f / %.0f ms", p50, p99, max),
             fmt("%zu windows; target p99 <= %.0f ms: %s", latencies.size(), target,
                 p99 <= target ? "met" : "MISSED"));
  print_result_rows();
  return code == 0 ? 0 : 1;
}

}  // namespace tumbled::bench
