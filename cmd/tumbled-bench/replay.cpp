// tumbled-bench replay: how fast tumbled drains a backlog. 1,000,000 distinct window-like points
// are written as unsent points into a state store (store::CheckpointStore, as the daemon would
// after an outage); tumbled is started on it with InfluxDB up, and the time from its listening
// until InfluxDB has acknowledged every point (tumbled's /metrics, polled every --poll-ms; InfluxDB
// must then hold them all) gives points/s. In the same run a plain bulk writer posts the same line
// protocol in bodies of --plain-batch points (5000) over one keep-alive connection to the same
// influxd (other databases), one request at a time; tumbled runs with its own batch_size and
// max_batch_size unless --batch-size or --max-batch-size say otherwise. After an untimed warm-up
// pass, plain writer and tumbled alternate (--runs, 3 by default); the median and range of the runs
// are reported, with tumbled / plain for each run.
#include <algorithm>
#include <deque>
#include <iostream>
#include <random>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "bench_common.hpp"
#include "sink/line_protocol.hpp"
#include "store/checkpoint_store.hpp"
#include "subcommands.hpp"

namespace tumbled::bench {

namespace {

std::uint64_t count_points(KeepAliveHttp& http, const std::string& db, const std::string& where) {
  const auto rows = query_rows(http, db, "SELECT count(\"sum\") FROM records" + where);
  return rows.rows.empty() ? 0 : std::stoull(rows.rows.at(0).at(1));
}

}  // namespace

int run_replay(const Options& options) {
  const auto binary = options.get("tumbled", TUMBLED_DEFAULT_BINARY);
  const auto points = static_cast<std::size_t>(options.get_int("points", 1'000'000));
  const auto batch_size = options.get("batch-size", "");          // "" = tumbled's default
  const auto max_batch_size = options.get("max-batch-size", "");  // "" = tumbled's default
  const auto plain_batch = static_cast<std::size_t>(options.get_int("plain-batch", 5'000));
  const auto poll_ms = options.get_int("poll-ms", 5);
  const int rounds = static_cast<int>(options.get_int("runs", 3));
  const auto perf_output = options.get("perf", "");  // profile tumbled's first replay
  options.check_all_used();
  if (points < 1 || plain_batch < 1 || rounds < 1) {
    throw std::invalid_argument("--points, --plain-batch and --runs must be >= 1");
  }

  // The backlog: points of 10 ms windows ending in the past, as tumbled would encode them.
  std::deque<sink::QueuedPoint> backlog;
  const std::map<std::string, std::string> tags{{"window", "10ms"}};
  const std::int64_t first_ts = (wall_ms() / 1000) * 1000 - std::int64_t(points) * 10 - 60'000;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::int64_t> sums(-5'000'000'000, 5'000'000'000);
  std::uniform_int_distribution<std::int64_t> counts(1, 20'000);
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < points; ++i) {
    std::string line;
    sink::append_point(line, "records", tags, {{"sum", sums(rng)}, {"count", counts(rng)}},
                       first_ts + std::int64_t(i) * 10);
    bytes += line.size();
    backlog.push_back({i + 1, 0, std::move(line)});
  }
  const std::int64_t last_ts = first_ts + std::int64_t(points - 1) * 10;
  std::cout << fmt("backlog: %zu points, %.1f MB of line protocol, e.g. %s", points,
                   double(bytes) / 1e6, backlog.front().line.c_str());

  // One prepared state store per tumbled run.
  std::vector<std::unique_ptr<test::TempDir>> dirs;
  for (int r = 0; r < rounds; ++r) {
    dirs.push_back(std::make_unique<test::TempDir>("tumbled-bench-replay-"));
    const auto store =
        store::CheckpointStore::open(Tumbled::state_dir_of(dirs.back()->path()).string());
    const std::map<window::TimeMs, window::WindowAccumulator> no_windows;
    const auto t0 = Clock::now();
    const auto error = store->save(
        "bench",
        {.open_windows = no_windows, .points = backlog, .saved_below = 1, .next_seq = points + 1});
    if (error) throw std::runtime_error("writing the backlog: " + *error);
    std::cout << fmt("wrote the backlog into a state store in %.2f s (one checkpoint)\n",
                     seconds_since(t0));
  }

  // Plain bulk writer: the same line protocol in bodies of plain_batch points, one keep-alive
  // connection, one request at a time, as tumbled sends.
  std::vector<std::string> bodies;
  for (std::size_t i = 0; i < points; i += plain_batch) {
    std::string body;
    for (std::size_t j = i; j < std::min(points, i + plain_batch); ++j) body += backlog[j].line;
    bodies.push_back(std::move(body));
  }
  backlog.clear();

  test::InfluxServer influx;
  KeepAliveHttp http("127.0.0.1", influx.port());

  const auto plain = [&](const std::string& db) {
    create_database(http, db);
    KeepAliveHttp writer("127.0.0.1", influx.port());
    const auto t0 = Clock::now();
    for (const auto& body : bodies) {
      const auto res = writer.post("/write?db=" + db + "&precision=ms", body);
      if (res.status != 204)
        throw std::runtime_error("plain write: HTTP " + std::to_string(res.status) + " " +
                                 res.body);
    }
    const double seconds = seconds_since(t0);
    const auto n = count_points(http, db, "");
    std::cout << fmt(
        "plain bulk writer into %s: %zu requests in %.2f s: %.0f points/s (%llu points in "
        "InfluxDB, %llu connections)\n",
        db.c_str(), bodies.size(), seconds, double(points) / seconds,
        static_cast<unsigned long long>(n), static_cast<unsigned long long>(writer.connects()));
    if (n != points) throw std::runtime_error("plain writer: InfluxDB holds " + std::to_string(n));
    return seconds;
  };

  bool complete = true;
  const std::string last_point = " WHERE time >= " + std::to_string(last_ts) + "ms";
  const auto replay = [&](const std::string& db, const std::filesystem::path& dir) {
    create_database(http, db);
    TumbledSpec spec;
    spec.binary = binary;
    spec.influx_port = influx.port();
    spec.database = db;
    spec.batch_size = batch_size;
    spec.max_batch_size = max_batch_size;
    spec.metrics = true;
    Tumbled daemon(spec, dir);
    const auto ready = Clock::now();  // listening: the store is loaded and the replay under way
    const double cpu_at_ready = sample_proc(daemon.pid()).cpu_seconds;
    PerfRecorder perf(db.ends_with("_1") ? perf_output : "", daemon.pid(), dir);
    const double startup = std::chrono::duration<double>(ready - daemon.started_at()).count();
    // Done when tumbled has seen InfluxDB acknowledge every point, as the plain writer is done
    // with its last 204: read from tumbled's /metrics, so that waiting puts no queries on influxd
    // while it takes the writes. InfluxDB's count is checked afterwards.
    double requests = 0, request_seconds = 0;
    for (;;) {
      const auto m = scrape_metrics(daemon.metrics_port());
      if (pipeline_metric(m, "tumbled_points_written_total") >= double(points)) {
        requests = pipeline_metric(m, "tumbled_batches_sent_total");
        request_seconds = pipeline_metric(m, "tumbled_write_duration_seconds_sum");
        break;
      }
      if (!daemon.running()) throw std::runtime_error("tumbled exited: " + daemon.log_text());
      if (seconds_since(ready) > 600) throw std::runtime_error("replay not done after 600 s");
      std::this_thread::sleep_for(milliseconds(poll_ms));
    }
    const double seconds = seconds_since(ready);
    const auto cpu = sample_proc(daemon.pid()).cpu_seconds;
    perf.stop();
    const auto n = count_points(http, db, "");
    const bool last_readable = count_points(http, db, last_point) == 1;
    const int code = daemon.stop();
    complete = complete && n == points && last_readable && code == 0;
    std::cout << fmt(
        "tumbled into %s: started and loaded the store in %.2f s, then sent %zu points in %.2f "
        "s: %.0f points/s (%.0f counting start-up) in %.0f requests (%.0f points each, %.2f s "
        "in requests); %llu points in InfluxDB; tumbled used %.2f s CPU (%.2f s after "
        "start-up); exit %d\n",
        db.c_str(), startup, points, seconds, double(points) / seconds,
        double(points) / (seconds + startup), requests, double(points) / std::max(requests, 1.0),
        request_seconds, static_cast<unsigned long long>(n), cpu, cpu - cpu_at_ready, code);
    return std::tuple{seconds, startup, requests};
  };

  // influxd is slower on its first writes: one untimed pass into a database of its own, then
  // plain and tumbled alternate, each run into a fresh database of the same influxd.
  plain("replay_warmup");
  std::vector<double> plain_rates, daemon_rates, ratios;
  double startup = 0, requests = 0;
  for (int r = 0; r < rounds; ++r) {
    std::cout << fmt("-- run %d of %d\n", r + 1, rounds);
    plain_rates.push_back(double(points) / plain("replay_plain_" + std::to_string(r + 1)));
    const auto [seconds, start, sent] =
        replay("replay_daemon_" + std::to_string(r + 1), dirs[r]->path());
    daemon_rates.push_back(double(points) / seconds);
    ratios.push_back(daemon_rates.back() / plain_rates.back());
    startup = std::max(startup, start);
    requests = std::max(requests, sent);
  }
  const std::string tumbled_batches =
      (batch_size.empty() ? std::string("default") : batch_size) + "/" +
      (max_batch_size.empty() ? std::string("default") : max_batch_size);
  const std::string label =
      fmt("replay %zu points, tumbled batch_size/max_batch_size %s, plain %zu-point bodies", points,
          tumbled_batches.c_str(), plain_batch);
  const std::string of_runs = fmt("median (range) of %d runs", rounds);
  result_row(label, "tumbled points/s", median_and_range(daemon_rates),
             fmt("%s, from listening (start-up + store load <= %.2f s before); at most %.0f "
                 "write requests a run",
                 of_runs.c_str(), startup, requests));
  result_row(label, "plain bulk writer points/s", median_and_range(plain_rates),
             of_runs + ", one keep-alive connection");
  result_row(label, "tumbled / plain", median_and_range(ratios, 2),
             of_runs + " of each run's ratio; " +
                 (complete ? "all points in InfluxDB" : "POINTS MISSING"));
  print_result_rows();
  return complete ? 0 : 1;
}

}  // namespace tumbled::bench
