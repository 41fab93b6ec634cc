// tumbled-bench ingest: integers/s and MB/s that one tumbled reads from TCP, next to the ceiling
// of the same loopback stream read by a thread that only counts newlines, and a check that the
// sum InfluxDB ends up with equals the sum sent.
#include <csignal>
#include <iostream>
#include <thread>

#include "bench_common.hpp"
#include "subcommands.hpp"

namespace tumbled::bench {

namespace {

struct Rate {
  double lines_per_s, mb_per_s;
};
Rate rate_of(const SendResult& r) {
  return {double(r.lines) / r.elapsed, double(r.bytes) / r.elapsed / 1e6};
}

std::string values_accepted_from_log(const std::string& log) {
  const auto at = log.find(" values accepted");
  if (at == std::string::npos) return "?";
  auto begin = log.rfind(' ', at - 1);
  return log.substr(begin + 1, at - begin - 1);
}

}  // namespace

int run_ingest(const Options& options) {
  const auto binary = options.get("tumbled", TUMBLED_DEFAULT_BINARY);
  const auto port = static_cast<std::uint16_t>(options.get_int("port", 0));
  const int connections = static_cast<int>(options.get_int("connections", 1));
  const double seconds = options.get_double("seconds", 5);
  const auto payload_mib = static_cast<std::size_t>(options.get_int("payload-mib", 16));
  const auto window_ms = options.get_int("window-ms", 1000);
  const auto perf_output = options.get("perf", "");
  const bool ceiling = !options.has("no-ceiling");
  options.check_all_used();

  const Payload payload = make_payload(payload_mib << 20);
  const auto chunks = payload.chunks(64 * 1024);
  std::cout << payload.describe() << "\n";
  const std::string label = "ingest, " + std::to_string(connections) + " conn";

  if (port != 0) {
    // Plain load generator against a daemon someone else runs.
    const auto r = send_payload(payload, chunks, port, connections, seconds);
    const auto rate = rate_of(r);
    std::cout << fmt(
        "sent %llu lines, %llu bytes in %.2f s: %.3f M integers/s, %.1f MB/s; sum "
        "sent %s\n",
        static_cast<unsigned long long>(r.lines), static_cast<unsigned long long>(r.bytes),
        r.elapsed, rate.lines_per_s / 1e6, rate.mb_per_s, to_string(r.sum).c_str());
    result_row(label, "integers/s (port " + std::to_string(port) + ")",
               fmt("%.2f M", rate.lines_per_s / 1e6), fmt("%.1f MB/s", rate.mb_per_s));
    print_result_rows();
    return 0;
  }

  std::optional<Rate> ceiling_rate;
  if (ceiling) {
    NewlineCounter counter;
    counter.start(connections);
    const auto r = send_payload(payload, chunks, counter.port(), connections, seconds);
    const auto counted = counter.join();
    ceiling_rate = rate_of(r);
    std::cout << fmt(
        "ceiling (memchr newline counter, 1 thread): %llu lines in %.2f s: %.3f M "
        "integers/s, %.1f MB/s%s\n",
        static_cast<unsigned long long>(r.lines), r.elapsed, ceiling_rate->lines_per_s / 1e6,
        ceiling_rate->mb_per_s, counted == r.lines ? "" : " (COUNT MISMATCH)");
    if (counted != r.lines) return 1;
  }

  test::InfluxServer influx;
  KeepAliveHttp http("127.0.0.1", influx.port());
  create_database(http, "bench");
  test::TempDir dir("tumbled-bench-ingest-");
  TumbledSpec spec;
  spec.binary = binary;
  spec.influx_port = influx.port();
  spec.window = std::to_string(window_ms) + "ms";
  Tumbled daemon(spec, dir.path());

  PerfRecorder perf(perf_output, daemon.pid(), dir.path());
  const auto before = sample_proc(daemon.pid());
  const auto r = send_payload(payload, chunks, daemon.port(), connections, seconds);
  const auto after = sample_proc(daemon.pid());
  perf.stop();
  const auto rate = rate_of(r);
  const double cpu = (after.cpu_seconds - before.cpu_seconds) / r.elapsed;
  std::cout << fmt(
      "tumbled: %llu lines, %llu bytes in %.2f s (last write at %.2f s): %.3f M "
      "integers/s, %.1f MB/s; tumbled CPU %.0f%% of one core\n",
      static_cast<unsigned long long>(r.lines), static_cast<unsigned long long>(r.bytes), r.elapsed,
      r.send_elapsed, rate.lines_per_s / 1e6, rate.mb_per_s, 100 * cpu);

  // Let the window holding the last values end, then stop: SIGTERM emits every window whose end
  // has passed and flushes it to InfluxDB before exiting.
  const auto now = wall_ms();
  std::this_thread::sleep_for(milliseconds((now / window_ms + 1) * window_ms - now + 20));
  const int code = daemon.stop();
  const auto totals = influx_totals(http, "bench");
  const bool sum_ok = totals.sum == r.sum && !totals.saturated;
  const bool count_ok = totals.count == r.lines;
  std::cout << fmt(
      "tumbled exit %d; accepted %s values. InfluxDB: %llu windows, sum %s (sum(sum) "
      "%s), count %llu; sent: sum %s, count %llu -> %s\n",
      code, values_accepted_from_log(daemon.log_text()).c_str(),
      static_cast<unsigned long long>(totals.windows), to_string(totals.sum).c_str(),
      totals.influx_sum.c_str(), static_cast<unsigned long long>(totals.count),
      to_string(r.sum).c_str(), static_cast<unsigned long long>(r.lines),
      sum_ok && count_ok && code == 0 ? "EXACT" : "MISMATCH");

  if (ceiling_rate) {
    result_row(label, "ceiling integers/s (newline count)",
               fmt("%.2f M", ceiling_rate->lines_per_s / 1e6),
               fmt("%.1f MB/s", ceiling_rate->mb_per_s));
  }
  result_row(label, "tumbled integers/s", fmt("%.2f M", rate.lines_per_s / 1e6),
             fmt("%.1f MB/s, tumbled CPU %.0f%%", rate.mb_per_s, 100 * cpu));
  if (ceiling_rate) {
    result_row(label, "tumbled / ceiling",
               fmt("%.2f", rate.lines_per_s / ceiling_rate->lines_per_s));
  }
  result_row(
      label, "sum in InfluxDB == sum sent", sum_ok && count_ok && code == 0 ? "yes" : "NO",
      fmt("%llu windows, %llu values, sum %s", static_cast<unsigned long long>(totals.windows),
          static_cast<unsigned long long>(totals.count), to_string(totals.sum).c_str()));
  print_result_rows();
  return sum_ok && count_ok && code == 0 ? 0 : 1;
}

}  // namespace tumbled::bench
