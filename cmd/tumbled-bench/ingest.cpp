// tumbled-bench ingest: lines/s and MB/s that one tumbled reads from TCP, next to the ceiling of
// the same loopback stream read by a thread that only counts newlines, then a check of what the
// daemon made of them.
//
// --format integers (default): one integer per line (payload.hpp); the check is that the sum
// InfluxDB ends up with equals the sum sent. --payload small (default), uniform6, int64 or crlf
// picks the shape of the integers (make_integer_payload), a comma-separated list or `all` runs
// several, each one beside its own ceiling (measured on that payload just before each run).
//
// --format line_protocol --keys N: line protocol with N keys (payload.hpp), into a pipeline with
// `source.format: line_protocol`, `precision: s`, event-time windows of 1h, group_by
// [stream, isp], fields [bytes], aggregates [sum, count, max]. The timestamps all lie in the
// previous hour, so every line of a run falls into one window and the open (key, window) pairs
// are the keys: each connection sends the payload at least once, so every key is seen. Besides
// the rates: the RSS of tumbled after the run minus before it, divided by tumbled_open_keys from
// its /metrics (RSS per open pair), and checks that tumbled_lines_accepted_total equals the lines
// sent, nothing was rejected and tumbled_open_keys equals the keys. Up to --check-keys keys, one
// more line with a current timestamp then moves the watermark past the window, which is emitted,
// and InfluxDB must hold one point per key with exactly the sum, count and max sent for it.
//
// --threads T (integers): source.tcp.threads; a comma-separated list measures each in turn, each
// beside its own ceiling. Besides the rates: tumbled's CPU-seconds per 10^9 lines, a figure that
// does not depend on how many cores the machine has.
//
// --runs R repeats ceiling and daemon run R times (a fresh tumbled and database each time) and
// reports the median and range of each figure.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <optional>
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

// The count in the daemon's "pipeline bench stopped: N lines accepted, ..." (older: "N values").
std::string values_accepted_from_log(const std::string& log) {
  auto at = log.find(" lines accepted");
  if (at == std::string::npos) at = log.find(" values accepted");
  if (at == std::string::npos) return "?";
  auto begin = log.rfind(' ', at - 1);
  return log.substr(begin + 1, at - begin - 1);
}

// One figure over the runs: the value itself for one run, else "median (min-max)".
std::string figure(std::vector<double> v, const char* format, double scale = 1) {
  for (double& x : v) x *= scale;
  std::sort(v.begin(), v.end());
  const double median =
      v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  std::string text = fmt(format, median);
  if (v.size() > 1) text += " (" + fmt(format, v.front()) + " - " + fmt(format, v.back()) + ")";
  return text;
}

// The ceiling: the same chunks over the same connections into NewlineCounter.
Rate measure_ceiling(const Payload& payload, const std::vector<Chunk>& chunks, int connections,
                     double seconds, std::uint64_t min_lines, const char* unit) {
  NewlineCounter counter;
  counter.start(connections);
  const auto r =
      send_payload(payload, chunks, counter.port(), connections, seconds, 0, nullptr, min_lines);
  const auto counted = counter.join();
  const Rate rate = rate_of(r);
  std::cout << fmt(
      "ceiling (memchr newline counter, 1 thread): %llu lines in %.2f s: %.3f M "
      "%s/s, %.1f MB/s%s\n",
      static_cast<unsigned long long>(r.lines), r.elapsed, rate.lines_per_s / 1e6, unit,
      rate.mb_per_s, counted == r.lines ? "" : " (COUNT MISMATCH)");
  if (counted != r.lines) throw std::runtime_error("the newline counter lost lines");
  return rate;
}

struct Settings {
  std::string binary;
  int connections = 1;
  std::size_t threads = 1;
  double seconds = 5;
  std::int64_t window_ms = 1000;
  std::uint64_t check_keys = 10'000;
  std::string perf_output;
};

// What one run of the daemon gave.
struct Run {
  Rate rate{};
  double cpu = 0;                // share of one core
  double cpu_seconds_per_g = 0;  // CPU-seconds per 10^9 lines
  bool ok = false;
  std::string check_note;  // integers: what InfluxDB holds
  // line_protocol
  double rss_before_mib = 0, rss_after_mib = 0, hwm_mib = 0;
  double open_pairs = 0;
  double rss_per_pair = 0;                     // bytes
  double checkpoint_s = 0, checkpoint_mb = 0;  // longest checkpoint seen during the send
  bool influx_checked = false;
};

// integers: rate into tumbled, then the sum in InfluxDB against the sum sent.
Run run_integers(const Settings& s, const Payload& payload, const std::vector<Chunk>& chunks,
                 test::InfluxServer& influx, KeepAliveHttp& http, const std::string& db,
                 const std::string& perf_output) {
  create_database(http, db);
  test::TempDir dir("tumbled-bench-ingest-");
  TumbledSpec spec;
  spec.binary = s.binary;
  spec.influx_port = influx.port();
  spec.database = db;
  spec.window = std::to_string(s.window_ms) + "ms";
  spec.tcp_threads = s.threads;
  Tumbled daemon(spec, dir.path());

  PerfRecorder perf(perf_output, daemon.pid(), dir.path());
  const auto before = sample_proc(daemon.pid());
  const auto r = send_payload(payload, chunks, daemon.port(), s.connections, s.seconds);
  const auto after = sample_proc(daemon.pid());
  perf.stop();
  Run run;
  run.rate = rate_of(r);
  run.cpu = (after.cpu_seconds - before.cpu_seconds) / r.elapsed;
  run.cpu_seconds_per_g = (after.cpu_seconds - before.cpu_seconds) / double(r.lines) * 1e9;
  std::cout << fmt(
      "tumbled: %llu lines, %llu bytes in %.2f s (last write at %.2f s): %.3f M "
      "integers/s, %.1f MB/s; tumbled CPU %.0f%% of one core, %.1f CPU-s per 10^9 lines\n",
      static_cast<unsigned long long>(r.lines), static_cast<unsigned long long>(r.bytes), r.elapsed,
      r.send_elapsed, run.rate.lines_per_s / 1e6, run.rate.mb_per_s, 100 * run.cpu,
      run.cpu_seconds_per_g);

  // Let the window holding the last values end, then stop: SIGTERM emits every window whose end
  // has passed and flushes it to InfluxDB before exiting.
  const auto now = wall_ms();
  std::this_thread::sleep_for(milliseconds((now / s.window_ms + 1) * s.window_ms - now + 20));
  const int code = daemon.stop();
  const auto totals = influx_totals(http, db);
  const bool sum_ok = totals.sum == r.sum && !totals.saturated;
  const bool count_ok = totals.count == r.lines;
  run.ok = sum_ok && count_ok && code == 0;
  std::cout << fmt(
      "tumbled exit %d; accepted %s values. InfluxDB: %llu windows, sum %s (sum(sum) "
      "%s), count %llu; sent: sum %s, count %llu -> %s\n",
      code, values_accepted_from_log(daemon.log_text()).c_str(),
      static_cast<unsigned long long>(totals.windows), to_string(totals.sum).c_str(),
      totals.influx_sum.c_str(), static_cast<unsigned long long>(totals.count),
      to_string(r.sum).c_str(), static_cast<unsigned long long>(r.lines),
      run.ok ? "EXACT" : "MISMATCH");
  run.check_note =
      fmt("%llu windows, %llu values, sum %s", static_cast<unsigned long long>(totals.windows),
          static_cast<unsigned long long>(totals.count), to_string(totals.sum).c_str());
  return run;
}

// ---------------------------------------------------------------------------------------------
// line_protocol

struct KeyTotals {
  Int128 sum = 0;
  std::uint64_t count = 0;
  std::int64_t max = 0;
  void add(std::int64_t v) {
    max = count == 0 ? v : std::max(max, v);
    sum += v;
    ++count;
  }
};

// For each line of `bytes` (whole lines of a line-protocol payload): f(key, value).
template <class F>
void for_each_line(std::string_view bytes, F&& f) {
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    std::uint64_t key = 0;
    std::int64_t value = 0;
    if (!parse_line_protocol_line(bytes.substr(0, newline), key, value)) {
      throw std::logic_error("not a payload line: " + std::string(bytes.substr(0, newline)));
    }
    f(key, value);
    bytes.remove_prefix(newline + 1);
  }
}

// What each key was sent: every connection sent the payload `lines / payload.lines` times, then
// the first `lines % payload.lines` lines of it.
std::vector<KeyTotals> sent_per_key(const Payload& payload,
                                    const std::vector<std::uint64_t>& connection_lines) {
  std::vector<KeyTotals> pass(payload.keys), sent(payload.keys);
  for_each_line(payload.bytes, [&](std::uint64_t k, std::int64_t v) { pass[k].add(v); });
  for (const std::uint64_t lines : connection_lines) {
    const std::uint64_t passes = lines / payload.lines;
    if (passes > 0) {
      for (std::size_t k = 0; k < sent.size(); ++k) {
        sent[k].max = sent[k].count == 0 ? pass[k].max : std::max(sent[k].max, pass[k].max);
        sent[k].sum += pass[k].sum * Int128(passes);
        sent[k].count += pass[k].count * passes;
      }
    }
    std::uint64_t rest = lines % payload.lines;
    std::size_t end = 0;
    for (; rest > 0; --rest) end = payload.bytes.find('\n', end) + 1;
    for_each_line(std::string_view(payload.bytes).substr(0, end),
                  [&](std::uint64_t k, std::int64_t v) { sent[k].add(v); });
  }
  return sent;
}

std::string unquote(const std::string& json_text) {
  return json_text.size() >= 2 && json_text.front() == '"'
             ? json_text.substr(1, json_text.size() - 2)
             : json_text;
}

// Compares the points InfluxDB holds in measurement cdn with what each key was sent; returns ""
// or what differs first.
std::string compare_with_influx(KeepAliveHttp& http, const std::string& db,
                                const std::vector<KeyTotals>& sent) {
  const auto rows = query_rows(
      http, db,
      "SELECT \"bytes_sum\", \"bytes_count\", \"bytes_max\", \"stream\", \"isp\" FROM cdn");
  if (rows.rows.size() != sent.size()) {
    return fmt("%zu points in InfluxDB for %zu keys", rows.rows.size(), sent.size());
  }
  std::vector<bool> seen(sent.size());
  for (const auto& row : rows.rows) {
    // time, bytes_sum, bytes_count, bytes_max, stream, isp
    const std::string stream = unquote(row.at(4));
    const std::uint64_t k = std::stoull(stream.substr(1));
    if (stream[0] != 's' || k >= sent.size() || seen[k]) return "unexpected stream " + stream;
    seen[k] = true;
    const KeyTotals& want = sent[k];
    const std::string got = row.at(1) + "/" + row.at(2) + "/" + row.at(3) + " isp " + row.at(5);
    const std::string expected = to_string(want.sum) + "/" + std::to_string(want.count) + "/" +
                                 std::to_string(want.max) + " isp \"i" + std::to_string(k % 50) +
                                 "\"";
    if (got != expected) {
      return "key " + stream + ": InfluxDB sum/count/max " + got + ", sent " + expected;
    }
  }
  return "";
}

std::uint64_t count_points(KeepAliveHttp& http, const std::string& db) {
  const auto rows = query_rows(http, db, "SELECT count(\"bytes_count\") FROM cdn");
  return rows.rows.empty() ? 0 : std::stoull(rows.rows.at(0).at(1));
}

Run run_line_protocol(const Settings& s, const Payload& payload, const std::vector<Chunk>& chunks,
                      test::InfluxServer& influx, KeepAliveHttp& http, const std::string& db,
                      const std::string& perf_output) {
  create_database(http, db);
  test::TempDir dir("tumbled-bench-ingest-");
  TumbledSpec spec;
  spec.binary = s.binary;
  spec.influx_port = influx.port();
  spec.database = db;
  spec.window = "1h";
  spec.aggregates = "[sum, count, max]";
  spec.source_extra = "format: line_protocol, precision: s";
  // No idle timeout: only event time moves the watermark, so a daemon busy for a while (a big
  // checkpoint) cannot close the window under the run's lines.
  spec.window_extra =
      fmt("time: event, group_by: [stream, isp], fields: [bytes], idle_timeout: 0, max_keys: %llu",
          static_cast<unsigned long long>(payload.keys + 1000));
  spec.point = "";  // line_protocol's defaults: each line's measurement, no static tags
  spec.metrics = true;
  Tumbled daemon(spec, dir.path());
  std::this_thread::sleep_for(milliseconds(500));  // settled after start-up

  // The longest checkpoint (tumbled_last_checkpoint_duration_seconds) seen while sending: with
  // many keys each one writes every pair changed since the one before.
  std::atomic<bool> sending{true};
  double checkpoint_s = 0, checkpoint_bytes = 0, checkpoints_before = 0, checkpoints_after = 0;
  std::exception_ptr poll_error;
  std::thread poller([&] {
    try {
      for (bool first = true; sending.load(); first = false) {
        const auto m = scrape_metrics(daemon.metrics_port());
        const double duration = pipeline_metric(m, "tumbled_last_checkpoint_duration_seconds");
        if (duration > checkpoint_s) {
          checkpoint_s = duration;
          checkpoint_bytes = pipeline_metric(m, "tumbled_last_checkpoint_bytes");
        }
        checkpoints_after = pipeline_metric(m, "tumbled_checkpoints_total");
        if (first) checkpoints_before = checkpoints_after;
        std::this_thread::sleep_for(milliseconds(250));
      }
    } catch (...) {
      poll_error = std::current_exception();
    }
  });
  PerfRecorder perf(perf_output, daemon.pid(), dir.path());
  const auto before = sample_proc(daemon.pid());
  SendResult r;
  try {
    r = send_payload(payload, chunks, daemon.port(), s.connections, s.seconds, 0, nullptr,
                     payload.lines);
  } catch (...) {
    sending = false;
    poller.join();
    throw;
  }
  const auto after_send = sample_proc(daemon.pid());
  sending = false;
  poller.join();
  perf.stop();
  if (poll_error) std::rethrow_exception(poll_error);
  // The RSS once a checkpoint has saved every pair the run touched (checkpoint_interval 1s).
  std::this_thread::sleep_for(milliseconds(1500));
  const auto after = sample_proc(daemon.pid());
  const auto metrics = scrape_metrics(daemon.metrics_port());
  const double accepted = pipeline_metric(metrics, "tumbled_lines_accepted_total");
  double rejected = 0;
  for (const auto& [name, value] : metrics) {
    if (name.starts_with("tumbled_lines_rejected_total{pipeline=\"bench\"")) rejected += value;
  }

  Run run;
  run.rate = rate_of(r);
  run.cpu = (after_send.cpu_seconds - before.cpu_seconds) / r.elapsed;
  run.open_pairs = pipeline_metric(metrics, "tumbled_open_keys");
  run.rss_before_mib = double(before.rss_kib) / 1024;
  run.rss_after_mib = double(after.rss_kib) / 1024;
  run.hwm_mib = double(after.hwm_kib) / 1024;
  run.rss_per_pair =
      (double(after.rss_kib) - double(before.rss_kib)) * 1024 / std::max(run.open_pairs, 1.0);
  std::cout << fmt(
      "tumbled: %llu lines, %llu bytes in %.2f s (last write at %.2f s): %.3f M "
      "lines/s, %.1f MB/s; tumbled CPU %.0f%% of one core\n",
      static_cast<unsigned long long>(r.lines), static_cast<unsigned long long>(r.bytes), r.elapsed,
      r.send_elapsed, run.rate.lines_per_s / 1e6, run.rate.mb_per_s, 100 * run.cpu);
  std::cout << fmt(
      "tumbled RSS %.1f MiB before, %.1f MiB at the end of the send, %.1f MiB 1.5 s later (peak "
      "%.1f MiB); %.0f open (key, window) pairs: %.0f bytes of RSS per pair\n",
      run.rss_before_mib, double(after_send.rss_kib) / 1024, run.rss_after_mib, run.hwm_mib,
      run.open_pairs, run.rss_per_pair);
  run.checkpoint_s = checkpoint_s;
  run.checkpoint_mb = checkpoint_bytes / 1e6;
  std::cout << fmt(
      "checkpoints during the send: %.0f, the longest seen %.1f ms (write batch %.1f MB)\n",
      checkpoints_after - checkpoints_before, checkpoint_s * 1e3, checkpoint_bytes / 1e6);
  bool ok = accepted == double(r.lines) && rejected == 0 && run.open_pairs == double(payload.keys);
  std::cout << fmt(
      "/metrics: %.0f lines accepted (sent %llu), %.0f rejected, %.0f open pairs (keys %llu) -> "
      "%s\n",
      accepted, static_cast<unsigned long long>(r.lines), rejected, run.open_pairs,
      static_cast<unsigned long long>(payload.keys), ok ? "OK" : "MISMATCH");

  std::string influx_problem;
  if (payload.keys <= s.check_keys) {
    // A line a little ahead of the wall clock moves the watermark past the end of the run's
    // window (the previous hour): its points are emitted and written.
    run.influx_checked = true;
    const auto t0 = Clock::now();
    send_text(daemon.port(),
              fmt("flush bytes=0i %lld\n", static_cast<long long>(wall_ms() / 1000 + 30)));
    const bool written = test::wait_until([&] { return count_points(http, db) >= payload.keys; },
                                          test::hang_guard(), milliseconds(50));
    const double emit_s = seconds_since(t0);
    const int code = daemon.stop();
    influx_problem = written
                         ? compare_with_influx(http, db, sent_per_key(payload, r.connection_lines))
                         : fmt("only %llu points in InfluxDB",
                               static_cast<unsigned long long>(count_points(http, db)));
    if (code != 0) influx_problem += fmt(" tumbled exit %d", code);
    std::cout << fmt(
        "InfluxDB after the watermark passed the window (%.2f s): %llu points, per-key sum, count "
        "and max %s\n",
        emit_s, static_cast<unsigned long long>(count_points(http, db)),
        influx_problem.empty() ? "EXACT" : ("MISMATCH: " + influx_problem).c_str());
  } else {
    const int code = daemon.stop();
    if (code != 0) influx_problem = fmt("tumbled exit %d", code);
    std::cout << fmt("tumbled exit %d (points not emitted: more keys than --check-keys %llu)\n",
                     code, static_cast<unsigned long long>(s.check_keys));
  }
  run.ok = ok && influx_problem.empty();
  return run;
}

}  // namespace

int run_ingest(const Options& options) {
  Settings s;
  s.binary = options.get("tumbled", TUMBLED_DEFAULT_BINARY);
  const auto port = static_cast<std::uint16_t>(options.get_int("port", 0));
  s.connections = static_cast<int>(options.get_int("connections", 1));
  s.seconds = options.get_double("seconds", 5);
  const auto format = options.get("format", "integers");
  const bool keyed = format == "line_protocol";
  if (!keyed && format != "integers") {
    throw std::invalid_argument("--format must be integers or line_protocol");
  }
  if (!keyed && (options.has("keys") || options.has("check-keys"))) {
    throw std::invalid_argument("--keys and --check-keys go with --format line_protocol");
  }
  if (keyed && options.has("window-ms")) {
    throw std::invalid_argument(
        "--format line_protocol uses 1h event-time windows, no --window-ms");
  }
  const auto keys = static_cast<std::uint64_t>(options.get_int("keys", 1));
  s.check_keys = static_cast<std::uint64_t>(options.get_int("check-keys", 10'000));
  const auto payload_mib = static_cast<std::size_t>(options.get_int("payload-mib", 16));
  s.window_ms = options.get_int("window-ms", 1000);
  s.perf_output = options.get("perf", "");
  const bool ceiling = !options.has("no-ceiling");
  const int runs = static_cast<int>(options.get_int("runs", 1));
  std::vector<IntegerShape> shapes;
  if (!keyed) {
    std::vector<std::string> names = options.get_list("payload", "small");
    if (names == std::vector<std::string>{"all"}) names = {"small", "uniform6", "int64", "crlf"};
    if (names.empty()) throw std::invalid_argument("--payload names no shape");
    for (const auto& n : names) shapes.push_back(integer_shape(n));
  } else if (options.has("payload")) {
    throw std::invalid_argument("--payload goes with --format integers");
  }
  std::vector<std::size_t> thread_counts;
  for (const int n : options.get_int_list("threads", "1")) {
    if (n < 1) throw std::invalid_argument("--threads must be at least 1");
    thread_counts.push_back(static_cast<std::size_t>(n));
  }
  if (thread_counts.empty()) throw std::invalid_argument("--threads names no count");
  if (keyed && (thread_counts.size() > 1 || thread_counts.front() != 1)) {
    throw std::invalid_argument("--threads goes with --format integers");
  }
  options.check_all_used();
  if (runs < 1 || keys < 1 || s.connections < 1) {
    throw std::invalid_argument("--runs, --keys and --connections must be at least 1");
  }
  if (port != 0 && shapes.size() > 1) {
    throw std::invalid_argument("--port sends one payload: give --payload one shape");
  }

  const char* const unit = keyed ? "lines" : "integers";
  std::optional<test::InfluxServer> influx;
  std::optional<KeepAliveHttp> http;
  bool all_ok = true;

  // One payload: its runs (ceiling, then a fresh tumbled, each time) and its result rows.
  const auto measure = [&](const Payload& payload, const std::string& label,
                           const std::string& db_prefix, bool first) {
    const auto chunks = payload.chunks(64 * 1024);
    std::cout << payload.describe() << "\n";
    if (port != 0) {
      // Plain load generator against a daemon someone else runs.
      const auto r = send_payload(payload, chunks, port, s.connections, s.seconds);
      const auto rate = rate_of(r);
      std::cout << fmt(
          "sent %llu lines, %llu bytes in %.2f s: %.3f M %s/s, %.1f MB/s; sum "
          "sent %s\n",
          static_cast<unsigned long long>(r.lines), static_cast<unsigned long long>(r.bytes),
          r.elapsed, rate.lines_per_s / 1e6, unit, rate.mb_per_s, to_string(r.sum).c_str());
      result_row(label, std::string(unit) + "/s (port " + std::to_string(port) + ")",
                 fmt("%.2f M", rate.lines_per_s / 1e6), fmt("%.1f MB/s", rate.mb_per_s));
      return;
    }
    if (!influx) {
      influx.emplace();
      http.emplace("127.0.0.1", influx->port());
    }
    std::vector<double> ceiling_lines, ceiling_mb, lines, mb, cpu, cpu_per_g, ratio, rss_per_pair,
        rss_after, pairs, checkpoint_s, checkpoint_mb;
    bool ok = true, influx_checked = false;
    std::string check_note;
    for (int i = 0; i < runs; ++i) {
      if (runs > 1) std::cout << fmt("-- %s: run %d of %d\n", label.c_str(), i + 1, runs);
      std::optional<Rate> ceiling_rate;
      if (ceiling) {
        ceiling_rate = measure_ceiling(payload, chunks, s.connections, s.seconds,
                                       keyed ? payload.lines : 0, unit);
        ceiling_lines.push_back(ceiling_rate->lines_per_s);
        ceiling_mb.push_back(ceiling_rate->mb_per_s);
      }
      const std::string db = i == 0 ? db_prefix : fmt("%s_%d", db_prefix.c_str(), i + 1);
      const std::string perf_output = i == 0 && first ? s.perf_output : "";
      const Run run = keyed ? run_line_protocol(s, payload, chunks, *influx, *http, db, perf_output)
                            : run_integers(s, payload, chunks, *influx, *http, db, perf_output);
      lines.push_back(run.rate.lines_per_s);
      mb.push_back(run.rate.mb_per_s);
      cpu.push_back(100 * run.cpu);
      cpu_per_g.push_back(run.cpu_seconds_per_g);
      if (ceiling_rate) ratio.push_back(run.rate.lines_per_s / ceiling_rate->lines_per_s);
      rss_per_pair.push_back(run.rss_per_pair);
      rss_after.push_back(run.rss_after_mib - run.rss_before_mib);
      pairs.push_back(run.open_pairs);
      checkpoint_s.push_back(run.checkpoint_s);
      checkpoint_mb.push_back(run.checkpoint_mb);
      ok = ok && run.ok;
      influx_checked = run.influx_checked;
      check_note = run.check_note;
    }
    all_ok = all_ok && ok;

    const std::string over = runs > 1 ? fmt("; median (range) of %d runs", runs) : "";
    if (ceiling) {
      result_row(label, std::string("ceiling ") + unit + "/s (newline count)",
                 figure(ceiling_lines, "%.2f M", 1e-6), figure(ceiling_mb, "%.1f MB/s") + over);
    }
    result_row(label, std::string("tumbled ") + unit + "/s", figure(lines, "%.2f M", 1e-6),
               figure(mb, "%.1f MB/s") + ", tumbled CPU " + figure(cpu, "%.0f%%") + over);
    if (!keyed) {
      result_row(label, "tumbled CPU-seconds per 10^9 integers", figure(cpu_per_g, "%.1f"),
                 over.empty() ? "" : over.substr(2));
    }
    if (ceiling)
      result_row(label, "tumbled / ceiling", figure(ratio, "%.2f"),
                 over.empty() ? "" : over.substr(2));
    if (keyed) {
      result_row(label, "RSS per open (key, window) pair", figure(rss_per_pair, "%.0f B"),
                 "RSS after - before: " + figure(rss_after, "%.1f MiB") + ", open pairs " +
                     figure(pairs, "%.0f") + over +
                     (keys < 100'000 ? "; below ~100k pairs fixed costs dominate (RocksDB "
                                       "memtable of the checkpoints, buffers)"
                                     : ""));
      result_row(label, "longest checkpoint seen during the send",
                 figure(checkpoint_s, "%.1f ms", 1e3),
                 "write batch " + figure(checkpoint_mb, "%.1f MB") + over);
      result_row(label,
                 influx_checked
                     ? "all lines accepted, pairs == keys, InfluxDB per-key sum/count/max == sent"
                     : "all lines accepted, pairs == keys (/metrics)",
                 ok ? "yes" : "NO", runs > 1 ? fmt("every one of %d runs", runs) : "");
    } else if (runs == 1) {
      result_row(label, "sum in InfluxDB == sum sent", ok ? "yes" : "NO", check_note);
    } else {
      result_row(label, "sum in InfluxDB == sum sent", ok ? "yes" : "NO",
                 fmt("every one of %d runs", runs));
    }
  };

  if (keyed) {
    // Timestamps in the previous hour, so the run's window is over by the wall clock and a line
    // with a current timestamp closes it.
    const Payload payload =
        make_line_protocol_payload(payload_mib << 20, keys, wall_ms() / 3'600'000 * 3600 - 3600);
    measure(payload,
            fmt("ingest line_protocol, %llu key%s, %d conn", static_cast<unsigned long long>(keys),
                keys == 1 ? "" : "s", s.connections),
            "bench", true);
  } else {
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      // One payload in memory at a time.
      const Payload payload = make_integer_payload(shapes[i], payload_mib << 20, s.connections);
      for (const std::size_t threads : thread_counts) {
        s.threads = threads;
        const std::string with_threads =
            thread_counts.size() > 1 || threads > 1 ? fmt(", %zu threads", threads) : "";
        measure(payload,
                fmt("ingest %s, %d conn%s", name(shapes[i]), s.connections, with_threads.c_str()),
                fmt("bench_%s_%zu", name(shapes[i]), threads),
                i == 0 && threads == thread_counts.front());
      }
    }
  }
  print_result_rows();
  return all_ok ? 0 : 1;
}

}  // namespace tumbled::bench
