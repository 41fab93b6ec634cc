// The whole job as a user runs it: the tumbled binary, several TCP clients sending integers with
// garbage mixed in, a real influxd; the window sums read back through /query must add up exactly.
#include <catch2/catch.hpp>

#include <random>
#include <thread>

#include "support/influxd.hpp"
#include "support/tcp_feed.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;

namespace {

// A payload of random integers (and the exact sum of those that are valid), with rejected lines
// and awkward formatting in between: CRLF, blanks, signs, surrounding spaces, floats, words,
// numbers beyond int64, lines over max_line_bytes.
struct Payload {
  std::string text;
  std::int64_t sum = 0;
  std::size_t values = 0;
};

Payload make_payload(std::uint32_t seed, std::size_t lines) {
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<std::int64_t> value(-1'000'000'000, 1'000'000'000);
  const char* garbage[] = {"1.5", "0x10", "abc", "99999999999999999999", "", "   ", "12 34", "-"};
  Payload p;
  for (std::size_t i = 0; i < lines; ++i) {
    const std::int64_t v = value(random);
    switch (i % 5) {
      case 0: p.text += std::to_string(v) + "\r\n"; break;
      case 1: p.text += "  " + std::to_string(v) + "\t\n"; break;
      case 2: p.text += (v >= 0 ? "+" : "") + std::to_string(v) + "\n"; break;
      default: p.text += std::to_string(v) + "\n"; break;
    }
    p.sum += v;
    ++p.values;
    if (i % 97 == 0) p.text += std::string(garbage[i % 8]) + "\n";
    if (i % 389 == 0) p.text += std::string(100, '7') + "\n";  // over max_line_bytes (64)
  }
  return p;
}

}  // namespace

TEST_CASE("several connections with garbage mixed in: window sums land exactly", "[system]") {
  // With 3 reader threads the connections are read on 3 threads, each counting into windows of
  // its own: the points must be exactly those of one thread.
  const std::size_t threads = GENERATE(1, 3);
  CAPTURE(threads);
  InfluxServer influx;
  influx.create_database("telemetry");
  PipelineSpec spec;
  spec.influx_port = influx.port();
  spec.aggregates = "[sum, count]";
  spec.threads = threads;
  Daemon daemon({spec});
  daemon.start();

  // Four clients, each sending its share in slices spread over about three 1 s windows.
  std::int64_t expected_sum = 0;
  std::size_t expected_count = 0;
  std::vector<std::thread> clients;
  for (std::uint32_t c = 0; c < 4; ++c) {
    const Payload payload = make_payload(c + 1, 20'000);
    expected_sum += payload.sum;
    expected_count += payload.values;
    clients.emplace_back([payload, port = spec.listen_port] {
      TcpFeeder feeder(port);
      const std::size_t slice = payload.text.size() / 10 + 1;
      for (std::size_t at = 0; at < payload.text.size(); at += slice) {
        feeder.send(std::string_view(payload.text).substr(at, slice));  // splits lines mid-way
        std::this_thread::sleep_for(300ms);
      }
      feeder.close();
    });
  }
  // A last line without a newline still counts.
  send_all(spec.listen_port, "1000000\n-1\n7");
  expected_sum += 1000000 - 1 + 7;
  expected_count += 3;
  for (auto& t : clients) t.join();

  const bool landed =
      wait_until([&] { return window_totals(influx).sum == expected_sum; }, hang_guard(), 200ms);
  INFO(daemon.log_text());
  CHECK(landed);
  const auto totals = window_totals(influx);
  CHECK(totals.sum == expected_sum);
  CHECK(totals.windows >= 3);

  std::int64_t counted = 0;
  for (const auto& row : influx.series_values("telemetry", "SELECT count FROM records")) {
    counted += row.at(1).to_number<std::int64_t>();
  }
  CHECK(counted == static_cast<std::int64_t>(expected_count));

  // Every point has the classic shape: measurement, window tag, integer fields, ms timestamps
  // on window ends.
  const auto rows = influx.series_values("telemetry", "SELECT sum, \"window\" FROM records");
  for (const auto& row : rows) {
    CHECK(row.at(0).to_number<std::int64_t>() % 1000 == 0);
    CHECK(row.at(2).as_string() == "1s");
  }

  CHECK(daemon.stop() == 0);
  const std::string log = daemon.log_text();
  CHECK(log.find("rejected a line from 127.0.0.1") != std::string::npos);
  // Every reader's counts are in the total.
  CHECK(log.find(" " + std::to_string(expected_count) + " values accepted") != std::string::npos);
}

TEST_CASE("two pipelines run side by side without mixing their data", "[system]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  PipelineSpec first, second;
  first.name = "first";
  second.name = "second";
  first.influx_port = second.influx_port = influx.port();
  Daemon daemon({first, second});
  daemon.start();
  send_all(first.listen_port, "1\n2\n3\n");
  send_all(second.listen_port, "100\n200\n");
  CHECK(wait_until(
      [&] {
        return window_totals(influx, "first").sum == 6 &&
               window_totals(influx, "second").sum == 300;
      },
      hang_guard(), 100ms));
  CHECK(daemon.stop() == 0);
}
