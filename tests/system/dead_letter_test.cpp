// Points InfluxDB refuses for good never block a pipeline, never delay another pipeline, and are
// never lost: they wait as dead letters that an operator lists and sends again once the cause is
// fixed.
#include <catch2/catch.hpp>

#include "support/influxd.hpp"
#include "support/tcp_feed.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;

TEST_CASE("a poisoned pipeline beside a healthy one: dead letters, then replay",
          "[system][deadletter]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  // `sum` of measurement "poison" already exists as a float: every integer sum conflicts (400).
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  REQUIRE(influx.write("telemetry",
                       "poison,window=1s sum=0.5 " + std::to_string(now_ms - 60'000)) == 204);

  PipelineSpec healthy, poison;
  healthy.name = "healthy";
  poison.name = "poison";
  healthy.influx_port = poison.influx_port = influx.port();
  Daemon daemon({healthy, poison});
  daemon.start();

  std::int64_t healthy_sum = 0, poison_sum = 0;
  for (int round = 1; round <= 6; ++round) {
    send_all(healthy.listen_port, std::to_string(round) + "\n");
    send_all(poison.listen_port, std::to_string(round * 100) + "\n");
    healthy_sum += round;
    poison_sum += round * 100;
    std::this_thread::sleep_for(400ms);
  }
  // The healthy pipeline is not held up by its neighbour's refusals.
  CHECK(wait_until([&] { return window_totals(influx, "healthy").sum == healthy_sum; },
                   hang_guard(), 100ms));
  const bool dead_lettered = wait_until(
      [&] { return daemon.log_text().find("moved to dead letters") != std::string::npos; },
      hang_guard(), 100ms);
  INFO(daemon.log_text());
  REQUIRE(dead_lettered);
  CHECK(daemon.log_text().find("field type conflict") != std::string::npos);

  // Listing works beside the running daemon.
  const auto [list_code, listing] = daemon.run_command({"deadletter", "list", "--lines"});
  INFO(listing);
  CHECK(list_code == 0);
  CHECK(listing.find("poison\t") != std::string::npos);
  CHECK(listing.find("HTTP 400") != std::string::npos);
  CHECK(listing.find("    poison,window=1s sum=") != std::string::npos);
  CHECK(listing.find("healthy\t") == std::string::npos);
  // Replaying needs the daemon stopped, and says so.
  const auto busy = daemon.run_command({"deadletter", "replay"});
  CHECK(busy.first == 1);
  CHECK(busy.second.find("still running") != std::string::npos);
  CHECK(daemon.stop() == 0);

  // The operator fixes the cause and sends the dead letters again.
  influx.query("telemetry", "DROP MEASUREMENT poison");
  const auto [replay_code, replayed] = daemon.run_command({"deadletter", "replay"});
  INFO(replayed);
  CHECK(replay_code == 0);
  CHECK(replayed.find("requeued") != std::string::npos);
  daemon.start();
  CHECK(wait_until([&] { return window_totals(influx, "poison").sum == poison_sum; }, hang_guard(),
                   100ms));
  CHECK(window_totals(influx, "healthy").sum == healthy_sum);
  CHECK(daemon.run_command({"deadletter", "list"}).second.find("0 dead letters") !=
        std::string::npos);
  CHECK(daemon.stop() == 0);
}
