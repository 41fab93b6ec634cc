// Restarts: a graceful stop loses nothing, even of a window still open; a SIGKILL loses at most
// what arrived after the last checkpoint; unsent points are replayed after a restart and every
// window appears in InfluxDB once, with a sum that is never replaced by a smaller one.
//
// The SIGKILL test reads the daemon's /metrics rather than the clock: what it had accepted before
// a checkpoint that completed before the kill must survive it, however slow the machine.
#include <catch2/catch.hpp>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "support/fault_proxy.hpp"
#include "support/http_client.hpp"
#include "support/influxd.hpp"
#include "support/tcp_feed.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;

namespace {

// A counter of pipeline "records" on the daemon's /metrics.
double metric(std::uint16_t port, const std::string& name) {
  return pipeline_metric(scrape_metrics(port), name);
}

}  // namespace

TEST_CASE("SIGTERM with a window open and InfluxDB away: everything arrives after restart",
          "[system][restart]") {
  // Each value on a connection of its own: with 2 reader threads, both hold part of the open
  // window when SIGTERM comes.
  const std::size_t threads = GENERATE(1, 2);
  CAPTURE(threads);
  InfluxServer influx;
  influx.create_database("telemetry");
  FaultProxy proxy(influx.port());
  PipelineSpec spec;
  spec.influx_port = proxy.port();
  spec.window = "3s";
  spec.threads = threads;
  Daemon daemon({spec});
  daemon.start();

  proxy.set_mode(FaultProxy::Mode::refuse);  // points of closed windows stay queued
  std::int64_t sent = 0;
  for (int i = 1; i <= 40; ++i) {
    send_all(spec.listen_port, std::to_string(i * 1000) + "\n");
    sent += i * 1000;
    std::this_thread::sleep_for(100ms);  // spans at least one closed and one open window
  }
  CHECK(daemon.stop() == 0);
  CHECK(window_totals(influx).sum == 0);

  proxy.set_mode(FaultProxy::Mode::pass);
  daemon.start();
  const bool landed =
      wait_until([&] { return window_totals(influx).sum == sent; }, hang_guard(), 100ms);
  INFO(daemon.log_text());
  CHECK(landed);
  CHECK(daemon.log_text().find("restored") != std::string::npos);
  CHECK(daemon.stop() == 0);
}

TEST_CASE("SIGKILL mid-stream: the replay fills the gap, loss bounded by the last checkpoint",
          "[system][restart]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  FaultProxy proxy(influx.port());
  PipelineSpec spec;
  spec.influx_port = proxy.port();
  spec.window = "1s";
  Daemon daemon({spec}, "200ms");
  const std::uint16_t port = daemon.enable_http();
  daemon.start();

  // A steady stream: value 1 every 2 ms, with a record of when each slice was sent.
  struct Slice {
    std::chrono::steady_clock::time_point at;
    std::int64_t sum;
  };
  std::mutex mutex;
  std::deque<Slice> slices;
  std::atomic<bool> feeding{true};
  std::thread feeder_thread([&] {
    while (feeding) {
      try {
        TcpFeeder feeder(spec.listen_port, 500ms);
        while (feeding) {
          feeder.send("1\n1\n1\n1\n1\n");
          {
            std::lock_guard lock(mutex);
            slices.push_back({std::chrono::steady_clock::now(), 5});
          }
          std::this_thread::sleep_for(10ms);
        }
      } catch (const std::exception&) {
        // the daemon is down: what this send carried may be lost, it was never acknowledged
        std::this_thread::sleep_for(20ms);
      }
    }
  });

  // InfluxDB away while three windows close, so that they wait in the state store when the kill
  // comes.
  proxy.set_mode(FaultProxy::Mode::refuse);
  REQUIRE(wait_until([&] { return metric(port, "tumbled_windows_emitted_total") >= 3; },
                     hang_guard(), 50ms));
  // Every value accepted so far (each is a 1) is durable once a checkpoint has completed after.
  const double accepted = metric(port, "tumbled_lines_accepted_total");
  const double checkpoints = metric(port, "tumbled_checkpoints_total");
  REQUIRE(wait_until([&] { return metric(port, "tumbled_checkpoints_total") > checkpoints; },
                     hang_guard(), 20ms));
  daemon.kill();
  proxy.set_mode(FaultProxy::Mode::pass);
  daemon.start();
  // The stream goes on into the restarted daemon until the window open at the kill has closed
  // (a graceful stop would keep an open one in the store) and another one after it.
  REQUIRE(wait_until([&] { return metric(port, "tumbled_windows_emitted_total") >= 2; },
                     hang_guard(), 50ms));
  feeding = false;
  feeder_thread.join();
  CHECK(daemon.stop() == 0);

  std::int64_t sent = 0;
  for (const auto& s : slices) sent += s.sum;
  const auto totals = window_totals(influx);
  INFO("sent " << sent << ", durable before the kill " << accepted << ", landed " << totals.sum);
  INFO(daemon.log_text());
  CHECK(totals.sum <= sent);
  CHECK(totals.sum >= static_cast<std::int64_t>(accepted));
  // Windows before the kill, checkpointed while InfluxDB was refused, came back on replay.
  CHECK(totals.windows >= 3);
}
