// source.http end to end: the tumbled binary serving InfluxDB's write API to real clients (the
// Python client library, curl, raw sockets), aggregating into a real influxd, read back through
// /query.
//
// Every event time lies in the past (from ten minutes ago, on 10 s boundaries) and
// window.idle_timeout is 0: only the data the tests send moves the watermark. A test closes its
// windows by sending one line of measurement `closer` far enough ahead, then waits until the
// daemon has emitted the points and InfluxDB has acknowledged them (/metrics), and compares what
// InfluxDB holds with the sums and counts computed from what was sent. Waits are on events
// (answers, counters, log lines), with the hang guard as the only deadline.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support/fault_proxy.hpp"
#include "support/http_client.hpp"
#include "support/influxd.hpp"
#include "support/tcp_feed.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;
namespace json = boost::json;
using boost::beast::http::verb;

namespace {

// The start of the tests' first window, in seconds: ten minutes ago, on a 10 s boundary.
std::int64_t past_base_s() {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return (now - 600) / 10 * 10;
}

// A pipeline "records" reading source.http (more keys in `http_extra`): event-time windows of
// [sum, count] grouped by `group_by`, the input's measurement kept, the watermark moved only by
// data (30 s behind the newest event time: no order of the tests' lines makes one late).
PipelineSpec http_spec(const std::string& http_extra = "", const std::string& group_by = "host",
                       const std::string& window = "10s",
                       const std::string& out_of_orderness = "30s") {
  PipelineSpec spec;
  spec.http = true;
  spec.http_extra = http_extra;
  spec.window = window;
  spec.aggregates = "[sum, count]";
  spec.window_extra = "time: event, group_by: [" + group_by +
                      "], idle_timeout: 0s, max_out_of_orderness: " + out_of_orderness;
  spec.point = "{measurement: \"\", tags: {}}";
  return spec;
}

// An influxd, and a tumbled reading `spec` into it (through a FaultProxy starting in
// `proxy_mode`, if given) with /metrics served, started, checkpointing every
// `checkpoint_interval` (and whenever a request waits for its commit).
struct Stack {
  InfluxServer influx;
  std::optional<FaultProxy> proxy;
  Daemon daemon;
  std::uint16_t metrics_port = 0;

  explicit Stack(PipelineSpec spec, EnvVars env = {},
                 std::optional<FaultProxy::Mode> proxy_mode = std::nullopt,
                 const std::string& checkpoint_interval = "200ms")
      : daemon({[&] {
                 if (proxy_mode) proxy.emplace(influx.port(), *proxy_mode);
                 spec.influx_port = proxy ? proxy->port() : influx.port();
                 return spec;
               }()},
               checkpoint_interval) {
    influx.create_database("telemetry");
    metrics_port = daemon.enable_http();
    daemon.set_environment(std::move(env));
    daemon.start();
  }
  std::uint16_t port() const { return daemon.pipeline().listen_port; }
  double metric(const std::string& name, const std::string& labels = "") const {
    return pipeline_metric(scrape_metrics(metrics_port), name, labels);
  }
  double requests(int code) const {
    return metric("tumbled_source_http_requests_total", ",code=\"" + std::to_string(code) + "\"");
  }
  double rejected(const std::string& reason) const {
    return metric("tumbled_lines_rejected_total", ",reason=\"" + reason + "\"");
  }
};

// Ends the test with the daemon's log unless `ok`: for waits on events that must happen.
void require(bool ok, const Daemon& daemon, const std::string& what) {
  if (!ok) FAIL("waited in vain for " << what << "; log:\n" << daemon.log_text());
}
#define AWAIT(daemon, condition) require((condition), (daemon), #condition)

HttpResponse post(std::uint16_t port, const std::string& target, std::string_view body,
                  const HttpHeaders& headers = {}) {
  return http_request(verb::post, "127.0.0.1", port, target, body, headers);
}

// One line of measurement `web`, integer field `value`, timestamp `ts` in the request's precision.
std::string web_line(const std::string& host, std::int64_t value, std::int64_t ts) {
  return "web,host=" + host + " value=" + std::to_string(value) + "i " + std::to_string(ts) + "\n";
}

// What a window holds for one key.
struct Aggregate {
  std::int64_t sum = 0;
  std::int64_t count = 0;
  bool operator==(const Aggregate&) const = default;
};
// By (tag value, window end in ms).
using Aggregates = std::map<std::pair<std::string, std::int64_t>, Aggregate>;

// Adds one value to `expected`, at `ts_ms`, in windows of `window_ms`.
void expect(Aggregates& expected, const std::string& key, std::int64_t value, std::int64_t ts_ms,
            std::int64_t window_ms = 10'000) {
  auto& a = expected[{key, (ts_ms / window_ms + 1) * window_ms}];
  a.sum += value;
  ++a.count;
}

std::string describe(const Aggregates& aggregates) {
  std::ostringstream out;
  for (const auto& [at, a] : aggregates) {
    out << "  " << at.first << " @" << at.second << ": sum " << a.sum << ", count " << a.count
        << "\n";
  }
  return out.str();
}

// `field`_sum and `field`_count of every point of `measurement`, by its `tag` and time.
Aggregates read_back(InfluxServer& influx, const std::string& measurement = "web",
                     const std::string& tag = "host", const std::string& field = "value") {
  const auto response =
      influx.query("telemetry", "SELECT " + field + "_sum, " + field + "_count FROM \"" +
                                    measurement + "\" GROUP BY \"" + tag + "\"");
  const auto& result = response.at("results").at(0).as_object();
  if (const auto* error = result.if_contains("error")) {
    throw std::runtime_error("SELECT from " + measurement + ": " + json::serialize(*error));
  }
  Aggregates out;
  const auto* series = result.if_contains("series");
  if (!series) return out;
  for (const auto& s : series->as_array()) {
    const std::string key(s.at("tags").at(tag).as_string());
    for (const auto& row : s.at("values").as_array()) {
      const auto& cells = row.as_array();
      out[{key, cells.at(0).to_number<std::int64_t>()}] = {cells.at(1).to_number<std::int64_t>(),
                                                           cells.at(2).to_number<std::int64_t>()};
    }
  }
  return out;
}

// Closes every window before `base_s` + 200 s (a line of measurement `closer` at `base_s` + 300 s
// moves the watermark past them; the pipeline's out-of-orderness must stay below 100 s), then
// waits until the closer's is the only (key, window) pair still open, and InfluxDB has
// acknowledged every point emitted.
void close_windows(Stack& stack, std::int64_t base_s, const HttpHeaders& headers = {}) {
  const auto closer =
      post(stack.port(), "/write?precision=s",
           "closer,host=closer value=0i " + std::to_string(base_s + 300) + "\n", headers);
  REQUIRE(closer.status == 204);
  AWAIT(stack.daemon, wait_until(
                          [&] {
                            return stack.metric("tumbled_open_keys") == 1 &&
                                   stack.metric("tumbled_points_waiting") == 0;
                          },
                          hang_guard(), 20ms));
}

// close_windows(), then compares what InfluxDB holds of measurement `web` with `expected`.
void check_landed(Stack& stack, std::int64_t base_s, const Aggregates& expected,
                  const HttpHeaders& headers = {}) {
  close_windows(stack, base_s, headers);
  const auto got = read_back(stack.influx);
  INFO("expected:\n" << describe(expected) << "got:\n" << describe(got));
  CHECK(got == expected);
}

// A command run to its end: its exit code (-1: still running after the hang guard) and its
// stdout and stderr together.
struct Output {
  int code = -1;
  std::string text;
};

Output run(const TempDir& dir, std::vector<std::string> argv, EnvVars env = {}) {
  static int runs = 0;
  ChildProcess child(std::move(argv), dir.path() / ("run-" + std::to_string(++runs) + ".log"),
                     std::move(env));
  return {child.wait_for(hang_guard()).value_or(-1), child.log_text()};
}

std::string write_file(const TempDir& dir, const std::string& name, const std::string& content) {
  const auto path = (dir.path() / name).string();
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
  return path;
}

// `text` compressed by the gzip command.
std::string gzipped(const TempDir& dir, const std::string& text) {
  const auto plain = write_file(dir, "plain.txt", text);
  const auto out = run(dir, {"sh", "-c", "gzip -c < '" + plain + "' > '" + plain + ".gz'"});
  if (out.code != 0) throw std::runtime_error("gzip failed: " + out.text);
  return read_file(plain + ".gz");
}

// A request made by curl: the status (0: no HTTP answer) and what curl printed (with -i: the
// response's headers and body; errors).
struct CurlAnswer {
  int status = 0;
  std::string text;
};

CurlAnswer curl(const TempDir& dir, std::vector<std::string> args) {
  std::vector<std::string> argv{
      "curl", "-sS", "-i", "--noproxy", "*", "-w", "\nstatus=%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto out = run(dir, std::move(argv));
  CurlAnswer answer{0, out.text};
  const auto at = out.text.rfind("status=");
  if (at != std::string::npos) answer.status = std::atoi(out.text.c_str() + at + 7);
  return answer;
}

}  // namespace

TEST_CASE("http source: the InfluxDB Python client and curl write, the aggregates land exactly",
          "[system][http_source]") {
  const std::string token = "client-token-5e1f";
  Stack stack(http_spec("auth: {token: \"${TUMBLED_TOKEN}\"}"), {{"TUMBLED_TOKEN", token}});
  TempDir dir("tumbled-http-client-");
  const std::int64_t base = past_base_s();
  Aggregates expected;

  // write_points() with time_precision='s', authenticated with the token as the password; the
  // second batch gzip-compressed by the client.
  const auto python =
      [&](const std::vector<std::tuple<std::string, std::int64_t, std::int64_t>>& points,
          std::vector<std::string> options) {
        json::array list;
        for (const auto& [host, value, ts] : points) {
          list.push_back(json::object{{"measurement", "web"},
                                      {"tags", json::object{{"host", host}}},
                                      {"fields", json::object{{"value", value}}},
                                      {"time", ts}});
        }
        std::vector<std::string> argv{
            "/usr/bin/python3", TUMBLED_SOURCE_DIR "/tests/system/influx_client.py",
            "--port",           std::to_string(stack.port()),
            "--precision",      "s"};
        argv.insert(argv.end(), options.begin(), options.end());
        argv.push_back(write_file(dir, "points.json", json::serialize(list)));
        return run(dir, argv);
      };
  const std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> first{
      {"a", 1, base + 1},
      {"a", 2, base + 2},
      {"a", 3, base + 3},
      {"b", 10, base + 4},
      {"b", 20, base + 12}};
  const auto written = python(first, {"--token", token});
  INFO(written.text);
  REQUIRE(written.code == 0);
  for (const auto& [host, value, ts] : first) expect(expected, host, value, ts * 1000);
  const std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> second{
      {"c", 7, base + 5}, {"c", 8, base + 15}, {"a", 4, base + 9}};
  const auto compressed = python(second, {"--token", token, "--gzip"});
  INFO(compressed.text);
  REQUIRE(compressed.code == 0);
  for (const auto& [host, value, ts] : second) expect(expected, host, value, ts * 1000);

  // Without credentials the client library reports InfluxDB's 401; nothing of it lands.
  const auto refused = python({{"z", 99, base + 1}}, {});
  INFO(refused.text);
  CHECK(refused.code == 2);
  CHECK(refused.text.find("status=401") != std::string::npos);

  // curl, a raw POST with ms timestamps (the request's precision, not the configured ns).
  const std::string body = web_line("a", 100, base * 1000 + 6'500) +
                           web_line("d", 5, (base + 25) * 1000) +
                           web_line("d", 6, (base + 29) * 1000 + 999);
  const auto answer = curl(dir, {"-X", "POST", "-H", "Authorization: Token " + token,
                                 "--data-binary", "@" + write_file(dir, "body.lp", body),
                                 "http://127.0.0.1:" + std::to_string(stack.port()) +
                                     "/write?db=telemetry&precision=ms"});
  INFO(answer.text);
  CHECK(answer.status == 204);
  expect(expected, "a", 100, base * 1000 + 6'500);
  expect(expected, "d", 5, (base + 25) * 1000);
  expect(expected, "d", 6, (base + 29) * 1000 + 999);

  CHECK(stack.metric("tumbled_lines_accepted_total") == 11);
  check_landed(stack, base, expected, {{"Authorization", "Token " + token}});
  CHECK(stack.daemon.stop() == 0);
}

TEST_CASE("http source: a 204 means on disk: SIGKILLs right after answers lose no request",
          "[system][http_source]") {
  // Requests of three lines each (1, 10 and 100: any part of a request has its own sum), one key
  // (req=<n>) per request, all in one window that stays open until the end. Three clients send
  // while the test kills the daemon right after a random 204 and restarts it on the same state.
  // Checkpoints on their own come seldom: a 204 before its commit would lose the request.
  Stack stack(http_spec("", "req"), {}, std::nullopt, "30s");
  const std::int64_t base = past_base_s();
  const std::uint16_t port = stack.port();
  const auto body = [&](std::int64_t n) {
    std::string text;
    for (const int v : {1, 10, 100}) {
      text += "req,req=" + std::to_string(n) + " v=" + std::to_string(v) + "i " +
              std::to_string(base + 1) + "\n";
    }
    return text;
  };

  std::mutex mutex;  // guards what follows, up to the condition variable
  std::set<std::int64_t> acked, unanswered;
  std::map<std::int64_t, int> other_status;
  std::size_t acked_this_run = 0;
  std::condition_variable answered;
  std::condition_variable restarted;  // `up` turned true, or `sending` false
  bool up = true;                     // guarded by mutex
  std::atomic<bool> sending{true};
  std::atomic<std::int64_t> next_request{1};
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&] {
      while (sending) {
        {
          std::unique_lock lock(mutex);  // while the daemon is down, wait for its restart
          restarted.wait(lock, [&] { return up || !sending; });
        }
        if (!sending) break;
        const std::int64_t n = next_request++;
        try {
          const auto response = post(port, "/write?precision=s", body(n));
          std::lock_guard lock(mutex);
          if (response.status == 204) {
            acked.insert(n);
            ++acked_this_run;
            answered.notify_all();
          } else {
            other_status[n] = response.status;
          }
        } catch (const std::exception&) {
          std::lock_guard lock(mutex);
          unanswered.insert(n);
        }
      }
    });
  }
  struct Joiner {
    std::atomic<bool>& sending;
    std::vector<std::thread>& threads;
    ~Joiner() {
      sending = false;
      for (auto& t : threads) t.join();
    }
  } joiner{sending, clients};

  const auto seed = Catch::rngSeed();
  std::mt19937 random(seed);
  std::ostringstream kills;
  std::cout << "http source crash test: seed " << seed << "\n";
  for (int round = 0; round < 5; ++round) {
    const std::size_t after = 1 + random() % 40;
    kills << (round ? ", " : "") << after;
    {
      std::unique_lock lock(mutex);
      const bool reached =
          answered.wait_for(lock, hang_guard(), [&] { return acked_this_run >= after; });
      if (!reached)
        FAIL("round " << round << ": no " << after << " answers; log:\n"
                      << stack.daemon.log_text());
    }
    {
      std::lock_guard lock(mutex);
      up = false;  // no new requests; those under way stay in flight
    }
    stack.daemon.kill();  // right after the 204
    {
      std::lock_guard lock(mutex);
      acked_this_run = 0;
    }
    stack.daemon.start();
    {
      std::lock_guard lock(mutex);
      up = true;
    }
    restarted.notify_all();
  }
  {
    std::unique_lock lock(mutex);
    REQUIRE(answered.wait_for(lock, hang_guard(), [&] { return acked_this_run >= 5; }));
  }
  {
    std::lock_guard lock(mutex);
    sending = false;
  }
  restarted.notify_all();
  for (auto& t : clients) t.join();
  clients.clear();

  std::set<std::int64_t> sent;
  for (std::int64_t n = 1; n < next_request; ++n) sent.insert(n);
  INFO("seed " << seed << ", killed after the 204s number " << kills.str() << " of each run; "
               << acked.size() << " requests answered 204, " << unanswered.size() << " unanswered, "
               << other_status.size() << " answered otherwise");
  CHECK(other_status.empty());
  close_windows(stack, base);
  const auto got = read_back(stack.influx, "req", "req", "v");
  const std::int64_t window_end = (base / 10 + 1) * 10'000;
  std::size_t present_unanswered = 0;
  for (const auto& [at, a] : got) {
    const std::int64_t n = std::stoll(at.first);
    INFO("request " << n << ": sum " << a.sum << ", count " << a.count << " at " << at.second);
    CHECK(sent.count(n) == 1);
    CHECK(at.second == window_end);
    CHECK(a == Aggregate{111, 3});  // never partial, never doubled
    if (!acked.count(n)) ++present_unanswered;
  }
  std::size_t missing = 0;
  for (const std::int64_t n : acked) {
    if (!got.count({std::to_string(n), window_end})) {
      ++missing;
      UNSCOPED_INFO("request " << n << " was answered 204 but is not in InfluxDB");
    }
  }
  CHECK(missing == 0);
  std::cout << "http source crash test: " << acked.size() << " requests answered 204, "
            << unanswered.size() << " unanswered (" << present_unanswered << " of them landed)\n";
  CHECK(stack.daemon.stop() == 0);
}

TEST_CASE("http source: partial writes keep the good lines and answer 400 with InfluxDB's message",
          "[system][http_source]") {
  Stack stack(http_spec());
  const std::int64_t base = past_base_s();
  Aggregates expected;

  const std::string body = web_line("a", 1, base + 1) +                                 // good
                           "web,host=a value= " + std::to_string(base + 2) + "\n" +     // no value
                           web_line("b", 2, base + 3) +                                 // good
                           "web,host=b value=2.5 " + std::to_string(base + 4) + "\n" +  // a float
                           "garbage";  // no fields, no newline
  const auto partial = post(stack.port(), "/write?precision=s", body);
  INFO(partial.body);
  CHECK(partial.status == 400);
  CHECK(partial.content_type == "application/json");
  const auto parsed = json::parse(partial.body);
  const std::string error(parsed.at("error").as_string());
  CHECK(error.rfind("partial write: line 2: ", 0) == 0);
  CHECK(error.size() >= 10);
  CHECK(error.substr(error.size() - 10) == " dropped=3");
  expect(expected, "a", 1, (base + 1) * 1000);
  expect(expected, "b", 2, (base + 3) * 1000);
  CHECK(stack.metric("tumbled_lines_accepted_total") == 2);
  CHECK(stack.rejected("bad_line") == 2);
  CHECK(stack.rejected("type_conflict") == 1);

  // Not one good line: 400, nothing taken.
  const auto bad = post(stack.port(), "/write?precision=s", "garbage\nweb,host=c value=\n");
  INFO(bad.body);
  CHECK(bad.status == 400);
  CHECK(json::parse(bad.body).at("error").is_string());
  CHECK(stack.metric("tumbled_lines_accepted_total") == 2);
  CHECK(stack.rejected("bad_line") == 4);
  CHECK(stack.requests(400) == 2);

  check_landed(stack, base, expected);
  CHECK(stack.daemon.stop() == 0);
}

TEST_CASE("http source: gzip bodies are inflated, bombs refused with 413, bad gzip with 400",
          "[system][http_source]") {
  Stack stack(http_spec("max_body_bytes: 4KiB"));
  TempDir dir("tumbled-http-gzip-");
  const std::int64_t base = past_base_s();
  Aggregates expected;

  // 100 lines: within max_body_bytes once inflated, which is what counts.
  std::string text;
  for (int i = 0; i < 100; ++i) {
    const std::string host = i % 2 ? "odd" : "even";
    text += web_line(host, i, base + i % 10);
    expect(expected, host, i, (base + i % 10) * 1000);
  }
  REQUIRE(text.size() <= 4096);
  const auto gz = gzipped(dir, text);
  const auto ok = post(stack.port(), "/write?precision=s", gz, {{"Content-Encoding", "gzip"}});
  INFO(ok.body);
  CHECK(ok.status == 204);
  CHECK(stack.metric("tumbled_lines_accepted_total") == 100);

  // 64 KiB of lines inflated from a few hundred bytes.
  std::string bomb;
  while (bomb.size() < 64 * 1024) bomb += web_line("bomb", 1, base + 1);
  const auto bomb_gz = gzipped(dir, bomb);
  REQUIRE(bomb_gz.size() < 4096);
  const auto too_large =
      post(stack.port(), "/write?precision=s", bomb_gz, {{"Content-Encoding", "gzip"}});
  INFO(too_large.body);
  CHECK(too_large.status == 413);

  const auto invalid = post(stack.port(), "/write?precision=s", "\x1f\x8b\x08\x00garbage",
                            {{"Content-Encoding", "gzip"}});
  INFO(invalid.body);
  CHECK(invalid.status == 400);
  // A truncated gzip stream is no better.
  const auto truncated = post(stack.port(), "/write?precision=s", gz.substr(0, gz.size() / 2),
                              {{"Content-Encoding", "gzip"}});
  CHECK(truncated.status == 400);
  CHECK(stack.metric("tumbled_lines_accepted_total") == 100);

  check_landed(stack, base, expected);
  CHECK(stack.daemon.stop() == 0);
}

TEST_CASE("http source: a gzip body of several members is inflated whole, as InfluxDB does",
          "[system][http_source]") {
  // RFC 1952 §2.2: a gzip file is a series of members (`cat a.gz b.gz` is one); Go's gzip.Reader,
  // InfluxDB's, reads them all.
  Stack stack(http_spec());
  TempDir dir("tumbled-http-gzip-members-");
  const std::int64_t base = past_base_s();
  Aggregates expected;
  const auto first = gzipped(dir, web_line("a", 1, base + 1));
  const auto second = gzipped(dir, web_line("b", 2, base + 2));
  expect(expected, "a", 1, (base + 1) * 1000);
  expect(expected, "b", 2, (base + 2) * 1000);
  const auto response =
      post(stack.port(), "/write?precision=s", first + second, {{"Content-Encoding", "gzip"}});
  INFO(response.body);
  CHECK(response.status == 204);
  check_landed(stack, base, expected);
  CHECK(stack.daemon.stop() == 0);
}

TEST_CASE("http source: /api/v2/write with ms precision, and /ping", "[system][http_source]") {
  Stack stack(http_spec());
  const std::int64_t base = past_base_s();
  Aggregates expected;

  const std::int64_t t1 = base * 1000 + 9'999, t2 = base * 1000 + 10'000;
  const auto v2 = post(stack.port(), "/api/v2/write?org=o&bucket=b&precision=ms",
                       web_line("a", 3, t1) + web_line("a", 4, t2));
  INFO(v2.body);
  CHECK(v2.status == 204);
  expect(expected, "a", 3, t1);
  expect(expected, "a", 4, t2);
  // The configured precision (ns) when the request names none.
  const std::int64_t t3 = (base + 5) * 1'000'000'000;
  CHECK(post(stack.port(), "/api/v2/write?org=o&bucket=b", web_line("b", 5, t3)).status == 204);
  expect(expected, "b", 5, t3 / 1'000'000);

  CHECK(http_request(verb::get, "127.0.0.1", stack.port(), "/ping").status == 204);
  CHECK(http_request(verb::head, "127.0.0.1", stack.port(), "/ping").status == 204);
  CHECK(stack.requests(204) == 4);

  check_landed(stack, base, expected);
  CHECK(stack.daemon.stop() == 0);
}

TEST_CASE("http source: auth.token is required in any of InfluxDB's forms and never shown",
          "[system][http_source]") {
  const std::string token = "tok-3c9a1f77e2";
  Stack stack(http_spec("auth: {token: \"${TUMBLED_TOKEN}\"}"), {{"TUMBLED_TOKEN", token}});
  const std::int64_t base = past_base_s();
  const std::string basic_user_token = "dXNlcjp0b2stM2M5YTFmNzdlMg==";  // base64("user:<token>")
  const std::string basic_wrong = "dXNlcjpub3Bl";                       // base64("user:nope")
  Aggregates expected;
  struct Attempt {
    std::string key;
    std::string target;
    HttpHeaders headers;
    int status;
  };
  const std::vector<Attempt> attempts{
      {"none", "/write?precision=s", {}, 401},
      {"token", "/write?precision=s", {{"Authorization", "Token " + token}}, 204},
      {"basic", "/write?precision=s", {{"Authorization", "Basic " + basic_user_token}}, 204},
      {"query", "/write?precision=s&u=x&p=" + token, {}, 204},
      {"v2",
       "/api/v2/write?org=o&bucket=b&precision=s",
       {{"Authorization", "Token " + token}},
       204},
      {"wrong_token", "/write?precision=s", {{"Authorization", "Token nope"}}, 401},
      {"wrong_basic", "/write?precision=s", {{"Authorization", "Basic " + basic_wrong}}, 401},
      {"wrong_query", "/write?precision=s&u=x&p=nope", {}, 401},
  };
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    const auto& a = attempts[i];
    const std::int64_t ts = base + static_cast<std::int64_t>(i);
    const auto response = post(stack.port(), a.target, web_line(a.key, 1, ts), a.headers);
    INFO(a.key << ": " << response.status << " " << response.body);
    CHECK(response.status == a.status);
    if (a.status == 204) expect(expected, a.key, 1, ts * 1000);
  }
  CHECK(stack.requests(401) == 4);
  CHECK(stack.metric("tumbled_lines_accepted_total") == 4);

  check_landed(stack, base, expected, {{"Authorization", "Token " + token}});

  TempDir dir("tumbled-http-auth-");
  const auto printed =
      run(dir, {TUMBLED_BINARY, "--config", stack.daemon.config_path(), "--print-config"},
          {{"TUMBLED_TOKEN", token}});
  INFO(printed.text);
  CHECK(printed.code == 0);
  CHECK(printed.text.find("token") != std::string::npos);
  CHECK(printed.text.find(token) == std::string::npos);
  CHECK(stack.daemon.stop() == 0);
  CHECK(stack.daemon.log_text().find(token) == std::string::npos);
}

TEST_CASE("http source: HTTPS with a test CA, plain HTTP is refused and counted",
          "[system][http_source]") {
  TempDir certs("tumbled-http-tls-");
  const auto path = [&](const std::string& name) { return (certs.path() / name).string(); };
  const auto openssl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    const auto out = run(certs, std::move(args));
    INFO(out.text);
    REQUIRE(out.code == 0);
  };
  const std::vector<std::string> ec{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                    "-nodes"};
  auto args = ec;
  args.insert(args.begin(), {"req", "-x509"});
  args.insert(args.end(), {"-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "2", "-subj",
                           "/CN=tumbled test CA"});
  openssl(args);
  args = ec;
  args.insert(args.begin(), "req");
  args.insert(args.end(),
              {"-keyout", path("key.pem"), "-out", path("server.csr"), "-subj", "/CN=localhost"});
  openssl(args);
  write_file(certs, "san.cnf", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl({"x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey",
           path("ca.key"), "-CAcreateserial", "-out", path("cert.pem"), "-days", "2", "-extfile",
           path("san.cnf")});

  Stack stack(
      http_spec("tls: {cert_file: " + path("cert.pem") + ", key_file: " + path("key.pem") + "}"));
  const std::int64_t base = past_base_s();
  const std::string port = std::to_string(stack.port());
  const auto https_write = [&](const std::string& host, std::int64_t value) {
    return curl(certs, {"--cacert", path("ca.pem"), "--resolve", "localhost:" + port + ":127.0.0.1",
                        "-X", "POST", "--data-binary",
                        "@" + write_file(certs, "body.lp", web_line(host, value, base + 1)),
                        "https://localhost:" + port + "/write?precision=s"});
  };
  const auto first = https_write("a", 1);
  INFO(first.text);
  CHECK(first.status == 204);
  CHECK(stack.metric("tumbled_lines_accepted_total") == 1);

  // start() probed the port with a bare connection; wait until every connection is gone.
  AWAIT(stack.daemon,
        wait_until([&] { return stack.metric("tumbled_connections_open") == 0; }, hang_guard()));
  const double failures = stack.metric("tumbled_source_http_tls_handshake_failures_total");
  bool plain_failed = false;
  try {
    plain_failed =
        post(stack.port(), "/write?precision=s", web_line("plain", 1, base + 1)).status != 204;
  } catch (const std::exception&) {
    plain_failed = true;
  }
  CHECK(plain_failed);
  AWAIT(stack.daemon,
        wait_until(
            [&] {
              return stack.metric("tumbled_source_http_tls_handshake_failures_total") >=
                     failures + 1;
            },
            hang_guard()));
  CHECK(stack.daemon.running());
  const auto after = https_write("b", 2);
  INFO(after.text);
  CHECK(after.status == 204);
  CHECK(stack.metric("tumbled_lines_accepted_total") == 2);
  CHECK(stack.daemon.stop() == 0);
}

TEST_CASE("http source: bodies over max_body_bytes are refused with 413, nothing taken",
          "[system][http_source]") {
  Stack stack(http_spec("max_body_bytes: 4KiB"));
  TempDir dir("tumbled-http-413-");
  const std::int64_t base = past_base_s();
  std::string body;
  while (body.size() < 8 * 1024) body += web_line("big", 1, base + 1);
  const auto declared = post(stack.port(), "/write?precision=s", body);
  INFO(declared.body);
  CHECK(declared.status == 413);
  // Chunked, so that only the bytes tell.
  const auto chunked =
      curl(dir, {"-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary",
                 "@" + write_file(dir, "big.lp", body),
                 "http://127.0.0.1:" + std::to_string(stack.port()) + "/write?precision=s"});
  INFO(chunked.text);
  CHECK(chunked.status == 413);
  CHECK(stack.metric("tumbled_lines_accepted_total") == 0);
  CHECK(stack.requests(413) == 2);
  // Just under the limit is fine.
  std::string fits;
  while (fits.size() + 40 < 4096) fits += web_line("fits", 1, base + 1);
  CHECK(post(stack.port(), "/write?precision=s", fits).status == 204);
  CHECK(stack.daemon.stop() == 0);
}

TEST_CASE(
    "http source: 503 with Retry-After while the buffer is full, nothing taken, 204 again "
    "once InfluxDB is back",
    "[system][http_source]") {
  // 1 s windows closed by the next request's event time: every request after the first puts a
  // point in the buffer, which holds two.
  PipelineSpec spec = http_spec("", "host", "1s", "0s");
  spec.buffer = "{max_points: 2, when_full: block}";
  Stack stack(spec, {}, FaultProxy::Mode::refuse);
  TempDir dir("tumbled-http-503-");
  const std::int64_t base_ms = past_base_s() * 1000;
  Aggregates expected;
  const auto request = [&](std::int64_t i) {
    return web_line("w" + std::to_string(i), i + 1, base_ms + i * 1000 + 500);
  };

  std::int64_t i = 0;
  HttpResponse refused;
  for (; i < 1000; ++i) {
    refused = post(stack.port(), "/write?precision=ms", request(i));
    if (refused.status != 204) break;
    expect(expected, "w" + std::to_string(i), i + 1, base_ms + i * 1000 + 500, 1000);
  }
  INFO(i << " requests answered 204 before: " << refused.status << " " << refused.body);
  REQUIRE(refused.status == 503);
  CHECK(i >= 3);  // the first emits nothing; two points fill the buffer
  CHECK(stack.metric("tumbled_points_waiting") >= 2);
  CHECK(stack.metric("tumbled_source_paused") == 1);

  const double accepted = stack.metric("tumbled_lines_accepted_total");
  CHECK(accepted == static_cast<double>(i));
  const auto file = write_file(dir, "body.lp", request(i));
  const auto url = "http://127.0.0.1:" + std::to_string(stack.port()) + "/write?precision=ms";
  const auto again = curl(dir, {"-X", "POST", "--data-binary", "@" + file, url});
  INFO(again.text);
  CHECK(again.status == 503);
  CHECK(again.text.find("Retry-After: 1\r\n") != std::string::npos);
  CHECK(stack.metric("tumbled_lines_accepted_total") == accepted);
  CHECK(stack.rejected("bad_line") == 0);
  CHECK(stack.requests(503) == 2);

  // InfluxDB back: the buffer drains, and the same request, sent again as a client would, is
  // taken once. So is the next (each closes a window: the buffer may fill again meanwhile).
  stack.proxy->set_mode(FaultProxy::Mode::pass);
  const auto until_taken = [&](std::int64_t n) {
    int status = 0;
    AWAIT(stack.daemon, wait_until(
                            [&] {
                              status = post(stack.port(), "/write?precision=ms", request(n)).status;
                              return status != 503;
                            },
                            hang_guard(), 50ms));
    CHECK(status == 204);
    expect(expected, "w" + std::to_string(n), n + 1, base_ms + n * 1000 + 500, 1000);
  };
  until_taken(i);
  until_taken(i + 1);
  CHECK(stack.metric("tumbled_lines_accepted_total") == accepted + 2);

  AWAIT(stack.daemon, wait_until(
                          [&] {
                            return stack.metric("tumbled_points_waiting") == 0 &&
                                   stack.metric("tumbled_source_paused") == 0;
                          },
                          hang_guard(), 20ms));
  check_landed(stack, base_ms / 1000, expected);
  CHECK(stack.daemon.stop() == 0);
}

TEST_CASE(
    "http source: a client stalling mid-body holds up nobody, and half a request is never "
    "taken",
    "[system][http_source]") {
  Stack stack(http_spec());
  const std::int64_t base = past_base_s();
  Aggregates expected;

  // Headers and three whole lines of a body announced twice as long, then silence.
  std::string half;
  for (int v = 1; v <= 3; ++v) half += web_line("stalled", v, base + 1);
  TcpFeeder stalled(stack.port());
  stalled.send("POST /write?precision=s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
               std::to_string(2 * half.size()) + "\r\n\r\n" + half);

  for (int v = 1; v <= 3; ++v) {
    const auto response = post(stack.port(), "/write?precision=s", web_line("other", v, base + v));
    CHECK(response.status == 204);
    expect(expected, "other", v, (base + v) * 1000);
  }
  CHECK(stack.metric("tumbled_lines_accepted_total") == 3);
  CHECK(stack.metric("tumbled_connections_open") >= 1);

  stalled.close();  // the body ends early
  AWAIT(stack.daemon,
        wait_until([&] { return stack.metric("tumbled_connections_open") == 0; }, hang_guard()));
  CHECK(stack.metric("tumbled_lines_accepted_total") == 3);
  CHECK(stack.metric("tumbled_source_http_timeouts_total") == 0);

  check_landed(stack, base, expected);
  CHECK(stack.daemon.stop() == 0);
}

TEST_CASE("http source: request metrics count answers by code, durations and body bytes",
          "[system][http_source]") {
  Stack stack(http_spec());
  const std::int64_t base = past_base_s();
  std::size_t bytes = 0;
  for (int n = 1; n <= 3; ++n) {
    std::string body;
    for (int v = 0; v < n * 20; ++v) body += web_line("m", v, base + 1);
    bytes += body.size();
    CHECK(post(stack.port(), "/write?precision=s", body).status == 204);
  }
  CHECK(http_request(verb::get, "127.0.0.1", stack.port(), "/nowhere").status == 404);
  CHECK(http_request(verb::get, "127.0.0.1", stack.port(), "/write").status == 405);
  CHECK(stack.requests(204) == 3);
  CHECK(stack.requests(404) == 1);
  CHECK(stack.requests(405) == 1);
  CHECK(stack.metric("tumbled_source_http_request_duration_seconds_count") == 5);
  CHECK(stack.metric("tumbled_source_http_received_bytes_total") == static_cast<double>(bytes));
  // One client, each request waiting for its answer: each 204 needed a log fsync of its own.
  CHECK(stack.metric("tumbled_source_http_log_syncs_total") == 3);
  CHECK(stack.daemon.stop() == 0);
}

namespace {

// Clients posting requests back to back, each of three lines (1, 10 and 100: any part of a
// request has its own sum) under a key of its own (req=<n>), all in the window of `base` + 1.
// Every request's outcome is recorded: the status it got, or 0 for a connection error (refused,
// reset, closed before the answer), with the phase the test had set when it was sent.
class RequestLoad {
 public:
  struct Outcome {
    int status = 0;
    int phase = 0;     // when it was sent
    int answered = 0;  // the phase when its outcome came
  };

  RequestLoad(std::uint16_t port, std::int64_t base, int clients) : port_(port), base_(base) {
    for (int c = 0; c < clients; ++c) threads_.emplace_back([this] { send(); });
  }
  ~RequestLoad() { stop(); }
  RequestLoad(const RequestLoad&) = delete;
  RequestLoad& operator=(const RequestLoad&) = delete;

  // Ends the sending; returns once every request under way has its outcome.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      sending_ = false;
    }
    answered_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  void set_phase(int phase) {
    {
      std::lock_guard lock(mutex_);
      phase_ = phase;
    }
    answered_.notify_all();  // also wakes clients waiting after a refused connection
  }
  // Waits until `count` requests sent in `phase` have been answered 204; false after the hang
  // guard.
  bool wait_for_204s(int phase, std::size_t count) {
    std::unique_lock lock(mutex_);
    return answered_.wait_for(lock, hang_guard(), [&] { return acked_[phase] >= count; });
  }
  std::map<std::int64_t, Outcome> outcomes() const {
    std::lock_guard lock(mutex_);
    return outcomes_;
  }

 private:
  std::string body(std::int64_t n) const {
    std::string text;
    for (const int v : {1, 10, 100}) {
      text += "req,req=" + std::to_string(n) + " v=" + std::to_string(v) + "i " +
              std::to_string(base_ + 1) + "\n";
    }
    return text;
  }
  void send() {
    while (sending_) {
      const std::int64_t n = next_++;
      Outcome outcome{0, phase_, 0};
      try {
        outcome.status = post(port_, "/write?precision=s", body(n)).status;
      } catch (const std::exception&) {
      }
      outcome.answered = phase_;
      {
        std::lock_guard lock(mutex_);
        outcomes_[n] = outcome;
        if (outcome.status == 204) ++acked_[outcome.phase];
      }
      answered_.notify_all();
      if (outcome.status == 0) {
        // No answer: the daemon is stopping, down or reloading. Send again once the test says
        // the next phase has begun (it has restarted it or seen the reload done), not in a loop.
        std::unique_lock lock(mutex_);
        answered_.wait(lock, [&] { return phase_ != outcome.answered || !sending_; });
      }
    }
  }

  const std::uint16_t port_;
  const std::int64_t base_;
  std::atomic<bool> sending_{true};
  std::atomic<int> phase_{0};
  std::atomic<std::int64_t> next_{1};
  mutable std::mutex mutex_;  // guards what follows, up to the condition variable
  std::map<std::int64_t, Outcome> outcomes_;
  std::map<int, std::size_t> acked_;  // 204s by phase
  std::condition_variable answered_;
  std::vector<std::thread> threads_;
};

// Closes the windows, then checks what InfluxDB holds of RequestLoad's requests against
// `outcomes`: every request answered 204 is there exactly once (sum 111, count 3), none answered
// 503 is, one that got no answer is there whole or not at all, and nothing else is. Returns how
// many requests landed.
std::size_t check_exactly_once(Stack& stack, std::int64_t base,
                               const std::map<std::int64_t, RequestLoad::Outcome>& outcomes) {
  close_windows(stack, base);
  const auto got = read_back(stack.influx, "req", "req", "v");
  const std::int64_t window_end = (base / 10 + 1) * 10'000;
  std::size_t landed_unanswered = 0;
  for (const auto& [at, a] : got) {
    const std::int64_t n = std::stoll(at.first);
    const auto it = outcomes.find(n);
    const int status = it == outcomes.end() ? -1 : it->second.status;
    INFO("request " << n << " (answered " << status << "): sum " << a.sum << ", count " << a.count
                    << " at " << at.second);
    CHECK(it != outcomes.end());
    CHECK(at.second == window_end);
    CHECK(a == Aggregate{111, 3});  // never partial, never doubled
    CHECK(status != 503);
    if (status == 0) ++landed_unanswered;
  }
  std::map<int, std::size_t> by_status, acked_by_phase;
  std::map<std::pair<int, int>, std::size_t> acked_across;  // by (phase sent, phase answered)
  std::size_t missing = 0;
  for (const auto& [n, outcome] : outcomes) {
    ++by_status[outcome.status];
    if (outcome.status == 204) ++acked_by_phase[outcome.phase];
    if (outcome.status == 204 && outcome.answered != outcome.phase)
      ++acked_across[{outcome.phase, outcome.answered}];
    if (outcome.status == 204 && !got.count({std::to_string(n), window_end})) {
      ++missing;
      UNSCOPED_INFO("request " << n << " was answered 204 but is not in InfluxDB");
    }
  }
  std::ostringstream summary;
  for (const auto& [status, count] : by_status) {
    summary << (status == 0 ? std::string("no answer") : std::to_string(status)) << ": " << count
            << " requests; ";
  }
  summary << got.size() << " landed (" << landed_unanswered
          << " of them unanswered); 204s by phase:";
  for (const auto& [phase, count] : acked_by_phase) summary << " " << phase << ": " << count;
  summary << "; sent in one phase, 204 in the next:";
  for (const auto& [phases, count] : acked_across)
    summary << " " << phases.first << "->" << phases.second << ": " << count;
  INFO(summary.str());
  std::cout << "  " << summary.str() << "\n";
  CHECK(missing == 0);
  CHECK(by_status[204] > 0);
  for (const auto& [status, count] : by_status) {
    INFO(count << " requests answered " << status);
    CHECK((status == 204 || status == 503 || status == 0));
  }
  return got.size();
}

// The lines each stop of pipeline "records" counted as accepted ("pipeline records stopped: N
// lines accepted, ..."), in the order of `log`.
std::vector<std::uint64_t> accepted_at_stops(const std::string& log) {
  static const std::regex stopped("pipeline records stopped: ([0-9]+) lines accepted");
  std::vector<std::uint64_t> out;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), stopped);
       it != std::sregex_iterator(); ++it) {
    out.push_back(std::stoull((*it)[1].str()));
  }
  return out;
}

// The lines of `log` at level warn or above.
std::string warnings(const std::string& log) {
  std::istringstream in(log);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.find(" warn  [") != std::string::npos || line.find(" error [") != std::string::npos ||
        line.find(" critical [") != std::string::npos) {
      out += line + "\n";
    }
  }
  return out;
}

}  // namespace

TEST_CASE(
    "http source: SIGTERM while clients write: each 204 kept once, each 503 not at all, exit 0 "
    "after the final checkpoint",
    "[system][http_source]") {
  // Checkpoints on their own come seldom: what is on disk at the end is what the requests'
  // commits and the final checkpoints wrote. Three rounds of SIGTERM and a restart on the same
  // state while four clients write on; the one window stays open across them all.
  Stack stack(http_spec("", "req"), {}, std::nullopt, "30s");
  const std::int64_t base = past_base_s();
  RequestLoad load(stack.port(), base, 4);
  std::uint64_t accepted = 0;  // lines, by the runs' own count when they stopped
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    // Phases: 3 * round while the daemon runs, + 1 after SIGTERM (the stopping daemon may still
    // take some), + 2 after it exited (refused, or taken by the restarted one).
    AWAIT(stack.daemon, load.wait_for_204s(3 * round, 50));
    stack.daemon.signal(SIGTERM);
    load.set_phase(3 * round + 1);
    const int code = stack.daemon.wait_for_exit();  // throws after the hang guard
    load.set_phase(3 * round + 2);
    if (round + 1 == kRounds) load.stop();

    const std::string log = stack.daemon.log_text();
    const auto stops = accepted_at_stops(log);
    INFO("round " << round << "; warnings and errors of the stopped run:\n" << warnings(log));
    CHECK(code == 0);
    CHECK(stack.daemon.log_count("signal SIGTERM: stopping") == 1);
    REQUIRE(stops.size() == 1);
    accepted += stops.front();
    CHECK(stack.daemon.log_count(", 0 dropped, 0 still waiting (kept for the next start)") == 1);
    CHECK(stack.daemon.log_count("tumbled stopped") == 1);
    CHECK(stack.daemon.log_count("second stop signal") == 0);
    CHECK(stack.daemon.log_count("failed while stopping") == 0);
    CHECK(warnings(log).find(" error [") == std::string::npos);
    CHECK(warnings(log).find(" critical [") == std::string::npos);

    stack.daemon.start();  // the same state dir: the window comes back with what was taken
    load.set_phase(3 * round + 3);
  }

  std::cout << "http source SIGTERM test:\n";
  const std::size_t landed = check_exactly_once(stack, base, load.outcomes());
  // Every request the stopped runs decoded (each counted its three lines) is in InfluxDB: their
  // final checkpoints held them all.
  CHECK(accepted == 3 * landed);
  CHECK(stack.daemon.stop() == 0);
}

TEST_CASE(
    "http source: SIGHUP replacing the pipeline while clients write: every 204 is kept once, "
    "the endpoint answers again on its port",
    "[system][http_source]") {
  // Any change of a pipeline's settings replaces it (config/reload_plan.cpp): here
  // source.http.max_body_bytes, changed three times while four clients write. The window stays
  // open across the reloads: the replacement restores what its predecessor checkpointed.
  Stack stack(http_spec("max_body_bytes: 1MiB", "req"), {}, std::nullopt, "30s");
  PipelineSpec spec = stack.daemon.pipeline();  // with InfluxDB's port
  const std::int64_t base = past_base_s();
  RequestLoad load(stack.port(), base, 4);
  AWAIT(stack.daemon, load.wait_for_204s(0, 20));
  for (int reload = 1; reload <= 3; ++reload) {
    spec.http_extra = "max_body_bytes: " + std::to_string(reload + 1) + "MiB";
    stack.daemon.reconfigure({spec});
    stack.daemon.signal(SIGHUP);
    AWAIT(
        stack.daemon,
        stack.daemon.wait_for_log(
            "reload done: 1 pipelines running (0 kept, 1 restarted, 0 added, 0 removed)", reload));
    load.set_phase(reload);  // sent once the replacement listens
    AWAIT(stack.daemon, load.wait_for_204s(reload, 20));
  }
  load.stop();
  {
    const std::string log = stack.daemon.log_text();
    INFO("warnings and errors:\n" << warnings(log));
    CHECK(stack.daemon.log_count("reload: pipeline records changed: stopping it") == 3);
    CHECK(warnings(log).find(" error [") == std::string::npos);
    CHECK(warnings(log).find(" critical [") == std::string::npos);
  }

  std::cout << "http source SIGHUP test:\n";
  const std::size_t landed = check_exactly_once(stack, base, load.outcomes());
  CHECK(stack.daemon.stop() == 0);
  // What the four pipelines took, together: every request decoded (three lines each), and the
  // closer, all in InfluxDB.
  const auto stops = accepted_at_stops(stack.daemon.log_text());
  CHECK(stops.size() == 4);
  std::uint64_t accepted = 0;
  for (const auto n : stops) accepted += n;
  CHECK(accepted == 3 * landed + 1);
}
