// The daemon's HTTP endpoints as a monitoring system meets them: /metrics counts exactly what was
// fed and written, /health answers, /ready follows InfluxDB through the fault proxy (refused,
// then back), the server's bounds (404, 405, oversized requests, connection cap) hold, and
// log.format: json writes one parseable JSON object per line.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "support/fault_proxy.hpp"
#include "support/http_client.hpp"
#include "support/influxd.hpp"
#include "support/tcp_feed.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;
namespace http = boost::beast::http;

namespace {

HttpResponse get(std::uint16_t port, const std::string& target) {
  return http_request(http::verb::get, "127.0.0.1", port, target);
}

std::map<std::string, double> scrape(std::uint16_t port) {
  return scrape_metrics(port);
}

// A metric of pipeline "records"; `labels` are any further ones, e.g. ",reason=\"too_long\"".
double metric(const std::map<std::string, double>& samples, const std::string& name,
              const std::string& labels = "") {
  return pipeline_metric(samples, name, labels);
}

// A metric of the HTTP server itself (no labels).
double metric_value(const std::map<std::string, double>& samples, const std::string& name) {
  const auto it = samples.find(name);
  if (it == samples.end()) FAIL("no sample " + name);
  return it->second;
}

}  // namespace

TEST_CASE("/metrics counts exactly what was fed and written, /health and /ready answer",
          "[system][http]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  PipelineSpec spec;  // max_line_bytes 64
  spec.influx_port = influx.port();
  Daemon daemon({spec});
  const std::uint16_t port = daemon.enable_http();
  daemon.start();

  const auto health = get(port, "/health");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
  // Nothing written yet: ready because InfluxDB answers its ping.
  const auto ready = get(port, "/ready");
  CHECK(ready.status == 200);
  CHECK(ready.body == "records: ready\n");

  std::string payload;
  for (int i = 1; i <= 1000; ++i) payload += std::to_string(i) + "\n";
  payload += "abc\n1.5\n0x10\n";                              // 3 not integers
  payload += "99999999999999999999\n-9223372036854775809\n";  // 2 out of int64
  payload += std::string(100, '7') + "\n";                    // 1 longer than 64 bytes
  payload += "\n  \n";                                        // empty: ignored
  send_all(spec.listen_port, payload);

  std::map<std::string, double> m;
  const bool landed = wait_until(
      [&] {
        m = scrape(port);
        return window_totals(influx).sum == 500500 && metric(m, "tumbled_points_waiting") == 0 &&
               metric(m, "tumbled_points_written_total") ==
                   static_cast<double>(window_totals(influx).windows);
      },
      hang_guard(), 100ms);
  INFO(daemon.log_text());
  REQUIRE(landed);
  CHECK(metric(m, "tumbled_lines_accepted_total") == 1000);
  CHECK(metric(m, "tumbled_lines_rejected_total", ",reason=\"not_integer\"") == 3);
  CHECK(metric(m, "tumbled_lines_rejected_total", ",reason=\"out_of_range\"") == 2);
  CHECK(metric(m, "tumbled_lines_rejected_total", ",reason=\"too_long\"") == 1);
  CHECK(metric(m, "tumbled_connections_accepted_total") == 2);  // start()'s probe and the feed
  CHECK(metric(m, "tumbled_connections_open") == 0);
  CHECK(metric(m, "tumbled_connections_refused_total") == 0);
  const double windows = metric(m, "tumbled_windows_emitted_total");
  CHECK(windows >= 1);
  CHECK(metric(m, "tumbled_points_written_total") == windows);
  CHECK(metric(m, "tumbled_sums_saturated_total") == 0);
  const double batches = metric(m, "tumbled_batches_sent_total");
  CHECK(batches >= 1);
  CHECK(metric(m, "tumbled_batches_failed_attempts_total") == 0);
  CHECK(metric(m, "tumbled_batches_dead_lettered_total") == 0);
  CHECK(metric(m, "tumbled_points_dead_lettered_total") == 0);
  CHECK(metric(m, "tumbled_points_dropped_total") == 0);
  CHECK(metric(m, "tumbled_oldest_waiting_point_age_seconds") == 0);
  CHECK(metric(m, "tumbled_write_duration_seconds_count") == batches);
  CHECK(metric(m, "tumbled_write_duration_seconds_bucket", ",le=\"+Inf\"") == batches);
  CHECK(metric(m, "tumbled_write_duration_seconds_sum") > 0);
  const double now_s =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(metric(m, "tumbled_last_successful_write_timestamp_seconds") > now_s - 60);
  CHECK(metric(m, "tumbled_last_successful_write_timestamp_seconds") <= now_s);
  CHECK(metric(m, "tumbled_checkpoints_total") >= 1);
  CHECK(metric(m, "tumbled_checkpoints_failed_total") == 0);
  CHECK(metric(m, "tumbled_last_checkpoint_bytes") > 0);
  CHECK(metric(m, "tumbled_last_checkpoint_duration_seconds") >= 0);
  CHECK(metric(m, "tumbled_source_paused") == 0);
  CHECK(get(port, "/metrics").content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(get(port, "/ready").status == 200);

  CHECK(daemon.stop() == 0);
}

TEST_CASE("/ready is 503 while InfluxDB is refused and 200 once it is back", "[system][http]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  FaultProxy proxy(influx.port(), FaultProxy::Mode::refuse);
  PipelineSpec spec;
  spec.influx_port = proxy.port();
  Daemon daemon({spec});
  const std::uint16_t port = daemon.enable_http();
  daemon.start();
  INFO(daemon.log_text());

  // Nothing written yet, and the ping is refused.
  auto ready = get(port, "/ready");
  CHECK(ready.status == 503);
  CHECK(ready.body.find("records: not ready: nothing written yet and InfluxDB does not answer: "
                        "ping http://127.0.0.1:" +
                        std::to_string(proxy.port()) + " db=telemetry: connect 127.0.0.1:" +
                        std::to_string(proxy.port()) + ": Connection refused") == 0);

  // Windows close and their writes fail: still not ready, now for the write.
  send_all(spec.listen_port, "1\n2\n3\n");
  const bool failing =
      wait_until([&] { return metric(scrape(port), "tumbled_batches_failed_attempts_total") >= 2; },
                 hang_guard(), 50ms);
  CHECK(failing);
  ready = get(port, "/ready");
  CHECK(ready.status == 503);
  CHECK(ready.body.find("records: not ready: last write to InfluxDB failed: ") == 0);
  CHECK(get(port, "/health").status == 200);  // alive all along
  CHECK(metric(scrape(port), "tumbled_points_waiting") >= 1);
  CHECK(metric(scrape(port), "tumbled_oldest_waiting_point_age_seconds") > 0);
  CHECK(metric(scrape(port), "tumbled_last_successful_write_timestamp_seconds") == 0);

  proxy.set_mode(FaultProxy::Mode::pass);
  const bool recovered =
      wait_until([&] { return get(port, "/ready").status == 200; }, hang_guard(), 50ms);
  CHECK(recovered);
  CHECK(wait_until([&] { return window_totals(influx).sum == 6; }, hang_guard(), 100ms));
  const auto m = scrape(port);
  CHECK(metric(m, "tumbled_points_written_total") == metric(m, "tumbled_windows_emitted_total"));
  CHECK(metric(m, "tumbled_write_duration_seconds_count") ==
        metric(m, "tumbled_batches_sent_total") +
            metric(m, "tumbled_batches_failed_attempts_total"));
  CHECK(metric(m, "tumbled_last_successful_write_timestamp_seconds") > 0);
  CHECK(daemon.stop() == 0);
}

TEST_CASE("the HTTP server refuses what it does not serve and stays bounded", "[system][http]") {
  PipelineSpec spec;
  spec.influx_port = free_port();  // nothing there: this test never writes
  Daemon daemon({spec});
  const std::uint16_t port = daemon.enable_http();
  daemon.start();
  INFO(daemon.log_text());

  CHECK(get(port, "/nope").status == 404);
  CHECK(get(port, "/").status == 404);
  CHECK(get(port, "/metrics?name=x").status == 200);  // a query string does not change the path
  CHECK(http_request(http::verb::post, "127.0.0.1", port, "/metrics", "x").status == 405);
  CHECK(http_request(http::verb::delete_, "127.0.0.1", port, "/health").status == 405);
  CHECK(http_request(http::verb::get, "127.0.0.1", port, "/health", {},
                     {{"X-Padding", std::string(10'000, 'a')}})
            .status == 431);
  CHECK(
      http_request(http::verb::get, "127.0.0.1", port, "/health", std::string(4096, 'b')).status ==
      413);

  {
    // 64 idle connections fill the server; a newcomer closes the idlest and is answered.
    std::vector<std::unique_ptr<TcpFeeder>> idle;
    for (int i = 0; i < 64; ++i) idle.push_back(std::make_unique<TcpFeeder>(port));
    CHECK(get(port, "/health").status == 200);
    CHECK(wait_until(
        [&] { return metric_value(scrape(port), "tumbled_http_connections_evicted_total") >= 1; },
        hang_guard()));
  }
  CHECK(daemon.stop() == 0);
}

TEST_CASE("log.format: json writes one JSON object per line", "[system][http][log]") {
  PipelineSpec spec;
  spec.influx_port = free_port();  // refused: warnings about the writes too
  Daemon daemon({spec});
  daemon.set_log_format("json");
  daemon.start();
  send_all(spec.listen_port, "1\n\"quoted\\\" garbage\n2\n");
  CHECK(wait_until([&] { return daemon.log_text().find("InfluxDB write of") != std::string::npos; },
                   hang_guard()));
  CHECK(daemon.stop() == 0);

  const std::string log = daemon.log_text();
  INFO(log);
  std::istringstream in(log);
  std::size_t lines = 0;
  std::map<std::string, std::size_t> loggers;
  bool saw_start = false;
  for (std::string line; std::getline(in, line);) {
    CAPTURE(line);
    boost::system::error_code ec;
    const boost::json::value value = boost::json::parse(line, ec);
    REQUIRE(!ec);
    REQUIRE(value.is_object());
    const auto& object = value.as_object();
    CHECK(object.size() == 4);
    for (const char* key : {"time", "level", "logger", "message"}) {
      REQUIRE(object.contains(key));
      CHECK(object.at(key).is_string());
    }
    const std::string time(object.at("time").as_string());
    CHECK(time.size() == 24);  // 2026-11-24T16:46:30.123Z
    CHECK(time.back() == 'Z');
    ++loggers[std::string(object.at("logger").as_string())];
    const std::string message(object.at("message").as_string());
    saw_start = saw_start || message.find("started") != std::string::npos;
    ++lines;
  }
  CHECK(lines >= 5);
  CHECK(saw_start);
  CHECK(loggers["main"] >= 1);
  CHECK(loggers["tcp"] >= 1);
  CHECK(loggers["influx"] >= 1);
}
