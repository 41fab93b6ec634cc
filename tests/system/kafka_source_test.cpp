// System tests of source.kafka: tumbled instances in one consumer group read a topic of a Kafka
// cluster on loopback (librdkafka's mock cluster, tests/support/kafka_mock.cpp), fed by kcat, and
// write to a real influxd. Every (partition, window, key) point InfluxDB holds at the end must
// be what was produced, after a kill -9 of one instance, a takeover and a rebalance back.
#include <signal.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "support/http_client.hpp"
#include "support/influxd.hpp"
#include "support/process.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;

namespace {

// The mock cluster, started for one test.
class KafkaCluster {
 public:
  explicit KafkaCluster(int partitions)
      : process_({TUMBLED_KAFKA_MOCK, "--brokers", "1", "--topic", "telemetry", "--partitions",
                  std::to_string(partitions)},
                 dir_.path() / "mock.log") {
    REQUIRE(wait_until([&] { return bootstrap_from_log() || !process_.running(); }, hang_guard()));
    REQUIRE(bootstrap_from_log());
  }
  const std::string& bootstrap() const { return bootstrap_; }
  void brokers_down() { process_.signal(SIGUSR1); }
  void brokers_up() { process_.signal(SIGUSR2); }

  // Produces each line of `lines` as one record to `partition`, with kcat.
  void produce(int partition, const std::string& lines) {
    const auto file = dir_.path() / ("records-" + std::to_string(files_++));
    std::ofstream(file) << lines;
    ChildProcess kcat({"kcat", "-P", "-b", bootstrap_, "-t", "telemetry", "-p",
                       std::to_string(partition), "-l", file.string()},
                      dir_.path() / "kcat.log");
    REQUIRE(kcat.wait_for(hang_guard()) == 0);
  }

 private:
  bool bootstrap_from_log() {
    const std::string log = read_file(process_.log_path());
    const auto at = log.find("bootstrap=");
    const auto end = log.find('\n', at);
    if (at == std::string::npos || end == std::string::npos) return false;
    bootstrap_ = log.substr(at + 10, end - at - 10);
    return true;
  }

  TempDir dir_{"tumbled-kafka-"};
  ChildProcess process_;
  std::string bootstrap_;
  int files_ = 0;
};

using PointKey = std::tuple<int, std::int64_t, std::string>;  // partition, window end, host

constexpr int kPartitions = 4;
constexpr int kRecordsPerPartition = 6'000;
constexpr std::int64_t kStepMs = 5;  // 200 records a 1 s window

std::int64_t value_of(int partition, int i) {
  return (i * 7919 + partition * 31) % 1000 - 100;
}
std::string host_of(int i) {
  return "h" + std::to_string(i % 5);
}

// Records [from, to) of a partition: one line each, event time first_ms + i * kStepMs.
std::string records(int partition, int from, int to, std::int64_t first_ms) {
  std::string out;
  for (int i = from; i < to; ++i) {
    out += "m,host=" + host_of(i) + " v=" + std::to_string(value_of(partition, i)) + "i " +
           std::to_string(first_ms + i * kStepMs) + "\n";
  }
  return out;
}

// Event times start 10 minutes ago, on a second.
std::int64_t ten_minutes_ago() {
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return now.count() / 1000 * 1000 - 600'000;
}

// What records(p, 0, count, first_ms) of each partition make, per partition, window and key.
std::map<PointKey, std::int64_t> expected_points(std::int64_t first_ms, int partitions, int count) {
  std::map<PointKey, std::int64_t> out;
  for (int p = 0; p < partitions; ++p) {
    for (int i = 0; i < count; ++i) {
      const std::int64_t t = first_ms + i * kStepMs;
      out[{p, (t / 1000 + 1) * 1000, host_of(i)}] += value_of(p, i);
    }
  }
  return out;
}

std::map<PointKey, std::int64_t> points_in(InfluxServer& influx) {
  std::map<PointKey, std::int64_t> out;
  const auto result = influx.query("telemetry", "SELECT v_sum, host, \"partition\" FROM m");
  const auto& statement = result.at("results").at(0).as_object();
  if (!statement.contains("series")) return out;
  for (const auto& row : statement.at("series").at(0).at("values").as_array()) {
    const auto& r = row.as_array();
    out[{std::stoi(std::string(r.at(3).as_string())), r.at(0).to_number<std::int64_t>(),
         std::string(r.at(2).as_string())}] = r.at(1).to_number<std::int64_t>();
  }
  return out;
}

PipelineSpec kafka_pipeline(const KafkaCluster& cluster, std::uint16_t influx_port) {
  PipelineSpec spec;
  spec.influx_port = influx_port;
  spec.kafka = "brokers: \"" + cluster.bootstrap() +
               "\", topic: telemetry, group: tumbled-test, properties: {session.timeout.ms: "
               "\"6000\", heartbeat.interval.ms: \"500\"}";
  spec.source_extra = "format: line_protocol, precision: ms";
  spec.window_extra = "time: event, group_by: [host], max_out_of_orderness: 0s, idle_timeout: 0";
  spec.point = "{measurement: m}";
  return spec;
}

// How many times the daemon has been handed partitions (each rebalance logs it once).
std::size_t assignments(const Daemon& daemon) {
  return daemon.log_count("kafka: assigned partitions of telemetry");
}

}  // namespace

TEST_CASE("two instances in a group: exact points after a kill -9, a takeover and a rebalance",
          "[kafka]") {
  KafkaCluster cluster(kPartitions);
  InfluxServer influx;
  influx.create_database("telemetry");
  const std::int64_t first_ms = ten_minutes_ago();
  const auto expected = expected_points(first_ms, kPartitions, kRecordsPerPartition);

  Daemon a({kafka_pipeline(cluster, influx.port())});
  Daemon b({kafka_pipeline(cluster, influx.port())});
  a.enable_http();
  b.enable_http();
  a.start();
  REQUIRE(a.wait_for_log("kafka: assigned partitions of telemetry"));
  b.start();
  // B joining makes the group rebalance: A is assigned again, B gets its share.
  REQUIRE(wait_until([&] { return assignments(a) >= 2 && assignments(b) >= 1; }, hang_guard()));

  const int third = kRecordsPerPartition / 3;
  for (int p = 0; p < kPartitions; ++p) cluster.produce(p, records(p, 0, third, first_ms));
  REQUIRE(wait_until([&] { return points_in(influx).size() >= 100; }, hang_guard()));

  a.kill();
  for (int p = 0; p < kPartitions; ++p) cluster.produce(p, records(p, third, 2 * third, first_ms));
  // B takes A's partitions once the group notices A is gone (session.timeout.ms).
  const std::size_t before = assignments(b);
  REQUIRE(wait_until([&] { return assignments(b) > before; }, hang_guard()));

  a.start();
  REQUIRE(
      wait_until([&] { return assignments(a) >= 1 && assignments(b) > before + 1; }, hang_guard()));
  for (int p = 0; p < kPartitions; ++p) {
    // The rest, and a record far ahead that closes every window before it.
    cluster.produce(p, records(p, 2 * third, kRecordsPerPartition, first_ms) + "m,host=h0 v=0i " +
                           std::to_string(first_ms + kRecordsPerPartition * kStepMs + 10'000) +
                           "\n");
  }

  std::map<PointKey, std::int64_t> got;
  const bool complete = wait_until(
      [&] {
        got = points_in(influx);
        return got == expected;
      },
      hang_guard(), std::chrono::milliseconds(200));
  if (!complete) {
    std::size_t differ = 0;
    for (const auto& [key, sum] : expected) {
      const auto it = got.find(key);
      if ((it == got.end() || it->second != sum) && differ++ < 10) {
        UNSCOPED_INFO("partition "
                      << std::get<0>(key) << " window " << std::get<1>(key) << " "
                      << std::get<2>(key) << ": expected " << sum << ", got "
                      << (it == got.end() ? std::string("nothing") : std::to_string(it->second)));
      }
    }
    UNSCOPED_INFO(differ << " of " << expected.size() << " points differ; " << got.size()
                         << " in InfluxDB");
  }
  CHECK(complete);
  // Summed over partitions, as users query it: the per-window totals are exact too.
  std::map<std::int64_t, std::int64_t> totals, expected_totals;
  for (const auto& [key, sum] : got) totals[std::get<1>(key)] += sum;
  for (const auto& [key, sum] : expected) expected_totals[std::get<1>(key)] += sum;
  CHECK(totals == expected_totals);

  const auto metrics = scrape_metrics(b.http_port());
  CHECK(pipeline_metric(metrics, "tumbled_source_kafka_rebalances_total") >= 2);
  CHECK(pipeline_metric(metrics, "tumbled_source_kafka_assigned_partitions") >= 1);
  CHECK(a.stop() == 0);
  CHECK(b.stop() == 0);
  CHECK(a.log_text().find("left group tumbled-test") != std::string::npos);
}

TEST_CASE("brokers out of reach: /ready says so, reading resumes when they are back, exact",
          "[kafka]") {
  KafkaCluster cluster(2);
  InfluxServer influx;
  influx.create_database("telemetry");
  const std::int64_t first_ms = ten_minutes_ago();
  Daemon daemon({kafka_pipeline(cluster, influx.port())});
  const std::uint16_t http = daemon.enable_http();
  daemon.start();
  REQUIRE(daemon.wait_for_log("kafka: assigned partitions of telemetry"));
  for (int p = 0; p < 2; ++p) cluster.produce(p, records(p, 0, 1'000, first_ms));
  REQUIRE(wait_until([&] { return points_in(influx).size() >= 20; }, hang_guard()));

  cluster.brokers_down();
  const auto ready = [&] {
    return http_request(boost::beast::http::verb::get, "127.0.0.1", http, "/ready");
  };
  REQUIRE(wait_until([&] { return ready().status == 503; }, hang_guard(),
                     std::chrono::milliseconds(100)));
  CHECK_THAT(ready().body, Catch::Contains("records: not ready: Kafka: "));
  CHECK(pipeline_metric(scrape_metrics(http), "tumbled_source_kafka_errors_total") >= 1);

  cluster.brokers_up();
  for (int p = 0; p < 2; ++p) {
    cluster.produce(p, records(p, 1'000, 2'000, first_ms) + "m,host=h0 v=0i " +
                           std::to_string(first_ms + 2'000 * kStepMs + 10'000) + "\n");
  }
  const auto expected = expected_points(first_ms, 2, 2'000);
  CHECK(wait_until([&] { return points_in(influx) == expected; }, hang_guard(),
                   std::chrono::milliseconds(200)));
  CHECK(wait_until([&] { return ready().status == 200; }, hang_guard(),
                   std::chrono::milliseconds(100)));
  CHECK(daemon.log_count("kafka: the consumer works again") >= 1);
  CHECK(daemon.stop() == 0);
}

TEST_CASE("InfluxDB away: a full buffer pauses the partitions, nothing is dropped, exact after",
          "[kafka]") {
  KafkaCluster cluster(2);
  InfluxServer influx;
  influx.create_database("telemetry");
  const std::int64_t first_ms = ten_minutes_ago();
  PipelineSpec spec = kafka_pipeline(cluster, influx.port());
  spec.buffer = "{max_points: 40, when_full: block}";
  Daemon daemon({spec});
  const std::uint16_t http = daemon.enable_http();
  daemon.start();
  REQUIRE(daemon.wait_for_log("kafka: assigned partitions of telemetry"));
  influx.stop();
  // 30 windows of 5 keys a partition: far more points than the buffer holds.
  constexpr int kRecords = 6'000;
  for (int p = 0; p < 2; ++p) cluster.produce(p, records(p, 0, kRecords / 2, first_ms));
  const auto metric = [&](const std::string& name) {
    return pipeline_metric(scrape_metrics(http), name);
  };
  REQUIRE(wait_until([&] { return metric("tumbled_source_paused") == 1; }, hang_guard(),
                     std::chrono::milliseconds(50)));
  const double read = metric("tumbled_source_kafka_records_total");
  const double waiting = metric("tumbled_points_waiting");
  CHECK(read < kRecords + 2);  // the rest waits in Kafka

  // Paused: what arrives now stays in Kafka, however long InfluxDB is away (here: for three
  // checkpoints of the daemon), and the buffer does not grow.
  for (int p = 0; p < 2; ++p) {
    cluster.produce(p, records(p, kRecords / 2, kRecords, first_ms) + "m,host=h0 v=0i " +
                           std::to_string(first_ms + kRecords * kStepMs + 10'000) + "\n");
  }
  const double checkpoints = metric("tumbled_checkpoints_total");
  REQUIRE(wait_until([&] { return metric("tumbled_checkpoints_total") >= checkpoints + 3; },
                     hang_guard(), std::chrono::milliseconds(50)));
  CHECK(metric("tumbled_source_kafka_records_total") == read);
  CHECK(metric("tumbled_points_waiting") == waiting);
  CHECK(metric("tumbled_points_dropped_total") == 0);

  influx.start();
  const auto expected = expected_points(first_ms, 2, kRecords);
  CHECK(wait_until([&] { return points_in(influx) == expected; }, hang_guard(),
                   std::chrono::milliseconds(200)));
  CHECK(metric("tumbled_source_paused") == 0);
  CHECK(daemon.stop() == 0);
}
