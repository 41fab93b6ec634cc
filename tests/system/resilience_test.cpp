// Faults between tumbled and InfluxDB, made by a fault-injecting proxy in front of a real influxd:
// while windows close, InfluxDB is refused, blackholed for longer than request_timeout and cut
// mid-exchange; every window sum must still arrive, exactly once, once the path is clear. The
// backlog an outage leaves drains in batches larger than batch_size.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <map>
#include <string>

#include "support/fault_proxy.hpp"
#include "support/influxd.hpp"
#include "support/tcp_feed.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;

namespace {

// Sends `values` one per line, spread over `duration`, and returns their sum.
std::int64_t feed_over(std::uint16_t port, std::int64_t first, int values,
                       std::chrono::milliseconds duration) {
  TcpFeeder feeder(port);
  std::int64_t sum = 0;
  const int slices = 10;
  for (int s = 0; s < slices; ++s) {
    std::string text;
    for (int i = s; i < values; i += slices) {
      text += std::to_string(first + i) + "\n";
      sum += first + i;
    }
    feeder.send(text);
    std::this_thread::sleep_for(duration / slices);
  }
  feeder.close();
  return sum;
}

}  // namespace

TEST_CASE("InfluxDB refused, blackholed and cut while windows close: all sums arrive",
          "[system][faults]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  FaultProxy proxy(influx.port());
  PipelineSpec spec;
  spec.influx_port = proxy.port();
  Daemon daemon({spec});
  daemon.start();

  std::int64_t sent = feed_over(spec.listen_port, 1, 1000, 1200ms);

  SECTION("refused") {
    proxy.set_mode(FaultProxy::Mode::refuse);
    sent += feed_over(spec.listen_port, 5000, 1000, 2500ms);
  }
  SECTION("blackholed longer than request_timeout") {
    proxy.set_mode(FaultProxy::Mode::blackhole);
    sent += feed_over(spec.listen_port, 5000, 1000, 2500ms);
  }
  SECTION("connections reset") {
    proxy.set_mode(FaultProxy::Mode::reset);
    sent += feed_over(spec.listen_port, 5000, 1000, 2500ms);
  }
  // While the fault lasts, nothing of the later windows can have arrived.
  CHECK(window_totals(influx).sum < sent);

  proxy.set_mode(FaultProxy::Mode::pass);
  sent += feed_over(spec.listen_port, -3000, 500, 1200ms);
  const bool landed =
      wait_until([&] { return window_totals(influx).sum == sent; }, hang_guard(), 100ms);
  INFO(daemon.log_text());
  CHECK(landed);
  CHECK(window_totals(influx).sum == sent);
  CHECK(daemon.stop() == 0);
  const std::string log = daemon.log_text();
  CHECK(log.find("InfluxDB write of") != std::string::npos);  // the episode started
  CHECK(log.find("recovered after") != std::string::npos);    // and ended
}

TEST_CASE("the proxy cuts connections repeatedly mid-stream: sums still exact",
          "[system][faults]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  FaultProxy proxy(influx.port());
  PipelineSpec spec;
  spec.influx_port = proxy.port();
  spec.batch_interval = "20ms";
  Daemon daemon({spec});
  daemon.start();

  std::int64_t sent = 0;
  for (int round = 0; round < 8; ++round) {
    sent += feed_over(spec.listen_port, round * 1000, 200, 400ms);
    proxy.cut();
  }
  const bool landed =
      wait_until([&] { return window_totals(influx).sum == sent; }, hang_guard(), 100ms);
  INFO(daemon.log_text());
  CHECK(landed);
  CHECK(daemon.stop() == 0);
}

TEST_CASE("the backlog of an outage drains in batches of up to max_batch_size, exactly",
          "[system][faults][drain]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  FaultProxy proxy(influx.port(), FaultProxy::Mode::refuse);
  PipelineSpec spec;
  spec.influx_port = proxy.port();
  spec.aggregates = "[sum, count]";
  spec.max_line_bytes = 1024;
  spec.source_extra = "format: line_protocol, precision: ms";
  // Event time, and only the data moves the watermark: which points exist never depends on
  // when or how fast the test runs.
  spec.window_extra = "time: event, group_by: [host], idle_timeout: 0s";
  spec.point = "{measurement: \"\", tags: {}}";
  spec.buffer = "{max_points: 100000, when_full: block}";
  spec.batch_size = 50;
  std::size_t expected_batches = 0;
  SECTION("max_batch_size 400") {
    spec.max_batch_size = "400";
    expected_batches = 3;  // 400 + 400 + 200 (batch_size alone: 20)
  }
  SECTION("the default, 5000") {
    expected_batches = 1;
  }
  Daemon daemon({spec});
  const auto port = daemon.enable_http();
  daemon.start();
  const auto metric = [&](const std::string& name) {
    return pipeline_metric(scrape_metrics(port), name);
  };

  // 1000 hosts in one window ten minutes ago, 3 values each; a line 10 s later moves the
  // watermark past that window's end (max_out_of_orderness 5s), so its 1000 points are emitted
  // at once while InfluxDB is refused. The late line's own window stays open.
  constexpr int kHosts = 1000;
  const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  const std::int64_t base = (now_ms - 600'000) / 10'000 * 10'000;
  std::map<std::string, std::int64_t> sums;
  std::string text;
  for (int h = 0; h < kHosts; ++h) {
    const std::string host = "h" + std::to_string(h);
    for (int k = 0; k < 3; ++k) {
      const std::int64_t value = std::int64_t(h) * 1'000 + k;
      text +=
          "m,host=" + host + " v=" + std::to_string(value) + "i " + std::to_string(base + k) + "\n";
      sums[host] += value;
    }
  }
  text += "m,host=late v=1i " + std::to_string(base + 10'000) + "\n";
  send_all(spec.listen_port, text);

  // The whole backlog waits and the writer has felt the outage.
  const bool queued = wait_until(
      [&] {
        return metric("tumbled_points_waiting") == kHosts &&
               metric("tumbled_batches_failed_attempts_total") >= 1;
      },
      hang_guard(), 20ms);
  INFO(daemon.log_text());
  REQUIRE(queued);
  CHECK(metric("tumbled_batches_sent_total") == 0);

  proxy.set_mode(FaultProxy::Mode::pass);
  const bool drained = wait_until(
      [&] {
        return metric("tumbled_points_written_total") == kHosts &&
               metric("tumbled_points_waiting") == 0;
      },
      hang_guard(), 20ms);
  REQUIRE(drained);
  CHECK(metric("tumbled_batches_sent_total") == double(expected_batches));
  CHECK(metric("tumbled_batches_split_total") == 0);
  CHECK(metric("tumbled_points_dead_lettered_total") == 0);

  // Exactly what was sent, once per host.
  const auto rows =
      influx.series_values("telemetry", "SELECT v_sum, v_count, host FROM m WHERE host != 'late'");
  REQUIRE(rows.size() == kHosts);
  std::map<std::string, std::int64_t> landed;
  for (const auto& row : rows) {
    CHECK(row.at(0).to_number<std::int64_t>() == base + 1'000);  // the window's end
    CHECK(row.at(2).to_number<std::int64_t>() == 3);
    landed[std::string(row.at(3).as_string())] += row.at(1).to_number<std::int64_t>();
  }
  CHECK(landed == sums);
  CHECK(daemon.stop() == 0);
  CHECK(daemon.log_text().find("recovered after") != std::string::npos);
}
