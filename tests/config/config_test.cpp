#include "config/config.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <tuple>

using namespace tumbled::config;
using namespace std::chrono_literals;

namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const EnvLookup no_env = env_of({});

Config parse_text(const std::string& yaml, const EnvLookup& env = no_env) {
  return parse(yaml, "t.yaml", env);
}

// The message parse() throws, or "" if it does not throw.
std::string error_of(const std::string& yaml, const EnvLookup& env = no_env) {
  try {
    parse(yaml, "t.yaml", env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// The example from the README.
const std::string kFullExample = R"(log: {level: debug}
state: {dir: /var/lib/tumbled, checkpoint_interval: 2s}
shutdown_timeout: 7s
pipelines:
  - name: records
    source: {tcp: {listen: 127.0.0.1:9000, max_line_bytes: 2048}}
    window: {size: 10s, aggregates: [sum, count, mean]}
    point: {measurement: recs, tags: {window: 10-sec, host: "${HOST}"}}
    sink:
      influxdb:
        url: http://influx.example:8087/proxy/
        database: telemetry2
        retention_policy: "autogen"
        username: "writer"
        password: ${INFLUX_PASSWORD}
        batch_size: 500
        batch_interval: 250ms
        request_timeout: 3s
        retry: {initial_backoff: 200ms, max_backoff: 1m, max_retries: 7}
  - name: other-2
    source: {tcp: {listen: "[::1]:0"}}
    point: {tags: {}}
)";

const EnvLookup kFullEnv = env_of({{"INFLUX_PASSWORD", "s3cret"}, {"HOST", "box1"}});

// A minimal pipeline prefix for error cases that only need one setting changed.
const std::string kOne = "pipelines:\n  - name: a\n";

// A file the config takes for a PEM certificate (it only looks for the BEGIN line; OpenSSL reads
// the certificates when the daemon starts); README.md is readable but has none.
std::string pem_file() {
  struct File {
    std::string path = (std::filesystem::temp_directory_path() /
                        ("tumbled_config_test_ca_" + std::to_string(::getpid()) + ".pem"))
                           .string();
    File() {
      std::ofstream(path) << "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    }
    ~File() { std::remove(path.c_str()); }
  };
  static const File file;
  return file.path;
}
const std::string kReadme = TUMBLED_SOURCE_DIR "/README.md";

}  // namespace

TEST_CASE("a minimal config takes every default from the header", "[config]") {
  const Config c = parse_text("pipelines: [{name: a}]\n");
  Config expected;
  expected.pipelines.push_back(PipelineConfig{});
  expected.pipelines[0].name = "a";
  CHECK(c == expected);

  CHECK(c.log_level == "info");
  CHECK(c.state_dir == "./var/tumbled");
  CHECK(c.checkpoint_interval == 1s);
  CHECK(c.shutdown_timeout == 5s);
  CHECK(c.log_format == "text");
  CHECK(c.http_listen == Endpoint{"127.0.0.1", 9100});
  REQUIRE(c.pipelines.size() == 1);
  const PipelineConfig& p = c.pipelines[0];
  CHECK(p.listen == Endpoint{"127.0.0.1", 9000});
  CHECK(p.max_line_bytes == 1024);
  CHECK(p.idle_timeout == 5min);
  CHECK(p.window_size == 10s);
  CHECK(p.aggregates == std::vector{Aggregate::sum});
  CHECK(p.measurement == "records");
  CHECK(p.tags == std::map<std::string, std::string>{{"window", "10-sec"}});
  CHECK(p.influx.scheme == "http");
  CHECK(p.influx.endpoint == Endpoint{"127.0.0.1", 8086});
  CHECK(p.influx.path_prefix.empty());
  CHECK(p.influx.database == "telemetry");
  CHECK(p.influx.retention_policy.empty());
  CHECK(p.influx.username.empty());
  CHECK(p.influx.password.empty());
  CHECK(p.influx.batch_size == 100);
  CHECK(p.influx.max_batch_size == 5'000);
  CHECK(p.tcp_threads == 1);
  CHECK(p.influx.batch_interval == 1s);
  CHECK(p.influx.request_timeout == 5s);
  CHECK(p.influx.retry.initial_backoff == 100ms);
  CHECK(p.influx.retry.max_backoff == 30s);
  CHECK(p.influx.retry.max_retries == -1);
}

TEST_CASE("max_batch_size: 5000 or batch_size if left out, as written otherwise", "[config]") {
  const auto [sink, batch_size, max_batch_size] =
      GENERATE(table<std::string, std::size_t, std::size_t>({
          {"{}", 100, 5'000},
          {"{batch_size: 500}", 500, 5'000},
          {"{batch_size: 5000}", 5'000, 5'000},
          {"{batch_size: 20000}", 20'000, 20'000},  // never below batch_size
          {"{max_batch_size: 100}", 100, 100},      // batches never grow
          {"{batch_size: 10, max_batch_size: 200000}", 10, 200'000},
      }));
  CAPTURE(sink);
  const Config c =
      parse_text("pipelines:\n  - name: a\n    sink: {influxdb: " + sink + "}\n", env_of({}));
  CHECK(c.pipelines.at(0).influx.batch_size == batch_size);
  CHECK(c.pipelines.at(0).influx.max_batch_size == max_batch_size);
}

TEST_CASE("empty intermediate mappings are accepted", "[config]") {
  const Config c = parse_text(
      "log:\nstate: {}\npipelines:\n  - name: a\n    source:\n    sink: {influxdb: {}}\n");
  CHECK(c.log_level == "info");
  CHECK(c.pipelines.at(0).listen == Endpoint{"127.0.0.1", 9000});
}

TEST_CASE("the full example parses to the expected structs", "[config]") {
  const Config c = parse_text(kFullExample, kFullEnv);
  CHECK(c.log_level == "debug");
  CHECK(c.state_dir == "/var/lib/tumbled");
  CHECK(c.checkpoint_interval == 2s);
  CHECK(c.shutdown_timeout == 7s);
  REQUIRE(c.pipelines.size() == 2);

  const PipelineConfig& p = c.pipelines[0];
  CHECK(p.name == "records");
  CHECK(p.listen == Endpoint{"127.0.0.1", 9000});
  CHECK(p.max_line_bytes == 2048);
  CHECK(p.window_size == 10s);
  CHECK(p.aggregates == std::vector{Aggregate::sum, Aggregate::count, Aggregate::mean});
  CHECK(p.measurement == "recs");
  CHECK(p.tags == std::map<std::string, std::string>{{"window", "10-sec"}, {"host", "box1"}});
  CHECK(p.influx.scheme == "http");
  CHECK(p.influx.endpoint == Endpoint{"influx.example", 8087});
  CHECK(p.influx.path_prefix == "/proxy");
  CHECK(p.influx.database == "telemetry2");
  CHECK(p.influx.retention_policy == "autogen");
  CHECK(p.influx.username == "writer");
  CHECK(p.influx.password == "s3cret");
  CHECK(p.influx.batch_size == 500);
  CHECK(p.influx.max_batch_size == 5'000);
  CHECK(p.influx.batch_interval == 250ms);
  CHECK(p.influx.request_timeout == 3s);
  CHECK(p.influx.retry.initial_backoff == 200ms);
  CHECK(p.influx.retry.max_backoff == 1min);
  CHECK(p.influx.retry.max_retries == 7);

  const PipelineConfig& q = c.pipelines[1];
  CHECK(q.name == "other-2");
  CHECK(q.listen == Endpoint{"::1", 0});
  CHECK(q.tags.empty());  // `tags: {}` means no tags, not the default
  CHECK(q.influx == InfluxSinkConfig{});
}

TEST_CASE("the spec's sample config parses", "[config]") {
  const std::string yaml = R"(log: {level: info}                     # trace|debug|info|warn|error
state: {dir: ./var/tumbled, checkpoint_interval: 1s}
shutdown_timeout: 5s                   # bound on the final flush at SIGTERM
pipelines:
  - name: records                      # unique, [A-Za-z0-9_-]+, 1..64 chars
    source: {tcp: {listen: 127.0.0.1:9000, max_line_bytes: 1024}}
    window: {size: 10s, aggregates: [sum]}
    point: {measurement: records, tags: {window: 10-sec}}
    sink:
      influxdb:
        url: http://127.0.0.1:8086
        database: telemetry
        retention_policy: ""
        username: ""
        password: ${INFLUX_PASSWORD}
        batch_size: 100
        batch_interval: 1s
        request_timeout: 5s
        retry: {initial_backoff: 100ms, max_backoff: 30s, max_retries: -1}
)";
  Config expected;
  expected.pipelines.push_back(PipelineConfig{});
  expected.pipelines[0].name = "records";
  expected.pipelines[0].influx.password = "pw";
  CHECK(parse_text(yaml, env_of({{"INFLUX_PASSWORD", "pw"}})) == expected);
}

TEST_CASE("source.tcp.idle_timeout takes a duration, or 0 for never", "[config]") {
  const auto [text, expected] = GENERATE(table<std::string, std::chrono::milliseconds>({
      {"30s", 30s}, {"0", 0ms}, {"0s", 0ms}, {"250ms", 250ms}, {"1h", 1h}}));
  CAPTURE(text);
  const Config c = parse_text("pipelines: [{name: a, source: {tcp: {idle_timeout: " + text + "}}}]\n");
  CHECK(c.pipelines.at(0).idle_timeout == expected);
  CHECK(parse_text(to_yaml(c)).pipelines.at(0).idle_timeout == expected);
}

TEST_CASE("a bad source.tcp.idle_timeout is an error naming the key", "[config]") {
  const std::string bad = GENERATE("-1s", "5", "soon", "1.5s");
  CAPTURE(bad);
  try {
    parse_text("pipelines: [{name: a, source: {tcp: {idle_timeout: " + bad + "}}}]\n");
    FAIL("accepted " << bad);
  } catch (const tumbled::config::ConfigError& e) {
    CHECK_THAT(e.what(), Catch::Contains("pipelines[0].source.tcp.idle_timeout"));
  }
}

TEST_CASE("errors name the file, the 1-based line and the key path", "[config]") {
  // yaml, line, key path, part of the explanation
  const auto [yaml, line, path, what] = GENERATE(table<std::string, int, std::string, std::string>({
      // Structure of the document
      {"", 1, "pipelines", "empty"},
      {"# just a comment\n\n", 1, "pipelines", "empty"},
      {"log: {level: info}\n", 1, "pipelines", "required key is missing"},
      {"log: {level: info}\npipelines: []\n", 2, "pipelines", "at least one pipeline"},
      {"pipelines:\n", 1, "pipelines", "missing value"},
      {"pipelines: {name: a}\n", 1, "pipelines", "expected a list, got a mapping"},
      {"pipelines: [a]\n", 1, "pipelines[0]", "expected a mapping, got a scalar"},
      {"- a\n- b\n", 1, "(top level)", "expected a mapping, got a list"},
      {"pipelines: [{name: a}]\n---\npipelines: [{name: b}]\n", 3, "(document)",
       "only one YAML document"},
      // YAML syntax
      // A stray ',' made yaml-cpp 0.7's LoadAll allocate forever (found by tests/fuzz).
      {",", 1, "(syntax)", "invalid YAML: unexpected ','"},
      {"# x\n[a],\n", 2, "(syntax)", "invalid YAML: unexpected ','"},
      {"pipelines:\n  - name: a\n   bad: 1\n", 3, "(syntax)", "invalid YAML"},
      {"pipelines: [{name: a}\nlog: {}\n", 2, "(syntax)", "invalid YAML"},
      {"pipelines: [{name: a}]\nlog: *nowhere\n", 2, "(syntax)", "anchor"},
      // Unknown and duplicate keys
      {"pipelines: [{name: a}]\nlogs: {level: info}\n", 2, "logs", "unknown key"},
      {"pipelines: [{name: a}]\nlog: {level: info, colour: red}\n", 2, "log.colour", "unknown key"},
      {kOne + "    window: {sise: 10s}\n", 3, "pipelines[0].window.sise", "unknown key"},
      {kOne + "    sink:\n      influxdb:\n        retry:\n          jitter: 1\n", 6,
       "pipelines[0].sink.influxdb.retry.jitter", "unknown key"},
      {kOne + "    sink.influxdb: {batch_size: 5}\n", 3, "pipelines[0].sink.influxdb",
       "unknown key"},
      {kOne + "    source:\n      tcp.listen: 127.0.0.1:1\n", 4, "pipelines[0].source.tcp.listen",
       "unknown key (expected one of: tcp, http, kafka, format, precision)"},
      {"pipelines: [{name: a}]\n\"\": 1\n", 2, "", "unknown key"},
      {"pipelines: [{name: a}]\nshutdown_timeout: 1s\nshutdown_timeout: 2s\n", 3,
       "shutdown_timeout", "duplicate key (first on line 2)"},
      // Wrong types
      {kOne + "    sink:\n      influxdb:\n        batch_size: {x: 1}\n", 5,
       "pipelines[0].sink.influxdb.batch_size", "expected an integer, got a mapping"},
      {kOne + "    sink: {influxdb: {batch_size: abc}}\n", 3,
       "pipelines[0].sink.influxdb.batch_size", "expected an integer, got \"abc\""},
      {kOne + "    sink: {influxdb: {batch_size: 1.5}}\n", 3,
       "pipelines[0].sink.influxdb.batch_size", "expected an integer"},
      {kOne + "    point: {measurement: [a]}\n", 3, "pipelines[0].point.measurement",
       "expected a string, got a list"},
      {"pipelines: [{name: a}]\nlog: info\n", 2, "log", "expected a mapping, got a scalar"},
      {"pipelines: [{name: a}]\nshutdown_timeout:\n", 2, "shutdown_timeout", "missing value"},
      {kOne + "    window: {aggregates: sum}\n", 3, "pipelines[0].window.aggregates",
       "expected a list, got a scalar"},
      {kOne + "    point: {tags: [a]}\n", 3, "pipelines[0].point.tags",
       "expected a mapping, got a list"},
      // Durations
      {kOne + "    window: {size: 10}\n", 3, "pipelines[0].window.size", "missing unit"},
      {kOne + "    window: {size: 1.5s}\n", 3, "pipelines[0].window.size", "whole number"},
      {kOne + "    window: {size: -1s}\n", 3, "pipelines[0].window.size", "negative"},
      {kOne + "    window: {size: 10d}\n", 3, "pipelines[0].window.size", "unknown unit"},
      {kOne + "    window: {size: 0s}\n", 3, "pipelines[0].window.size", "greater than 0"},
      {kOne + "    window: {size: 99999999999999999999h}\n", 3, "pipelines[0].window.size",
       "too large"},
      {"pipelines: [{name: a}]\nstate:\n  checkpoint_interval: soon\n", 3,
       "state.checkpoint_interval", "invalid duration \"soon\""},
      // Out of range
      {kOne + "    sink: {influxdb: {batch_size: 0}}\n", 3, "pipelines[0].sink.influxdb.batch_size",
       "out of range: 0 (expected 1..1000000)"},
      {kOne + "    sink: {influxdb: {batch_size: 1000001}}\n", 3,
       "pipelines[0].sink.influxdb.batch_size", "out of range"},
      {kOne + "    sink: {influxdb: {batch_size: -1}}\n", 3,
       "pipelines[0].sink.influxdb.batch_size", "out of range"},
      {kOne + "    sink: {influxdb: {batch_size: 99999999999999999999}}\n", 3,
       "pipelines[0].sink.influxdb.batch_size", "out of range"},
      {kOne + "    sink: {influxdb: {max_batch_size: 0}}\n", 3,
       "pipelines[0].sink.influxdb.max_batch_size", "out of range: 0 (expected 1..1000000)"},
      {kOne + "    sink: {influxdb: {max_batch_size: 1000001}}\n", 3,
       "pipelines[0].sink.influxdb.max_batch_size", "out of range"},
      {kOne + "    sink: {influxdb: {max_batch_size: 99}}\n", 3,
       "pipelines[0].sink.influxdb.max_batch_size",
       "max_batch_size (99) must not be less than batch_size (100)"},
      {kOne + "    source: {tcp: {threads: 0}}\n", 3, "pipelines[0].source.tcp.threads",
       "out of range: 0 (expected 1..256)"},
      {kOne + "    source: {tcp: {threads: 257}}\n", 3, "pipelines[0].source.tcp.threads",
       "out of range"},
      {kOne + "    source:\n      format: line_protocol\n      tcp: {threads: 2}\n", 5,
       "pipelines[0].source.tcp.threads",
       "more than one reader thread takes format: integers only; line protocol is read on the "
       "event loop's thread (threads: 1)"},
      {kOne + "    source: {http: {listen: 127.0.0.1:8086}, tcp: {threads: 2}}\n", 3,
       "pipelines[0].source.tcp.threads", "only allowed with the TCP source"},
      {kOne + "    sink:\n      influxdb:\n        batch_size: 500\n        max_batch_size: 400\n",
       6, "pipelines[0].sink.influxdb.max_batch_size",
       "max_batch_size (400) must not be less than batch_size (500); equal to it, batches never "
       "grow past batch_size"},
      {kOne + "    sink: {influxdb: {retry: {max_retries: -2}}}\n", 3,
       "pipelines[0].sink.influxdb.retry.max_retries", "out of range: -2 (expected >= -1)"},
      {kOne + "    source: {tcp: {max_line_bytes: 0}}\n", 3,
       "pipelines[0].source.tcp.max_line_bytes", "out of range"},
      {kOne + "    sink: {influxdb: {batch_interval: 0ms}}\n", 3,
       "pipelines[0].sink.influxdb.batch_interval", "greater than 0"},
      {kOne + "    sink: {influxdb: {request_timeout: 0s}}\n", 3,
       "pipelines[0].sink.influxdb.request_timeout", "greater than 0"},
      {kOne + "    sink: {influxdb: {retry: {initial_backoff: 0s}}}\n", 3,
       "pipelines[0].sink.influxdb.retry.initial_backoff", "greater than 0"},
      {kOne + "    sink: {influxdb: {retry: {initial_backoff: 2s, max_backoff: 1s}}}\n", 3,
       "pipelines[0].sink.influxdb.retry.max_backoff", "must not be less than initial_backoff"},
      {kOne + "    sink:\n      influxdb:\n        retry:\n          initial_backoff: 1m\n", 6,
       "pipelines[0].sink.influxdb.retry.initial_backoff", "max_backoff (30s)"},
      // Names
      {"pipelines:\n  - window: {size: 1s}\n", 2, "pipelines[0].name", "required key is missing"},
      {"pipelines:\n  - {name: a, source: {tcp: {listen: \"[::1]:0\"}}}\n  - {name: b, source: "
       "{tcp: {listen: \"[::1]:0\"}}}\n"
       "  - {name: a, source: {tcp: {listen: \"[::1]:0\"}}}\n",
       4, "pipelines[2].name", "duplicate pipeline name \"a\" (also pipelines[0] on line 2)"},
      {"pipelines: [{name: \"a b\"}]\n", 1, "pipelines[0].name", "invalid name"},
      {"pipelines: [{name: \"\"}]\n", 1, "pipelines[0].name", "invalid name"},
      {"pipelines: [{name: " + std::string(65, 'x') + "}]\n", 1, "pipelines[0].name",
       "invalid name"},
      // Listen addresses
      {"pipelines:\n  - name: a\n    source: {tcp: {listen: 127.0.0.1:7000}}\n  - name: b\n"
       "    source: {tcp: {listen: 127.0.0.1:7000}}\n",
       5, "pipelines[1].source.tcp.listen",
       "collides with 127.0.0.1:7000 of pipelines[0] on line 3"},
      {"pipelines:\n  - name: a\n  - name: b\n", 3, "pipelines[1].source.tcp.listen",
       "127.0.0.1:9000 (the default) collides with 127.0.0.1:9000 (the default) of pipelines[0] on "
       "line 2"},
      {"pipelines:\n  - name: a\n    source: {tcp: {listen: \"[::1]:7000\"}}\n  - name: b\n"
       "    source: {tcp: {listen: \"[0:0::1]:7000\"}}\n",
       5, "pipelines[1].source.tcp.listen", "collides"},
      {"pipelines:\n  - name: a\n    source: {tcp: {listen: 0.0.0.0:7000}}\n  - name: b\n"
       "    source: {tcp: {listen: localhost:7000}}\n",
       5, "pipelines[1].source.tcp.listen", "collides"},
      {kOne + "    source: {tcp: {listen: localhost}}\n", 3, "pipelines[0].source.tcp.listen",
       "expected host:port"},
      {kOne + "    source: {tcp: {listen: \"::1:9000\"}}\n", 3, "pipelines[0].source.tcp.listen",
       "must be in brackets"},
      {kOne + "    source: {tcp: {listen: \"[::1:9000\"}}\n", 3, "pipelines[0].source.tcp.listen",
       "missing ']'"},
      {kOne + "    source: {tcp: {listen: \"[nope]:9000\"}}\n", 3, "pipelines[0].source.tcp.listen",
       "not an IPv6 address"},
      {kOne + "    source: {tcp: {listen: \"host:http\"}}\n", 3, "pipelines[0].source.tcp.listen",
       "port must be a number"},
      {kOne + "    source: {tcp: {listen: \"host:70000\"}}\n", 3, "pipelines[0].source.tcp.listen",
       "port out of range"},
      {kOne + "    source: {tcp: {listen: \":9000\"}}\n", 3, "pipelines[0].source.tcp.listen",
       "missing host"},
      {kOne + "    source: {tcp: {listen: \"a/b:9000\"}}\n", 3, "pipelines[0].source.tcp.listen",
       "invalid host name"},
      // Aggregates, log level, point
      {kOne + "    window:\n      aggregates:\n        - sum\n        - avg\n", 6,
       "pipelines[0].window.aggregates[1]", "unknown aggregate \"avg\""},
      {kOne + "    window: {aggregates: [sum, sum]}\n", 3, "pipelines[0].window.aggregates[1]",
       "duplicate aggregate"},
      {kOne + "    window: {aggregates: []}\n", 3, "pipelines[0].window.aggregates",
       "at least one"},
      {"pipelines: [{name: a}]\nlog: {level: verbose}\n", 2, "log.level",
       "unknown value \"verbose\" (expected one of trace, debug, info, warn, error)"},
      {kOne + "    point: {measurement: \"\"}\n", 3, "pipelines[0].point.measurement",
       "must not be empty"},
      {kOne + "    point: {tags: {host: \"\"}}\n", 3, "pipelines[0].point.tags.host",
       "must not be empty"},
      {"pipelines: [{name: a}]\nstate: {dir: \"\"}\n", 2, "state.dir", "must not be empty"},
      // InfluxDB sink
      {kOne + "    sink: {influxdb: {url: \"ftp://db\"}}\n", 3, "pipelines[0].sink.influxdb.url",
       "unsupported scheme \"ftp\"; use http:// or https://"},
      {kOne + "    sink: {influxdb: {url: \"db:8086\"}}\n", 3, "pipelines[0].sink.influxdb.url",
       "expected http[s]://"},
      {kOne + "    sink: {influxdb: {url: \"http://\"}}\n", 3, "pipelines[0].sink.influxdb.url",
       "missing host"},
      {kOne + "    sink: {influxdb: {url: \"http://db:0\"}}\n", 3, "pipelines[0].sink.influxdb.url",
       "port out of range"},
      {kOne + "    sink: {influxdb: {url: \"http://db/x?y=1\"}}\n", 3,
       "pipelines[0].sink.influxdb.url", "query strings"},
      {kOne + "    sink: {influxdb: {url: \"http://db#top\"}}\n", 3,
       "pipelines[0].sink.influxdb.url", "query strings and fragments are not allowed"},
      {kOne + "    sink: {influxdb: {url: \"http://@db\"}}\n", 3, "pipelines[0].sink.influxdb.url",
       "credentials in the URL are not allowed"},
      {kOne + "    sink: {influxdb: {url: \"http://:8086\"}}\n", 3,
       "pipelines[0].sink.influxdb.url", "invalid host or port in the URL: missing host"},
      {kOne + "    sink: {influxdb: {url: \"http://db/a b\"}}\n", 3,
       "pipelines[0].sink.influxdb.url", "must not contain spaces or control characters"},
      {kOne + "    sink: {influxdb: {url: \"http://db/a\\tb\"}}\n", 3,
       "pipelines[0].sink.influxdb.url", "must not contain spaces or control characters"},
      // Boost.URL 1.81 stops the authority early and calls the rest a path (boostorg/url#755);
      // the rest goes back to the host and port.
      {kOne + "    sink: {influxdb: {url: \"http://db:80x/y\"}}\n", 3,
       "pipelines[0].sink.influxdb.url", "invalid host or port in the URL: port must be a number"},
      {kOne + "    sink: {influxdb: {url: \"http://::1:8086\"}}\n", 3,
       "pipelines[0].sink.influxdb.url", "IPv6 addresses must be in brackets"},
      {kOne + "    sink: {influxdb: {url: \"http://[::1]x\"}}\n", 3,
       "pipelines[0].sink.influxdb.url", "expected [IPv6]:port"},
      // Not RFC 3986 URIs, which the hand-written parser let through into the request target.
      {kOne + "    sink: {influxdb: {url: \"http://db/%zz\"}}\n", 3,
       "pipelines[0].sink.influxdb.url", "not a valid URL: expected http[s]://host[:port][/path]"},
      {kOne + "    sink: {influxdb: {url: \"http://db/{prefix}\"}}\n", 3,
       "pipelines[0].sink.influxdb.url", "other characters in the path %-encoded"},
      {kOne + "    sink: {influxdb: {url: \"http://db/\xc3\xa9\"}}\n", 3,
       "pipelines[0].sink.influxdb.url", "not a valid URL"},
      {kOne + "    sink: {influxdb: {database: \"\"}}\n", 3, "pipelines[0].sink.influxdb.database",
       "must not be empty"},
      // API v1 and v2: each refuses the other's keys, v2 needs org and bucket
      {kOne + "    sink: {influxdb: {api: v3}}\n", 3, "pipelines[0].sink.influxdb.api",
       "unknown value \"v3\" (expected one of v1, v2)"},
      {kOne + "    sink:\n      influxdb:\n        bucket: b\n", 5,
       "pipelines[0].sink.influxdb.bucket", "only allowed with api: v2 (api is v1, the default)"},
      {kOne + "    sink:\n      influxdb:\n        api: v1\n        token: t\n", 6,
       "pipelines[0].sink.influxdb.token", "only allowed with api: v2 (api is v1)"},
      {kOne + "    sink:\n      influxdb:\n        org: o\n        bucket: b\n"
              "        password: p\n        api: v2\n",
       7, "pipelines[0].sink.influxdb.password", "only allowed with api: v1 (api is v2)"},
      {kOne + "    sink:\n      influxdb:\n        database: d\n        api: v2\n"
              "        org: o\n        bucket: b\n",
       5, "pipelines[0].sink.influxdb.database", "only allowed with api: v1 (api is v2)"},
      {kOne + "    sink:\n      influxdb:\n        api: v2\n        bucket: b\n", 5,
       "pipelines[0].sink.influxdb.org", "required key is missing (needed with api: v2)"},
      {kOne + "    sink:\n      influxdb:\n        org: o\n        api: v2\n", 6,
       "pipelines[0].sink.influxdb.bucket", "required key is missing (needed with api: v2)"},
      {kOne + "    sink: {influxdb: {api: v2, org: o, bucket: \"\"}}\n", 3,
       "pipelines[0].sink.influxdb.bucket", "must not be empty"},
      // TLS
      {kOne + "    sink:\n      influxdb:\n        tls: {insecure_skip_verify: true}\n", 5,
       "pipelines[0].sink.influxdb.tls.insecure_skip_verify",
       "only allowed with an https:// URL (url is http://127.0.0.1:8086, the default)"},
      {kOne + "    sink:\n      influxdb:\n        url: http://db\n        tls:\n"
              "          ca_file: \"\"\n",
       7, "pipelines[0].sink.influxdb.tls.ca_file",
       "only allowed with an https:// URL (url is http://db:8086)"},
      {kOne + "    sink: {influxdb: {url: \"https://db\", tls: {insecure_skip_verify: yes}}}\n", 3,
       "pipelines[0].sink.influxdb.tls.insecure_skip_verify",
       "expected true or false, got \"yes\""},
      {kOne + "    sink: {influxdb: {url: \"https://db\", tls: {ca_file: /nonexistent/ca.pem}}}\n",
       3, "pipelines[0].sink.influxdb.tls.ca_file",
       "cannot read \"/nonexistent/ca.pem\": No such file or directory"},
      {kOne + "    sink: {influxdb: {url: \"https://db\", tls: {ca_file: /tmp}}}\n", 3,
       "pipelines[0].sink.influxdb.tls.ca_file", "cannot read \"/tmp\": not a regular file"},
      {kOne + "    sink: {influxdb: {url: \"https://db\", tls: {ca_file: \"" + kReadme + "\"}}}\n",
       3, "pipelines[0].sink.influxdb.tls.ca_file",
       "no PEM certificate (-----BEGIN CERTIFICATE-----) in \"" + kReadme + "\""},
      {kOne + "    sink: {influxdb: {url: \"https://db\", tls: {verify: false}}}\n", 3,
       "pipelines[0].sink.influxdb.tls.verify",
       "unknown key (expected one of: ca_file, insecure_skip_verify)"},
      // gzip
      {kOne + "    sink: {influxdb: {gzip: yes}}\n", 3, "pipelines[0].sink.influxdb.gzip",
       "unknown value \"yes\" (expected true, false or auto)"},
      {kOne + "    sink: {influxdb: {gzip: [true]}}\n", 3, "pipelines[0].sink.influxdb.gzip",
       "expected true, false or auto, got a list"},
      // Environment
      {kOne + "    sink: {influxdb: {password: \"${NOPE}\"}}\n", 3,
       "pipelines[0].sink.influxdb.password", "environment variable NOPE is not set"},
      {kOne + "    sink: {influxdb: {password: \"${OPEN\"}}\n", 3,
       "pipelines[0].sink.influxdb.password", "unterminated"},
      {kOne + "    sink: {influxdb: {password: \"${}\"}}\n", 3,
       "pipelines[0].sink.influxdb.password", "invalid environment variable name"},
      // Text to_yaml could not print back as it is, names InfluxDB would read differently
      // (found by tests/fuzz).
      {kOne + "    sink: {influxdb: {retention_policy: \"au\xea" "\"}}\n", 3,
       "pipelines[0].sink.influxdb.retention_policy", "must be valid UTF-8 text"},
      {kOne + "    point: {tags: {\"\xc0\x80\": v}}\n", 3, "pipelines[0].point.tags",
       "tag names must be valid UTF-8 text"},
      {kOne + "    point: {measurement: \"a\\\\=b\"}\n", 3, "pipelines[0].point.measurement",
       "must not contain a backslash before"},
  }));
  CAPTURE(yaml);
  const std::string message = error_of(yaml);
  const std::string prefix = "t.yaml:" + std::to_string(line) + ": " + path + ": ";
  CHECK(message.substr(0, prefix.size()) == prefix);
  CHECK_THAT(message, Catch::Contains(what));
}

TEST_CASE("credentials in the URL are refused without echoing them", "[config]") {
  const std::string message =
      error_of(kOne + "    sink: {influxdb: {url: \"http://bob:hunter2@db:8086\"}}\n");
  CHECK_THAT(message, Catch::StartsWith("t.yaml:3: pipelines[0].sink.influxdb.url: "));
  CHECK_THAT(message, Catch::Contains("use the username and password keys"));
  CHECK_THAT(message, !Catch::Contains("hunter2"));
}

TEST_CASE("URLs: scheme, default port, IPv6 hosts, path prefixes", "[config]") {
  const auto [url, scheme, host, port, prefix] =
      GENERATE(table<std::string, std::string, std::string, int, std::string>({
          {"http://db", "http", "db", 8086, ""},
          {"http://db/", "http", "db", 8086, ""},
          {"HTTP://db:9999", "http", "db", 9999, ""},
          {"http://[::1]", "http", "::1", 8086, ""},
          {"http://[::1]:1234/influx/", "http", "::1", 1234, "/influx"},
          {"http://10.0.0.1:8086/a/b", "http", "10.0.0.1", 8086, "/a/b"},
          {"https://eu.cloud.example", "https", "eu.cloud.example", 443, ""},
          {"HTTPS://db:8086/influx", "https", "db", 8086, "/influx"},
          {"https://[::1]", "https", "::1", 443, ""},
          {"http://db//", "http", "db", 8086, ""},
          {"http://db/a%20b/c@d:e/", "http", "db", 8086, "/a%20b/c@d:e"},
          // Hosts that begin with an IPv4 address (Boost.URL 1.81 takes 10.0.0.1 for the host).
          {"http://10.0.0.1.nip.io:8087/x", "http", "10.0.0.1.nip.io", 8087, "/x"},
          {"https://10.0.0.1.nip.io", "https", "10.0.0.1.nip.io", 443, ""},
          {"http://10.0.0.1x/", "http", "10.0.0.1x", 8086, ""},
      }));
  CAPTURE(url);
  const Config c = parse_text(kOne + "    sink: {influxdb: {url: \"" + url + "\"}}\n");
  const InfluxSinkConfig& s = c.pipelines.at(0).influx;
  CHECK(s.scheme == scheme);
  CHECK(s.endpoint == Endpoint{host, static_cast<std::uint16_t>(port)});
  CHECK(s.path_prefix == prefix);
}

TEST_CASE("listen addresses: port 0 never collides, different hosts or ports do not", "[config]") {
  const auto [a, b] = GENERATE(table<std::string, std::string>({
      {"127.0.0.1:0", "127.0.0.1:0"},
      {"127.0.0.1:7000", "127.0.0.1:7001"},
      {"127.0.0.1:7000", "127.0.0.2:7000"},
      {"0.0.0.0:7000", "\"[::1]:7000\""},
  }));
  const Config c = parse_text("pipelines:\n  - {name: a, source: {tcp: {listen: " + a +
                              "}}}\n  - {name: b, source: {tcp: {listen: " + b + "}}}\n");
  CHECK(c.pipelines.size() == 2);
}

TEST_CASE("Endpoint::to_string re-brackets IPv6 hosts", "[config]") {
  CHECK(Endpoint{"127.0.0.1", 9000}.to_string() == "127.0.0.1:9000");
  CHECK(Endpoint{"example.org", 1}.to_string() == "example.org:1");
  CHECK(Endpoint{"::1", 0}.to_string() == "[::1]:0");
  const Config c = parse_text(kOne + "    source: {tcp: {listen: \"[fe80::1]:65535\"}}\n");
  CHECK(c.pipelines.at(0).listen == Endpoint{"fe80::1", 65535});
  CHECK(c.pipelines.at(0).listen.to_string() == "[fe80::1]:65535");
}

TEST_CASE("every aggregate name parses and prints back", "[config]") {
  const Config c = parse_text(kOne + "    window: {aggregates: [mean, max, min, count, sum]}\n");
  const std::vector<Aggregate> expected{Aggregate::mean, Aggregate::max, Aggregate::min,
                                        Aggregate::count, Aggregate::sum};
  CHECK(c.pipelines.at(0).aggregates == expected);
  CHECK(std::string(to_string(Aggregate::mean)) == "mean");
}

TEST_CASE("durations parse", "[config]") {
  const auto [text, ms] = GENERATE(table<std::string, std::int64_t>({
      {"0s", 0},
      {"0ms", 0},
      {"1ms", 1},
      {"250ms", 250},
      {"1500ms", 1500},
      {"10s", 10'000},
      {"5m", 300'000},
      {"1h", 3'600'000},
      {"0010s", 10'000},
      {"9223372036854775807ms", 9223372036854775807},
  }));
  CAPTURE(text);
  CHECK(parse_duration(text) == Millis(ms));
}

TEST_CASE("bad durations are rejected", "[config]") {
  const std::string text =
      GENERATE(as<std::string>{}, "", "10", "s", "ms", "-1s", "+1s", "1.5s", "1e3ms", " 1s", "1s ",
               "1 s", "1S", "1sec", "1d", "1us", "9223372036854775808ms", "9223372036854776s",
               "99999999999999999999h");
  CAPTURE(text);
  CHECK_THROWS_AS(parse_duration(text), std::invalid_argument);
}

TEST_CASE("durations format in the largest exact unit and round-trip", "[config]") {
  const auto [ms, text] = GENERATE(table<std::int64_t, std::string>({
      {0, "0s"},
      {1, "1ms"},
      {1500, "1500ms"},
      {1000, "1s"},
      {10'000, "10s"},
      {90'000, "90s"},
      {300'000, "5m"},
      {5'400'000, "90m"},
      {3'600'000, "1h"},
      {86'400'000, "24h"},
  }));
  CHECK(format_duration(Millis(ms)) == text);
  CHECK(parse_duration(format_duration(Millis(ms))) == Millis(ms));
}

TEST_CASE("${VAR} is substituted in any scalar value", "[config]") {
  const auto env = env_of({{"PORT", "7000"}, {"A", "x"}, {"EMPTY", ""}, {"SIZE", "5s"}});
  const Config c = parse_text(
      "pipelines:\n"
      "  - name: p${A}${A}\n"
      "    source: {tcp: {listen: \"127.0.0.1:${PORT}\"}}\n"
      "    window: {size: \"${SIZE}\", aggregates: [\"${EMPTY}sum\"]}\n"
      "    point: {tags: {t: \"<${A}-${A}>$ {A}\"}}\n"
      "    sink: {influxdb: {password: \"${EMPTY}\", username: \"$A${A}\"}}\n",
      env);
  const PipelineConfig& p = c.pipelines.at(0);
  CHECK(p.name == "pxx");
  CHECK(p.listen.port == 7000);
  CHECK(p.window_size == 5s);
  CHECK(p.aggregates == std::vector{Aggregate::sum});
  CHECK(p.tags.at("t") == "<x-x>$ {A}");
  CHECK(p.influx.password.empty());  // set but empty is fine
  CHECK(p.influx.username == "$Ax");
}

TEST_CASE("an unset variable is an error naming it, on its line", "[config]") {
  const std::string message = error_of(
      "pipelines:\n  - name: a\n    point:\n      tags: {host: \"${HOSTNAME_FOR_TEST}\"}\n");
  CHECK_THAT(message, Catch::StartsWith("t.yaml:4: pipelines[0].point.tags.host: "));
  CHECK_THAT(message, Catch::Contains("HOSTNAME_FOR_TEST is not set"));
}

TEST_CASE("process_environment reads the real environment", "[config]") {
  ::setenv("TUMBLED_CONFIG_TEST_VAR", "from-env", 1);
  ::unsetenv("TUMBLED_CONFIG_TEST_UNSET");
  const EnvLookup env = process_environment();
  CHECK(env("TUMBLED_CONFIG_TEST_VAR") == std::optional<std::string>("from-env"));
  CHECK_FALSE(env("TUMBLED_CONFIG_TEST_UNSET").has_value());
  const Config c = parse("pipelines: [{name: \"${TUMBLED_CONFIG_TEST_VAR}\"}]\n", "t.yaml");
  CHECK(c.pipelines.at(0).name == "from-env");
}

TEST_CASE("to_yaml masks the password and re-parses to the same values", "[config]") {
  const Config c = parse_text(kFullExample, kFullEnv);
  const std::string yaml = to_yaml(c);
  CAPTURE(yaml);
  CHECK_THAT(yaml, !Catch::Contains("s3cret"));
  CHECK_THAT(yaml, Catch::Contains("password: \"******\""));
  CHECK_THAT(yaml, Catch::Contains("url: http://influx.example:8087/proxy"));

  Config back = parse_text(yaml);
  CHECK(back.pipelines.at(0).influx.password == "******");
  CHECK(back.pipelines.at(1).influx.password.empty());  // empty stays empty, unmasked
  back.pipelines.at(0).influx.password = "s3cret";
  CHECK(back == c);
  CHECK(to_yaml(back) == yaml);
}

TEST_CASE("API v2, TLS and gzip settings parse", "[config]") {
  const Config c = parse_text(kOne + R"(    sink:
      influxdb:
        url: https://influx.example/prefix
        api: v2
        org: "my org"
        bucket: telemetry/autogen
        token: ${INFLUX_TOKEN}
        tls: {ca_file: "${CA}", insecure_skip_verify: false}
        gzip: true
)",
                              env_of({{"INFLUX_TOKEN", "t0k3n=="}, {"CA", pem_file()}}));
  const InfluxSinkConfig& s = c.pipelines.at(0).influx;
  CHECK(s.scheme == "https");
  CHECK(s.endpoint == Endpoint{"influx.example", 443});
  CHECK(s.path_prefix == "/prefix");
  CHECK(s.api == "v2");
  CHECK(s.org == "my org");
  CHECK(s.bucket == "telemetry/autogen");
  CHECK(s.token == "t0k3n==");
  CHECK(s.tls_ca_file == pem_file());
  CHECK_FALSE(s.tls_insecure_skip_verify);
  CHECK(s.gzip == GzipMode::always);
  CHECK(s.database == "telemetry");  // untouched v1 defaults
  CHECK(warnings(c).empty());

  const auto gzip_of = [](const std::string& value) {
    return parse_text(kOne + "    sink: {influxdb: {gzip: " + value + "}}\n")
        .pipelines.at(0)
        .influx.gzip;
  };
  CHECK(gzip_of("false") == GzipMode::never);
  CHECK(gzip_of("auto") == GzipMode::automatic);
  CHECK(gzip_of("\"true\"") == GzipMode::always);
  CHECK(parse_text("pipelines: [{name: a}]\n").pipelines.at(0).influx.gzip == GzipMode::automatic);
  // An empty token is allowed: a server without authentication gets no Authorization header.
  CHECK(parse_text(kOne + "    sink: {influxdb: {api: v2, org: o, bucket: b}}\n")
            .pipelines.at(0)
            .influx.token.empty());
}

TEST_CASE("to_yaml prints only the keys that apply, secrets masked, and re-parses", "[config]") {
  const Config v2 =
      parse_text(kOne +
                 "    sink: {influxdb: {url: \"https://db:9999\", api: v2, org: o, bucket: b, "
                 "token: s3cret, tls: {insecure_skip_verify: true}, gzip: false}}\n");
  const std::string yaml = to_yaml(v2);
  CAPTURE(yaml);
  CHECK_THAT(yaml, !Catch::Contains("s3cret"));
  CHECK_THAT(yaml, Catch::Contains("token: \"******\""));
  CHECK_THAT(yaml, Catch::Contains("insecure_skip_verify: true"));
  CHECK_THAT(yaml, Catch::Contains("gzip: false"));
  for (const char* v1_only : {"database:", "retention_policy:", "username:", "password:"}) {
    CHECK_THAT(yaml, !Catch::Contains(v1_only));
  }
  Config back = parse_text(yaml);
  back.pipelines.at(0).influx.token = "s3cret";
  CHECK(back == v2);

  const std::string v1_yaml = to_yaml(parse_text("pipelines: [{name: a}]\n"));
  CAPTURE(v1_yaml);
  CHECK_THAT(v1_yaml, Catch::Contains("gzip: auto"));
  for (const char* not_v1 : {"org:", "bucket:", "token:", "tls:", "ca_file", "insecure"}) {
    CHECK_THAT(v1_yaml, !Catch::Contains(not_v1));
  }
}

TEST_CASE("insecure_skip_verify is warned about, naming pipeline and key", "[config]") {
  const Config c = parse_text(
      "pipelines:\n  - name: safe\n    sink: {influxdb: {url: \"https://db\"}}\n"
      "  - name: risky\n    source: {tcp: {listen: 127.0.0.1:9001}}\n"
      "    sink: {influxdb: {url: \"https://db:8443\", tls: {insecure_skip_verify: true}}}\n");
  const auto list = warnings(c);
  REQUIRE(list.size() == 1);
  CHECK_THAT(list[0], Catch::StartsWith("pipelines[1] (risky): "
                                        "sink.influxdb.tls.insecure_skip_verify is true"));
  CHECK_THAT(list[0], Catch::Contains("db:8443 is NOT verified"));
}

TEST_CASE("to_yaml round-trips strings YAML would otherwise reinterpret", "[config]") {
  Config c = parse_text("pipelines: [{name: a}]\n");
  c.state_dir = "null";
  c.pipelines[0].measurement = "true";
  c.pipelines[0].tags = {{"k", "~"}, {"n", "123"}, {"h", "#x"}, {"c", "a: b"}};
  c.pipelines[0].influx.username = "- x";
  c.pipelines[0].influx.retention_policy = "'q'";
  CHECK(parse_text(to_yaml(c)) == c);
}

TEST_CASE("config_reference documents every key once", "[config]") {
  const std::string ref = config_reference();
  CAPTURE(ref);
  CHECK_THAT(ref, Catch::StartsWith("| Key | Type | Default | Description |\n|---|---|---|---|\n"));
  const auto [key, type, def] = GENERATE(table<std::string, std::string, std::string>({
      {"log.level", "one of trace, debug, info, warn, error", "`info`"},
      {"log.format", "one of text, json", "`text`"},
      {"state.dir", "string", "`./var/tumbled`"},
      {"state.checkpoint_interval", "duration > 0", "`1s`"},
      {"shutdown_timeout", "duration > 0", "`5s`"},
      {"http.listen", "host:port or \"\"", "`127.0.0.1:9100`"},
      {"pipelines", "list of pipelines", "required"},
      {"pipelines[].name", "name", "required"},
      {"pipelines[].source.tcp.listen", "host:port", "`127.0.0.1:9000`"},
      {"pipelines[].source.tcp.max_line_bytes", "integer 1..1048576", "`1024`"},
      {"pipelines[].source.tcp.max_connections", "integer 1..1000000", "`1024`"},
      {"pipelines[].source.tcp.idle_timeout", "duration, 0 = never", "`5m`"},
      {"pipelines[].window.size", "duration > 0", "`10s`"},
      {"pipelines[].window.aggregates", "list of sum, count, min, max, mean", "`[sum]`"},
      {"pipelines[].point.measurement", "string", "`records`"},
      {"pipelines[].point.tags", "map of string to string", "`{window: 10-sec}`"},
      {"pipelines[].sink.influxdb.url", "URL", "`http://127.0.0.1:8086`"},
      {"pipelines[].sink.influxdb.api", "one of v1, v2", "`v1`"},
      {"pipelines[].sink.influxdb.database", "string", "`telemetry`"},
      {"pipelines[].sink.influxdb.retention_policy", "string", "`\"\"`"},
      {"pipelines[].sink.influxdb.username", "string", "`\"\"`"},
      {"pipelines[].sink.influxdb.password", "string", "`\"\"`"},
      {"pipelines[].sink.influxdb.org", "string", "required"},
      {"pipelines[].sink.influxdb.bucket", "string", "required"},
      {"pipelines[].sink.influxdb.token", "string", "`\"\"`"},
      {"pipelines[].sink.influxdb.tls.ca_file", "path", "`\"\"`"},
      {"pipelines[].sink.influxdb.tls.insecure_skip_verify", "true or false", "`false`"},
      {"pipelines[].sink.influxdb.gzip", "true, false or auto", "`auto`"},
      {"pipelines[].sink.influxdb.batch_size", "integer 1..1000000", "`100`"},
      {"pipelines[].sink.influxdb.max_batch_size", "integer 1..1000000", "`5000`"},
      {"pipelines[].sink.influxdb.batch_interval", "duration > 0", "`1s`"},
      {"pipelines[].sink.influxdb.request_timeout", "duration > 0", "`5s`"},
      {"pipelines[].sink.influxdb.retry.initial_backoff", "duration > 0", "`100ms`"},
      {"pipelines[].sink.influxdb.retry.max_backoff", "duration > 0", "`30s`"},
      {"pipelines[].sink.influxdb.retry.max_retries", "integer >= -1", "`-1`"},
      {"pipelines[].buffer.max_points", "integer 1..100000000", "`100000`"},
      {"pipelines[].buffer.when_full", "one of block, drop_oldest", "`block`"},
  }));
  const std::string row = "| `" + key + "` | " + type + " | " + def + " | ";
  const auto at = ref.find(row);
  CHECK(at != std::string::npos);
  CHECK(ref.find("| `" + key + "` |", at + 1) == std::string::npos);
  // 2 header lines + one line per key: nothing undocumented sneaks in.
  CHECK(std::count(ref.begin(), ref.end(), '\n') == 2 + 59);
}

TEST_CASE("load_file reads a file and reports unreadable ones", "[config]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tumbled_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "tumbled.yaml").string();
  {
    std::ofstream out(path);
    out << "pipelines:\n  - name: a\n    window: {size: 5x}\n";
  }
  CHECK_THROWS_WITH(load_file(path, no_env),
                    Catch::StartsWith(path + ":3: pipelines[0].window.size: "));
  {
    std::ofstream out(path);
    out << "pipelines: [{name: from-file}]\n";
  }
  CHECK(load_file(path, no_env).pipelines.at(0).name == "from-file");
  CHECK_THROWS_WITH(load_file((dir / "missing.yaml").string(), no_env),
                    (dir / "missing.yaml").string() + ": cannot read: No such file or directory");
  CHECK_THROWS_AS(load_file(dir.string(), no_env), ConfigError);
  CHECK_THROWS_WITH(load_file(dir.string(), no_env), Catch::Contains(": cannot read: "));
  std::filesystem::remove_all(dir);
}

TEST_CASE("malformed input only ever throws ConfigError", "[config]") {
  const std::vector<std::string> nasty{
      "[",
      "{",
      ":",
      "- - -",
      "\t",
      "pipelines: &a [*a]",
      "pipelines: [&p {name: a, source: *p}]",
      "pipelines: [{name: a, source: {tcp: &t {listen: *t}}}]",
      "? [a, b]\n: c\n",
      "pipelines: [{? {a: 1} : 2}]",
      "pipelines: !!binary AAAA",
      std::string(100'000, '['),
      std::string("pipelines: [{name: \0a}]", 24),
      "\xff\xfe\x00",
      "pipelines: [{name: a}]\n<<: {log: {level: info}}\n",
  };
  for (const auto& yaml : nasty) {
    CAPTURE(yaml.substr(0, 80));
    CHECK_THROWS_AS(parse_text(yaml), ConfigError);
  }

  // Random byte mutations of a valid config: parse either succeeds or throws ConfigError.
  std::mt19937 rng(12345);
  const std::string alphabet = "{}[]:,-&*!|>'\"#%@`?${} \n\tab01.";
  for (int i = 0; i < 3000; ++i) {
    std::string yaml = kFullExample;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const auto pos = rng() % yaml.size();
      switch (rng() % 3) {
        case 0: yaml[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: yaml.erase(pos, 1 + rng() % 8); break;
        default: yaml.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    try {
      parse_text(yaml, kFullEnv);
    } catch (const ConfigError&) {
    } catch (...) {
      FAIL("non-ConfigError exception for:\n" << yaml);
    }
  }
}

TEST_CASE("names line protocol cannot carry are refused with key and line", "[config]") {
  const auto message = [](const std::string& yaml) {
    try {
      tumbled::config::parse(yaml, "t.yaml", [](const std::string&) { return std::nullopt; });
    } catch (const tumbled::config::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  CHECK(message("pipelines:\n  - name: a\n    point: {measurement: \"#m\"}\n").find(
            "t.yaml:3: pipelines[0].point.measurement: must not start with '#'") == 0);
  CHECK(message("pipelines:\n  - name: a\n    point:\n      tags: {time: x}\n").find(
            "t.yaml:4: pipelines[0].point.tags.time: tag name 'time' is reserved") == 0);
  CHECK(message("pipelines:\n  - name: a\n    point:\n      tags: {t: \"a\\nb\"}\n").find(
            "t.yaml:4: pipelines[0].point.tags.t: tag value must not contain a line break") == 0);
}

TEST_CASE("http.listen and log.format parse, turn off and refuse collisions", "[config]") {
  const Config off =
      parse_text("http: {listen: \"\"}\nlog: {format: json}\npipelines: [{name: a}]\n");
  CHECK_FALSE(off.http_listen);
  CHECK(off.log_format == "json");
  CHECK(parse_text(to_yaml(off)) == off);
  CHECK(to_yaml(off).find("listen: \"\"") != std::string::npos);
  CHECK(parse_text("http: {listen: \"[::1]:0\"}\npipelines: [{name: a}]\n").http_listen ==
        Endpoint{"::1", 0});

  CHECK(error_of("log: {format: xml}\npipelines: [{name: a}]\n") ==
        "t.yaml:1: log.format: unknown value \"xml\" (expected one of text, json)");
  CHECK(error_of("pipelines: [{name: a}]\nhttp: {listen: 9100}\n") ==
        "t.yaml:2: http.listen: invalid address \"9100\": expected host:port");
  CHECK(error_of("pipelines: [{name: a}]\nhttp: {listen: [a]}\n") ==
        "t.yaml:2: http.listen: expected host:port or \"\", got a list");
  // The endpoints may not take a pipeline's address, written or default.
  CHECK(error_of("pipelines: [{name: a}]\nhttp:\n  listen: 0.0.0.0:9000\n") ==
        "t.yaml:3: http.listen: listen address 0.0.0.0:9000 collides with 127.0.0.1:9000 of "
        "pipelines[0].source.tcp.listen");
  CHECK(error_of("pipelines:\n  - name: a\n    source: {tcp: {listen: 127.0.0.1:9100}}\n") ==
        "t.yaml:1: http.listen: listen address 127.0.0.1:9100 collides with 127.0.0.1:9100 of "
        "pipelines[0].source.tcp.listen");
  CHECK(error_of("http: {listen: \"\"}\npipelines:\n  - name: a\n"
                 "    source: {tcp: {listen: 127.0.0.1:9100}}\n")
            .empty());
}
