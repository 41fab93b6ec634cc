// Unit tests for the config keys of the Kafka source (source.kafka): what setting it changes
// (format line_protocol by default, TCP keys refused, no listen collisions), its own keys and
// their errors with the file's line, librdkafka properties tumbled owns, masking of secret
// properties, and the warnings that explain what makes results inexact.
#include <catch2/catch.hpp>

#include <string>

#include "config/config.hpp"

using namespace tumbled::config;

namespace {

// Lines 1-6: one pipeline named a reading topic t, event time.
const std::string kKafka =
    "pipelines:\n  - name: a\n    window: {time: event, idle_timeout: 0}\n    source:\n"
    "      kafka:\n        brokers: 127.0.0.1:9092\n";

std::string error_of(const std::string& yaml) {
  try {
    parse(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("kafka source: defaults, and what it changes", "[config][kafka_source]") {
  const Config c = parse(kKafka + "        topic: telemetry\n", "t.yaml");
  const PipelineConfig& p = c.pipelines.at(0);
  CHECK(p.reads_kafka());
  CHECK_FALSE(p.reads_http());
  CHECK(p.kafka.topic == "telemetry");
  CHECK(p.kafka.group == "tumbled");
  CHECK(p.kafka.partition_tag == "partition");
  CHECK(p.format == "line_protocol");
  CHECK(warnings(c).empty());

  // Two Kafka pipelines have no listen address to collide on.
  const std::string two =
      "pipelines:\n"
      "  - {name: a, source: {kafka: {brokers: b:1, topic: t}}}\n"
      "  - {name: b, source: {kafka: {brokers: b:1, topic: u}}}\n";
  CHECK(parse(two, "t.yaml").pipelines.size() == 2);
}

TEST_CASE("kafka source: errors name the key and the line", "[config][kafka_source]") {
  const auto [yaml, expected] = GENERATE(table<std::string, std::string>({
      {kKafka, "pipelines[0].source.kafka.topic: required"},
      {"pipelines:\n  - name: a\n    source: {kafka: {brokers: b:1, topic: t}, format: integers}\n",
       "t.yaml:3: pipelines[0].source.format: source.kafka takes line protocol only"},
      {kKafka + "        topic: t\n      http: {listen: 127.0.0.1:8186}\n",
       "pipelines[0].source.kafka.brokers: a pipeline reads one source"},
      {kKafka + "        topic: t\n      tcp: {idle_timeout: 1m}\n",
       "t.yaml:8: pipelines[0].source.tcp.idle_timeout: only allowed with the TCP source"},
      {kKafka + "        topic: t\n        properties: {enable.auto.commit: \"true\"}\n",
       "t.yaml:8: pipelines[0].source.kafka.properties.enable.auto.commit: offsets are "
       "committed by tumbled"},
      {kKafka + "        topic: t\n        properties: {group.id: x}\n",
       "source.kafka.properties.group.id: set source.kafka.group instead"},
      {kKafka + "        topic: t\n        properties: {partition.assignment.strategy: "
                "cooperative-sticky}\n",
       "cooperative rebalancing is not supported"},
      {kKafka + "        topic: t\n        group: \"\"\n", "pipelines[0].source.kafka.group: "},
      {"pipelines:\n  - name: a\n    source: {kafka: {topic: t}}\n",
       "pipelines[0].source.kafka.topic: only allowed with source.kafka.brokers set"},
  }));
  CAPTURE(yaml);
  CHECK_THAT(error_of(yaml), Catch::Contains(expected));
}

TEST_CASE("kafka source: partition_tag must not collide with the point's tags",
          "[config][kafka_source]") {
  const std::string yaml =
      "pipelines:\n  - name: a\n    window: {time: event, group_by: [partition]}\n"
      "    source: {kafka: {brokers: b:1, topic: t}}\n";
  CHECK_THAT(error_of(yaml), Catch::Contains("pipelines[0].source.kafka.partition_tag: tag "
                                             "\"partition\" is also in window.group_by"));
}

TEST_CASE("kafka source: secret properties are masked, and inexact settings warned about",
          "[config][kafka_source]") {
  const Config c = parse(
      "pipelines:\n  - name: a\n"
      "    source: {kafka: {brokers: b:1, topic: t, partition_tag: \"\", properties: "
      "{sasl.password: hunter2, session.timeout.ms: \"6000\"}}}\n",
      "t.yaml");
  const std::string printed = to_yaml(c);
  CHECK(printed.find("hunter2") == std::string::npos);
  CHECK(printed.find("session.timeout.ms: 6000") != std::string::npos);
  CHECK(c.pipelines.at(0).kafka.properties.at("sasl.password") == "hunter2");
  const auto warned = warnings(c);
  REQUIRE(warned.size() == 2);
  CHECK_THAT(warned[0], Catch::Contains("window.time: processing"));
  CHECK_THAT(warned[1], Catch::Contains("partition_tag is \"\""));

  const Config idle = parse(
      "pipelines:\n  - name: a\n    window: {time: event}\n"
      "    source: {kafka: {brokers: b:1, topic: t}}\n",
      "t.yaml");
  REQUIRE(warnings(idle).size() == 1);
  CHECK_THAT(warnings(idle)[0], Catch::Contains("window.idle_timeout 30s"));
}
