// tumbled-bench kafka: lines/s tumbled consumes from a Kafka topic, with one instance and with
// two in one consumer group on this machine.
//
// The topic lives in librdkafka's mock cluster, hosted by this process (the real Kafka protocol
// on loopback; its broker thread shares the machine with tumbled, as a local broker would). Each
// run makes a fresh cluster with a topic of --partitions partitions (4) and starts the instances
// (pipeline bench: source.kafka, processing time, 1 h windows grouped by [stream, isp], fields
// [bytes], aggregates [sum, count, max], as the keyed ingest, so nothing reaches InfluxDB during
// the run). Once the group has given every instance partitions, a producer thread sends --lines
// lines (10 000 000) of the keyed line-protocol payload of `ingest --format line_protocol`
// (payload.hpp, --keys keys, 10 000), --lines-per-record lines (100) per record, the records
// round-robin over the partitions. The mock cluster keeps only the last 5 MB of a partition, so
// the producer stays at most 2 MB a partition ahead of what the instances accepted: the figure is
// what the instances consume while a producer keeps them busy. lines/s = lines / (first line
// accepted to the last), from the sum of tumbled_lines_accepted_total over the instances, polled
// every 10 ms. Each run checks that the instances accepted exactly the lines produced and
// rejected none, and that they exit 0 on SIGTERM.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <iostream>
#include <limits>
#include <thread>

#include "bench_common.hpp"
#include "subcommands.hpp"

namespace tumbled::bench {

namespace {

struct Settings {
  std::string binary;
  int partitions = 4;
  std::uint64_t lines = 10'000'000;
  std::uint64_t lines_per_record = 100;
  std::uint64_t keys = 10'000;
};

// A mock cluster with the topic `bench`, and a producer to it.
class MockTopic {
 public:
  explicit MockTopic(int partitions) {
    char error[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    const auto set = [&](const char* name, const char* value) {
      if (rd_kafka_conf_set(conf, name, value, error, sizeof error) != RD_KAFKA_CONF_OK) {
        throw std::runtime_error(std::string("producer: ") + name + ": " + error);
      }
    };
    set("test.mock.num.brokers", "1");  // the producer hosts the cluster it produces to
    set("linger.ms", "5");
    set("log_level", "4");  // not the notice that the mock cluster replaced bootstrap.servers
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    if (!producer_) throw std::runtime_error(std::string("producer: ") + error);
    rd_kafka_mock_cluster_t* cluster = rd_kafka_handle_mock_cluster(producer_);
    if (rd_kafka_mock_topic_create(cluster, "bench", partitions, 1)) {
      throw std::runtime_error("cannot create the topic");
    }
    bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster);
  }
  ~MockTopic() { rd_kafka_destroy(producer_); }
  const std::string& bootstrap() const { return bootstrap_; }

  // Produces s.lines lines of the payload, never more than `max_ahead` lines beyond `accepted`.
  void produce(const Settings& s, const Payload& payload, const std::atomic<double>& accepted,
               std::uint64_t max_ahead) {
    std::string_view rest;
    std::uint64_t produced = 0;
    for (int partition = 0; produced < s.lines; partition = (partition + 1) % s.partitions) {
      std::size_t end = 0;
      std::uint64_t lines = 0;
      if (rest.empty()) rest = payload.bytes;
      while (lines < s.lines_per_record && produced + lines < s.lines && end < rest.size()) {
        end = rest.find('\n', end) + 1;
        ++lines;
      }
      const std::string_view record = rest.substr(0, end);
      rest.remove_prefix(end);
      while (double(produced) - accepted.load() > double(max_ahead)) rd_kafka_poll(producer_, 1);
      for (;;) {
        const auto failed = rd_kafka_producev(
            producer_, RD_KAFKA_V_TOPIC("bench"), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_VALUE(const_cast<char*>(record.data()), record.size()), RD_KAFKA_V_END);
        if (!failed) break;
        if (failed != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(failed));
        }
        rd_kafka_poll(producer_, 10);
      }
      produced += lines;
      rd_kafka_poll(producer_, 0);
    }
    if (rd_kafka_flush(producer_, 120'000)) throw std::runtime_error("produce: flush timed out");
  }

 private:
  rd_kafka_t* producer_ = nullptr;
  std::string bootstrap_;
};

double accepted_by(const std::vector<std::unique_ptr<Tumbled>>& instances, double& rejected) {
  double accepted = 0;
  rejected = 0;
  for (const auto& t : instances) {
    const auto metrics = scrape_metrics(t->metrics_port());
    accepted += pipeline_metric(metrics, "tumbled_lines_accepted_total");
    for (const auto& [name, value] : metrics) {
      if (name.starts_with("tumbled_lines_rejected_total{pipeline=\"bench\"")) rejected += value;
    }
  }
  return accepted;
}

// One run: the lines/s, or nullopt after printing what failed.
std::optional<double> run_once(const Settings& s, const Payload& payload, int instances, int run) {
  test::InfluxServer influx;
  MockTopic cluster(s.partitions);
  std::vector<test::TempDir> dirs(static_cast<std::size_t>(instances));
  std::vector<std::unique_ptr<Tumbled>> daemons;
  for (auto& dir : dirs) {
    TumbledSpec spec;
    spec.binary = s.binary;
    spec.influx_port = influx.port();
    spec.metrics = true;
    spec.window = "1h";
    spec.aggregates = "[sum, count, max]";
    spec.kafka = fmt(
        "brokers: \"%s\", topic: bench, group: bench-%d, properties: {fetch.wait.max.ms: \"10\"}",
        cluster.bootstrap().c_str(), run);
    spec.source_extra = "format: line_protocol, precision: s";
    spec.window_extra =
        fmt("time: processing, group_by: [stream, isp], fields: [bytes], "
            "max_keys: %llu",
            static_cast<unsigned long long>(s.keys + 1000));
    spec.point = "";
    daemons.push_back(std::make_unique<Tumbled>(spec, dir.path()));
  }
  // Every instance has partitions, and all partitions are taken: the group is settled.
  const bool settled = test::wait_until(
      [&] {
        double taken = 0;
        for (const auto& d : daemons) {
          const double mine = pipeline_metric(scrape_metrics(d->metrics_port()),
                                              "tumbled_source_kafka_assigned_partitions");
          if (mine == 0) return false;
          taken += mine;
        }
        return taken == s.partitions;
      },
      test::hang_guard(), milliseconds(10));
  if (!settled) {
    std::cout << "FAILED: the group did not assign the partitions\n";
    return std::nullopt;
  }
  std::atomic<double> accepted_so_far{0};
  const std::uint64_t max_ahead =
      std::uint64_t(s.partitions) * 2'000'000 * payload.lines / payload.bytes.size();
  std::string produce_error;
  std::thread producer([&] {
    try {
      cluster.produce(s, payload, accepted_so_far, max_ahead);
    } catch (const std::exception& e) {
      produce_error = e.what();
    }
  });
  double rejected = 0;
  Clock::time_point first{}, last{};
  std::vector<ProcSample> before;
  const bool done = test::wait_until(
      [&] {
        const double accepted = accepted_by(daemons, rejected);
        accepted_so_far = accepted + rejected;
        if (!produce_error.empty()) return true;
        if (accepted > 0 && first == Clock::time_point{}) {
          first = Clock::now();
          for (const auto& d : daemons) before.push_back(sample_proc(d->pid()));
        }
        last = Clock::now();
        return accepted + rejected >= double(s.lines);
      },
      test::hang_guard() * 5, milliseconds(10));
  accepted_so_far = std::numeric_limits<double>::max();  // lets a waiting producer finish
  producer.join();
  if (!produce_error.empty()) std::cout << "producer: " << produce_error << "\n";
  double cpu = 0;
  for (std::size_t i = 0; i < daemons.size() && i < before.size(); ++i) {
    cpu += sample_proc(daemons[i]->pid()).cpu_seconds - before[i].cpu_seconds;
  }
  const double accepted = accepted_by(daemons, rejected);
  const double seconds = std::chrono::duration<double>(last - first).count();
  bool ok = done && produce_error.empty() && accepted == double(s.lines) && rejected == 0;
  std::cout << fmt(
      "%d instance%s: %.0f lines accepted (%llu produced), %.0f rejected in %.2f s: "
      "%.0f lines/s, CPU of the instances %.0f%%\n",
      instances, instances == 1 ? "" : "s", accepted, static_cast<unsigned long long>(s.lines),
      rejected, seconds, accepted / seconds, 100 * cpu / seconds);
  for (auto& d : daemons) {
    const int code = d->stop();
    if (code != 0) {
      std::cout << "tumbled exit " << code << "; log:\n" << d->log_text() << "\n";
      ok = false;
    }
  }
  if (!ok) std::cout << "FAILED\n";
  return ok ? std::optional(accepted / seconds) : std::nullopt;
}

}  // namespace

int run_kafka(const Options& options) {
  Settings s;
  s.binary = options.get("tumbled", TUMBLED_DEFAULT_BINARY);
  const std::vector<int> instance_counts = options.get_int_list("instances", "1,2");
  s.partitions = static_cast<int>(options.get_int("partitions", 4));
  s.lines = static_cast<std::uint64_t>(options.get_int("lines", 10'000'000));
  s.lines_per_record = static_cast<std::uint64_t>(options.get_int("lines-per-record", 100));
  s.keys = static_cast<std::uint64_t>(options.get_int("keys", 10'000));
  const int runs = static_cast<int>(options.get_int("runs", 3));
  options.check_all_used();
  if (s.partitions < 1 || s.lines_per_record < 1 || runs < 1 || instance_counts.empty()) {
    throw std::invalid_argument("--partitions, --lines-per-record, --runs and --instances >= 1");
  }

  const Payload payload = make_line_protocol_payload(
      64 << 20, s.keys, wall_ms() / 1000 - 7200);  // seconds timestamps two hours ago
  std::cout << payload.describe() << "\n";
  bool all_ok = true;
  int run = 0;
  std::vector<std::string> table;
  for (const int instances : instance_counts) {
    std::vector<double> rates;
    for (int i = 0; i < runs; ++i) {
      std::cout << fmt("-- %d instance%s, run %d of %d\n", instances, instances == 1 ? "" : "s",
                       i + 1, runs);
      const auto rate = run_once(s, payload, instances, ++run);
      if (rate) rates.push_back(*rate);
      all_ok = all_ok && rate.has_value();
    }
    table.push_back(fmt("%d | %s", instances, median_and_range(rates).c_str()));
    result_row(fmt("kafka %d instance%s", instances, instances == 1 ? "" : "s"), "lines/s consumed",
               median_and_range(rates),
               fmt("%d partitions, %llu lines per record; median (range) of %d runs", s.partitions,
                   static_cast<unsigned long long>(s.lines_per_record), runs));
  }
  std::cout << fmt("\ninstances | lines/s consumed, median (range) of %d runs\n---|---\n", runs);
  for (const auto& row : table) std::cout << row << "\n";
  print_result_rows();
  return all_ok ? 0 : 1;
}

}  // namespace tumbled::bench
