// Bounded buffers and connection limits: while InfluxDB is away and buffer.max_points points
// wait, the daemon stops reading (TCP pushes back on the sender) and loses nothing; connections
// beyond max_connections are closed and counted while the others are served.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <utility>

#include "support/fault_proxy.hpp"
#include "support/influxd.hpp"
#include "support/tcp_feed.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;

TEST_CASE("a long outage past buffer.max_points pauses ingest, then everything arrives",
          "[system][backpressure]") {
  // With 2 reader threads, one sender on each: the pause must hold both.
  const std::size_t threads = GENERATE(1, 2);
  CAPTURE(threads);
  InfluxServer influx;
  influx.create_database("telemetry");
  FaultProxy proxy(influx.port(), FaultProxy::Mode::refuse);
  PipelineSpec spec;
  spec.influx_port = proxy.port();
  spec.window = "200ms";
  spec.buffer = "{max_points: 3, when_full: block}";
  spec.threads = threads;
  Daemon daemon({spec});
  daemon.start();

  // A sender per reader thread, pushing 1s as fast as the daemon reads them.
  constexpr std::int64_t kValuesPerChunk = 100'000;
  std::string chunk;
  for (std::int64_t i = 0; i < kValuesPerChunk; ++i) chunk += "1\n";
  std::atomic<std::int64_t> chunks_sent{0};
  std::atomic<bool> feeding{true};
  std::vector<std::thread> senders;
  for (std::size_t i = 0; i < threads; ++i) {
    senders.emplace_back([&] {
      TcpFeeder feeder(spec.listen_port, 60s);
      while (feeding) {
        feeder.send(chunk);
        ++chunks_sent;
      }
      feeder.close();
    });
  }

  const bool paused = wait_until(
      [&] { return daemon.log_text().find("reading from clients paused") != std::string::npos; },
      hang_guard(), 50ms);
  INFO(daemon.log_text());
  REQUIRE(paused);
  // Paused: once the kernel's socket buffers are full the sender cannot get further. Wait for
  // that (however long the buffers take to fill on this machine), then check it lasts.
  auto stalled_at = chunks_sent.load();
  const bool stalled = wait_until(
      [&] {
        std::this_thread::sleep_for(1s);
        const auto now = chunks_sent.load();
        return std::exchange(stalled_at, now) == now;
      },
      hang_guard(), 0ms);
  REQUIRE(stalled);
  std::this_thread::sleep_for(1500ms);
  CHECK(chunks_sent.load() - stalled_at <= static_cast<std::int64_t>(threads));

  proxy.set_mode(FaultProxy::Mode::pass);
  feeding = false;
  for (auto& sender : senders) sender.join();
  const std::int64_t sent = chunks_sent.load() * kValuesPerChunk;
  const bool landed =
      wait_until([&] { return window_totals(influx).sum == sent; }, hang_guard(), 200ms);
  INFO("sent " << sent << ", landed " << window_totals(influx).sum);
  CHECK(landed);
  CHECK(daemon.stop() == 0);
  CHECK(daemon.log_text().find("reading from clients resumed") != std::string::npos);
}

TEST_CASE("connections beyond max_connections are closed and counted, the others are served",
          "[system][backpressure]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  PipelineSpec spec;
  spec.influx_port = influx.port();
  spec.max_connections = 2;
  Daemon daemon({spec});
  daemon.start();

  TcpFeeder first(spec.listen_port), second(spec.listen_port);
  first.send("1\n");  // make sure both are accepted before the third arrives
  second.send("2\n");
  REQUIRE(wait_until([&] { return daemon.log_text().find("connection from") != std::string::npos; },
                     hang_guard()));
  {
    TcpFeeder third(spec.listen_port);
    CHECK(wait_until([&] { return daemon.log_text().find("refusing more") != std::string::npos; },
                     hang_guard()));
  }
  first.send("10\n");
  second.send("20\n");
  first.close();
  second.close();
  CHECK(wait_until([&] { return window_totals(influx).sum == 33; }, hang_guard(), 100ms));
  CHECK(daemon.stop() == 0);
  CHECK(daemon.log_text().find("1 connections refused over max_connections") != std::string::npos);
}
