// tumbled-bench footprint: RSS (VmRSS) and CPU (utime+stime over an interval) of the tumbled
// process at idle, at full ingest, and during an InfluxDB outage with ingest continuing at a
// moderate rate; then InfluxDB comes back and the run checks every value arrived.
#include <iostream>
#include <thread>

#include "bench_common.hpp"
#include "subcommands.hpp"

namespace tumbled::bench {

namespace {

struct Phase {
  double cpu_percent = 0;
  std::uint64_t rss_kib = 0, rss_max_kib = 0;
  int threads = 0;
};

// Samples `pid` for `seconds`: CPU over the whole interval, RSS every 100 ms.
Phase observe(pid_t pid, double seconds) {
  const auto first = sample_proc(pid);
  Phase phase;
  ProcSample last = first;
  while (seconds_since(first.at) < seconds) {
    std::this_thread::sleep_for(milliseconds(100));
    last = sample_proc(pid);
    phase.rss_max_kib = std::max(phase.rss_max_kib, last.rss_kib);
  }
  const double wall = std::chrono::duration<double>(last.at - first.at).count();
  phase.cpu_percent = 100 * (last.cpu_seconds - first.cpu_seconds) / wall;
  phase.rss_kib = last.rss_kib;
  phase.threads = last.threads;
  return phase;
}

}  // namespace

int run_footprint(const Options& options) {
  const auto binary = options.get("tumbled", TUMBLED_DEFAULT_BINARY);
  const double idle_s = options.get_double("idle-seconds", 3);
  const double ingest_s = options.get_double("ingest-seconds", 4);
  const double outage_s = options.get_double("outage-seconds", 6);
  const double outage_rate = options.get_double("outage-rate", 200'000);
  const int connections = static_cast<int>(options.get_int("connections", 1));
  const auto window_ms = options.get_int("window-ms", 100);
  options.check_all_used();

  const Payload payload = make_payload(16 << 20);
  const auto big_chunks = payload.chunks(64 * 1024);
  const auto small_chunks = payload.chunks(2 * 1024);

  test::InfluxServer influx;
  KeepAliveHttp http("127.0.0.1", influx.port());
  create_database(http, "bench");
  test::TempDir dir("tumbled-bench-footprint-");
  TumbledSpec spec;
  spec.binary = binary;
  spec.influx_port = influx.port();
  spec.window = std::to_string(window_ms) + "ms";
  spec.max_backoff = "1s";
  Tumbled daemon(spec, dir.path());
  const pid_t pid = daemon.pid();
  std::this_thread::sleep_for(milliseconds(1000));

  const Phase idle = observe(pid, idle_s);

  SendResult full;
  std::thread sender(
      [&] { full = send_payload(payload, big_chunks, daemon.port(), connections, ingest_s); });
  std::this_thread::sleep_for(milliseconds(500));
  const Phase ingest = observe(pid, ingest_s - 0.8);
  sender.join();

  influx.stop();
  SendResult slow;
  sender = std::thread([&] {
    slow = send_payload(payload, small_chunks, daemon.port(), connections, outage_s,
                        outage_rate / connections);
  });
  std::this_thread::sleep_for(milliseconds(500));
  const Phase outage = observe(pid, outage_s - 0.8);
  sender.join();

  influx.start();
  const auto lines = full.lines + slow.lines;
  const Int128 sum = full.sum + slow.sum;
  InfluxTotals totals;
  const auto back = Clock::now();
  while (seconds_since(back) < 60) {
    totals = influx_totals(http, "bench");
    if (totals.count >= lines) break;
    std::this_thread::sleep_for(milliseconds(200));
  }
  const double recovery = seconds_since(back);
  const int code = daemon.stop();
  const bool exact = totals.count == lines && totals.sum == sum && !totals.saturated && code == 0;

  const auto row = [](const char* name, const Phase& p, const std::string& note) {
    result_row("footprint", name,
               fmt("RSS %.1f MiB, CPU %.0f%%", double(p.rss_kib) / 1024, p.cpu_percent),
               fmt("RSS max %.1f MiB, %d threads; %s", double(p.rss_max_kib) / 1024, p.threads,
                   note.c_str()));
  };
  std::cout << fmt("idle: RSS %.1f MiB, CPU %.1f%%\n", double(idle.rss_kib) / 1024,
                   idle.cpu_percent);
  std::cout << fmt(
      "full ingest (%d conn, %.2f M integers/s): RSS %.1f MiB (max %.1f), CPU %.0f%%\n",
      connections, double(full.lines) / full.elapsed / 1e6, double(ingest.rss_kib) / 1024,
      double(ingest.rss_max_kib) / 1024, ingest.cpu_percent);
  std::cout << fmt("InfluxDB down, ingest %.0f integers/s: RSS %.1f MiB (max %.1f), CPU %.1f%%\n",
                   double(slow.lines) / slow.elapsed, double(outage.rss_kib) / 1024,
                   double(outage.rss_max_kib) / 1024, outage.cpu_percent);
  std::cout << fmt(
      "InfluxDB back: all %llu values in InfluxDB after %.1f s, sum %s (sent %s): "
      "%s; tumbled exit %d\n",
      static_cast<unsigned long long>(totals.count), recovery, to_string(totals.sum).c_str(),
      to_string(sum).c_str(), exact ? "EXACT" : "MISMATCH", code);
  row("idle", idle, "window " + std::to_string(window_ms) + "ms, no input");
  row("full ingest", ingest,
      fmt("%d conn, %.2f M integers/s", connections, double(full.lines) / full.elapsed / 1e6));
  const bool retried = daemon.log_text().find("recovered after") != std::string::npos;
  row("InfluxDB stopped", outage,
      fmt("ingest %.0f integers/s continuing, ~%.0f windows emitted meanwhile; writer %s",
          double(slow.lines) / slow.elapsed, outage_s * 1000 / double(window_ms),
          retried ? "retried and recovered (log)" : "did not log a recovery"));
  result_row("footprint", "after the outage: all values in InfluxDB", exact ? "yes" : "NO",
             fmt("%.1f s after influxd restarted", recovery));
  print_result_rows();
  return exact ? 0 : 1;
}

}  // namespace tumbled::bench
