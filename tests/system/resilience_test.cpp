// Faults between tumbled and InfluxDB, made by a fault-injecting proxy in front of a real influxd:
// while windows close, InfluxDB is refused, blackholed for longer than request_timeout and cut
// mid-exchange; every window sum must still arrive, exactly once, once the path is clear.
#include <catch2/catch.hpp>

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
