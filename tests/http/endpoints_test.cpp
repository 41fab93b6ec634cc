// The pure halves of the HTTP endpoints: the Prometheus exposition text (names, HELP/TYPE lines,
// label escaping, cumulative histogram buckets) and the readiness rule. The README's list of
// metric names is checked against the formatter's output, so the two cannot drift.
#include <catch2/catch.hpp>

#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "http/endpoints.hpp"

using tumbled::http::escape_label_value;
using tumbled::http::format_value;
using tumbled::http::prometheus_text;
using tumbled::http::Readiness;
using tumbled::http::readiness;
using tumbled::pipeline::PipelineStats;

namespace {

PipelineStats sample_stats(std::string name) {
  PipelineStats s;
  s.name = std::move(name);
  s.listening = true;
  s.source_paused = true;
  s.connections_open = 2;
  s.connections_accepted = 7;
  s.connections_refused = 1;
  s.lines.accepted = 1000;
  s.lines.empty = 4;
  s.lines.not_integer = 3;
  s.lines.out_of_range = 2;
  s.lines.too_long = 1;
  s.windows_emitted = 12;
  s.sums_saturated = 1;
  s.points_written = 10;
  s.batches_sent = 5;
  s.batch_failed_attempts = 6;
  s.batches_dead_lettered = 1;
  s.batches_split = 2;
  s.points_dead_lettered = 1;
  s.points_dropped = 0;
  s.points_waiting = 2;
  s.oldest_waiting_age_seconds = 1.5;
  s.write_seconds.observe(0.0004);  // bucket 0.001
  s.write_seconds.observe(0.003);   // bucket 0.005
  s.write_seconds.observe(0.003);
  s.write_seconds.observe(7.5);  // beyond every bound: +Inf only
  s.last_write_success_ms = 1795538790123;
  s.checkpoints = 40;
  s.checkpoints_failed = 3;
  s.last_checkpoint_seconds = 0.25;
  s.last_checkpoint_bytes = 4096;
  return s;
}

// Sample lines by "name{labels}".
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

std::vector<std::string> family_names(const std::string& text) {
  std::vector<std::string> names;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) names.push_back(line.substr(7, line.find(' ', 7) - 7));
  }
  return names;
}

}  // namespace

TEST_CASE("label values are escaped as the exposition format asks", "[http]") {
  const auto [value, expected] = GENERATE(table<std::string, std::string>({
      {"records", "records"},
      {"", ""},
      {"a\"b", "a\\\"b"},
      {"a\\b", "a\\\\b"},
      {"a\nb", "a\\nb"},
      {"\\\"\n", "\\\\\\\"\\n"},
      {"tab\tstays", "tab\tstays"},
      {"caf\xc3\xa9", "caf\xc3\xa9"},
  }));
  CAPTURE(value);
  CHECK(escape_label_value(value) == expected);
}

TEST_CASE("values are written in their shortest exact form", "[http]") {
  CHECK(format_value(0) == "0");
  CHECK(format_value(12) == "12");
  CHECK(format_value(0.005) == "0.005");
  CHECK(format_value(2.5) == "2.5");
  CHECK(format_value(1795538790.123) == "1795538790.123");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(format_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
}

TEST_CASE("the exposition has every metric once, with HELP and TYPE, per pipeline", "[http]") {
  const std::vector<PipelineStats> stats{sample_stats("records"), sample_stats("other")};
  const std::string text = prometheus_text(stats);
  CAPTURE(text);
  const auto s = samples(text);

  CHECK(s.at("tumbled_connections_open{pipeline=\"records\"}") == "2");
  CHECK(s.at("tumbled_connections_accepted_total{pipeline=\"records\"}") == "7");
  CHECK(s.at("tumbled_connections_refused_total{pipeline=\"records\"}") == "1");
  CHECK(s.at("tumbled_lines_accepted_total{pipeline=\"records\"}") == "1000");
  CHECK(s.at("tumbled_lines_rejected_total{pipeline=\"records\",reason=\"not_integer\"}") == "3");
  CHECK(s.at("tumbled_lines_rejected_total{pipeline=\"records\",reason=\"out_of_range\"}") == "2");
  CHECK(s.at("tumbled_lines_rejected_total{pipeline=\"records\",reason=\"too_long\"}") == "1");
  CHECK(s.at("tumbled_source_paused{pipeline=\"records\"}") == "1");
  CHECK(s.at("tumbled_windows_emitted_total{pipeline=\"records\"}") == "12");
  CHECK(s.at("tumbled_sums_saturated_total{pipeline=\"records\"}") == "1");
  CHECK(s.at("tumbled_points_written_total{pipeline=\"records\"}") == "10");
  CHECK(s.at("tumbled_batches_sent_total{pipeline=\"records\"}") == "5");
  CHECK(s.at("tumbled_batches_failed_attempts_total{pipeline=\"records\"}") == "6");
  CHECK(s.at("tumbled_batches_dead_lettered_total{pipeline=\"records\"}") == "1");
  CHECK(s.at("tumbled_batches_split_total{pipeline=\"records\"}") == "2");
  CHECK(s.at("tumbled_points_dead_lettered_total{pipeline=\"records\"}") == "1");
  CHECK(s.at("tumbled_points_dropped_total{pipeline=\"records\"}") == "0");
  CHECK(s.at("tumbled_points_waiting{pipeline=\"records\"}") == "2");
  CHECK(s.at("tumbled_oldest_waiting_point_age_seconds{pipeline=\"records\"}") == "1.5");
  CHECK(s.at("tumbled_last_successful_write_timestamp_seconds{pipeline=\"records\"}") ==
        "1795538790.123");
  CHECK(s.at("tumbled_checkpoints_total{pipeline=\"records\"}") == "40");
  CHECK(s.at("tumbled_checkpoints_failed_total{pipeline=\"records\"}") == "3");
  CHECK(s.at("tumbled_last_checkpoint_duration_seconds{pipeline=\"records\"}") == "0.25");
  CHECK(s.at("tumbled_last_checkpoint_bytes{pipeline=\"records\"}") == "4096");

  // Every family: one HELP, one TYPE, a sample per pipeline.
  const auto names = family_names(text);
  CHECK(names.size() == 29);
  CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size());
  for (const auto& name : names) {
    CAPTURE(name);
    CHECK(name.rfind("tumbled_", 0) == 0);
    const bool counter = text.find("# TYPE " + name + " counter\n") != std::string::npos;
    CHECK(counter == (name.size() > 6 && name.substr(name.size() - 6) == "_total"));
    CHECK(text.find("# HELP " + name + " ") != std::string::npos);
    for (const std::string pipeline : {"records", "other"}) {
      const bool sampled =
          text.find("\n" + name + "{pipeline=\"" + pipeline + "\"") != std::string::npos ||
          text.find("\n" + name + "_bucket{pipeline=\"" + pipeline + "\"") != std::string::npos;
      CHECK(sampled);
    }
  }
  CHECK(text.back() == '\n');
}

TEST_CASE("the HTTP server's own families follow the pipelines', without a pipeline label",
          "[http]") {
  const std::vector<PipelineStats> stats{sample_stats("records")};
  tumbled::http::HttpServerStats server;
  server.connections_open = 3;
  server.connections_evicted = 5;
  server.requests_refused = 2;
  const std::string text = prometheus_text(stats, &server);
  CAPTURE(text);
  const auto s = samples(text);
  CHECK(s.at("tumbled_http_connections_open") == "3");
  CHECK(s.at("tumbled_http_connections_evicted_total") == "5");
  CHECK(s.at("tumbled_http_requests_refused_total") == "2");
  CHECK(s.at("tumbled_http_connection_failures_total") == "0");
  const auto names = family_names(text);
  CHECK(names.size() == family_names(prometheus_text(stats)).size() + 8);
  CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size());
}

TEST_CASE("the write latency histogram has cumulative buckets, +Inf, sum and count", "[http]") {
  const std::vector<PipelineStats> stats{sample_stats("records")};
  const std::string text = prometheus_text(stats);
  CAPTURE(text);
  const auto s = samples(text);
  const std::string b = "tumbled_write_duration_seconds_bucket{pipeline=\"records\",le=";
  CHECK(text.find("# TYPE tumbled_write_duration_seconds histogram\n") != std::string::npos);
  CHECK(s.at(b + "\"0.001\"}") == "1");
  CHECK(s.at(b + "\"0.0025\"}") == "1");
  CHECK(s.at(b + "\"0.005\"}") == "3");
  CHECK(s.at(b + "\"5\"}") == "3");
  CHECK(s.at(b + "\"+Inf\"}") == "4");
  CHECK(s.at("tumbled_write_duration_seconds_count{pipeline=\"records\"}") == "4");
  CHECK(std::stod(s.at("tumbled_write_duration_seconds_sum{pipeline=\"records\"}")) ==
        Approx(7.5064));
  // Bounds in increasing order, each written once.
  std::size_t at = 0;
  for (const double bound : tumbled::sink::LatencyHistogram::kBoundsSeconds) {
    const auto next = text.find(b + "\"" + format_value(bound) + "\"}", at);
    CHECK(next != std::string::npos);
    at = next;
  }
}

TEST_CASE("pipeline names are escaped in every label", "[http]") {
  const std::vector<PipelineStats> stats{sample_stats("we\"ird\\name\n")};
  const std::string text = prometheus_text(stats);
  CHECK(text.find("tumbled_points_waiting{pipeline=\"we\\\"ird\\\\name\\n\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("we\"ird") == std::string::npos);
}

TEST_CASE("a pipeline is ready when it listens and its last write succeeded", "[http]") {
  using State = Readiness::State;
  PipelineStats s;
  s.name = "records";
  CHECK(readiness(s).state == State::not_ready);  // not started
  CHECK(readiness(s).reason == "not accepting connections");
  s.listening = true;
  CHECK(readiness(s).state == State::needs_ping);  // nothing written yet: ask InfluxDB
  s.write_seconds.observe(0.01);
  s.last_write_failure = "connect 127.0.0.1:8086: Connection refused";
  CHECK(readiness(s).state == State::not_ready);
  CHECK(readiness(s).reason ==
        "last write to InfluxDB failed: connect 127.0.0.1:8086: Connection refused");
  s.last_write_failure.clear();
  CHECK(readiness(s).state == State::ready);
  CHECK(readiness(s).reason.empty());
  s.listening = false;  // stopping
  CHECK(readiness(s).state == State::not_ready);
}

TEST_CASE("the HTTP source's families: only with a pipeline that reads HTTP, only its samples",
          "[http]") {
  PipelineStats web = sample_stats("web");
  web.reads_http = true;
  web.requests.by_status[204] = 7;
  web.requests.by_status[400] = 2;
  web.requests.by_status[503] = 1;
  web.requests.seconds.observe(0.002);  // bucket 0.0025
  web.requests.seconds.observe(0.02);   // bucket 0.025
  web.requests.body_bytes = 123456;
  web.requests.timed_out = 3;
  web.requests.tls_handshake_failures = 4;
  web.log_syncs = 5;
  const PipelineStats tcp = sample_stats("tcp");

  const std::vector<PipelineStats> tcp_only{tcp};
  const std::string without = prometheus_text(tcp_only);
  CHECK(without.find("source_http") == std::string::npos);

  const std::vector<PipelineStats> both{tcp, web};
  const std::string text = prometheus_text(both);
  CHECK(family_names(text).size() == family_names(without).size() + 6);
  const auto s = samples(text);
  CHECK(s.at("tumbled_source_http_requests_total{pipeline=\"web\",code=\"204\"}") == "7");
  CHECK(s.at("tumbled_source_http_requests_total{pipeline=\"web\",code=\"400\"}") == "2");
  CHECK(s.at("tumbled_source_http_requests_total{pipeline=\"web\",code=\"503\"}") == "1");
  CHECK(
      s.at("tumbled_source_http_request_duration_seconds_bucket{pipeline=\"web\",le=\"0.001\"}") ==
      "0");
  CHECK(
      s.at("tumbled_source_http_request_duration_seconds_bucket{pipeline=\"web\",le=\"0.0025\"}") ==
      "1");
  CHECK(
      s.at("tumbled_source_http_request_duration_seconds_bucket{pipeline=\"web\",le=\"0.025\"}") ==
      "2");
  CHECK(s.at("tumbled_source_http_request_duration_seconds_bucket{pipeline=\"web\",le=\"+Inf\"}") ==
        "2");
  CHECK(s.at("tumbled_source_http_request_duration_seconds_count{pipeline=\"web\"}") == "2");
  CHECK(s.at("tumbled_source_http_received_bytes_total{pipeline=\"web\"}") == "123456");
  CHECK(s.at("tumbled_source_http_timeouts_total{pipeline=\"web\"}") == "3");
  CHECK(s.at("tumbled_source_http_tls_handshake_failures_total{pipeline=\"web\"}") == "4");
  CHECK(s.at("tumbled_source_http_log_syncs_total{pipeline=\"web\"}") == "5");
  // The TCP pipeline has no samples in them, and the write histogram is still the sink's.
  CHECK(s.count("tumbled_source_http_received_bytes_total{pipeline=\"tcp\"}") == 0);
  CHECK(s.at("tumbled_write_duration_seconds_count{pipeline=\"web\"}") == "4");
}

TEST_CASE("README lists every metric the exposition writes", "[http][docs]") {
  std::ifstream file(TUMBLED_SOURCE_DIR "/README.md");
  REQUIRE(file);
  std::stringstream readme;
  readme << file.rdbuf();
  PipelineStats web = sample_stats("web");
  web.reads_http = true;
  const std::vector<PipelineStats> stats{sample_stats("records"), web};
  const tumbled::http::HttpServerStats server;
  for (const auto& name : family_names(prometheus_text(stats, &server))) {
    CAPTURE(name);
    CHECK(readme.str().find("`" + name + "`") != std::string::npos);
  }
}
