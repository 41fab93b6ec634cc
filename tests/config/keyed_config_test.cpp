// Unit tests for the config keys of keyed windows: source.format and source.precision, window.time
// and the event-time keys, window.group_by / fields / max_keys, and point.measurement "" (each
// line's own). Defaults, parsing, the errors (with the file's line and the key's path) and
// KeyedSettings::from.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "window/keyed_windows.hpp"

using namespace tumbled::config;
using namespace std::chrono_literals;
using tumbled::window::KeyedSettings;
using tumbled::window::Precision;

namespace {

const EnvLookup kNoEnv = [](const std::string&) -> std::optional<std::string> {
  return std::nullopt;
};

PipelineConfig pipeline_of(const std::string& yaml) {
  const Config c = parse(yaml, "t.yaml", kNoEnv);
  REQUIRE(c.pipelines.size() == 1);
  return c.pipelines.at(0);
}

// The message parse() throws, or "" if it does not throw.
std::string error_of(const std::string& yaml) {
  try {
    parse(yaml, "t.yaml", kNoEnv);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// Line 1 and 2 of every case: one pipeline named a.
const std::string kOne = "pipelines:\n  - name: a\n";
// Lines 3 and 4: format line_protocol.
const std::string kLineProtocol = kOne + "    source:\n      format: line_protocol\n";

}  // namespace

TEST_CASE("keyed config: an integers pipeline keeps its defaults", "[config][keyed]") {
  const PipelineConfig p = pipeline_of(kOne);
  CHECK(p.format == "integers");
  CHECK(p.measurement == "records");
  CHECK(p.tags == std::map<std::string, std::string>{{"window", "10-sec"}});
  CHECK(p.precision == "ns");
  CHECK(p.window_time == "processing");
  CHECK(p.max_out_of_orderness == 5s);
  CHECK(p.allowed_lateness == 0s);
  CHECK(p.watermark_idle_timeout == 30s);
  CHECK(p.max_future == 60s);
  CHECK(p.group_by.empty());
  CHECK(p.fields.empty());
  CHECK(p.max_keys == 1'000'000);
  const PipelineConfig written = pipeline_of(kOne + "    source: {format: integers}\n");
  CHECK(written == p);
}

TEST_CASE("keyed config: line_protocol defaults to the input's measurement and no tags",
          "[config][keyed]") {
  const PipelineConfig p = pipeline_of(kLineProtocol);
  CHECK(p.format == "line_protocol");
  CHECK(p.measurement.empty());
  CHECK(p.tags.empty());
  CHECK(p.precision == "ns");
  CHECK(p.window_time == "processing");
  CHECK(p.group_by.empty());
  CHECK(p.fields.empty());
  CHECK(p.max_keys == 1'000'000);
  CHECK(p.aggregates == std::vector<Aggregate>{Aggregate::sum});

  // Given, they are kept; "" is allowed and means the input's.
  const PipelineConfig given = pipeline_of(
      kLineProtocol + "    point: {measurement: agg, tags: {window: 10-sec, dc: eu}}\n");
  CHECK(given.measurement == "agg");
  CHECK(given.tags == std::map<std::string, std::string>{{"dc", "eu"}, {"window", "10-sec"}});
  const PipelineConfig empty = pipeline_of(kLineProtocol + "    point: {measurement: \"\"}\n");
  CHECK(empty.measurement.empty());
  CHECK(empty.tags.empty());
  const PipelineConfig only_tags = pipeline_of(kLineProtocol + "    point: {tags: {dc: eu}}\n");
  CHECK(only_tags.measurement.empty());
  CHECK(only_tags.tags == std::map<std::string, std::string>{{"dc", "eu"}});
}

TEST_CASE("keyed config: every key of line_protocol and event time", "[config][keyed]") {
  const std::string yaml = kOne +
                           "    source:\n"
                           "      format: line_protocol\n"
                           "      precision: ms\n"
                           "    window:\n"
                           "      size: 1m\n"
                           "      time: event\n"
                           "      max_out_of_orderness: 2s\n"
                           "      allowed_lateness: 30s\n"
                           "      idle_timeout: 0\n"
                           "      max_future: 5m\n"
                           "      group_by: [host, region]\n"
                           "      fields: [usage, temp]\n"
                           "      max_keys: 5000\n"
                           "      aggregates: [sum, mean]\n"
                           "    point:\n"
                           "      measurement: agg\n"
                           "      tags: {dc: eu}\n";
  const PipelineConfig p = pipeline_of(yaml);
  CHECK(p.format == "line_protocol");
  CHECK(p.precision == "ms");
  CHECK(p.window_size == 60s);
  CHECK(p.window_time == "event");
  CHECK(p.max_out_of_orderness == 2s);
  CHECK(p.allowed_lateness == 30s);
  CHECK(p.watermark_idle_timeout == 0s);
  CHECK(p.max_future == 5min);
  CHECK(p.group_by == std::vector<std::string>{"host", "region"});  // as written
  CHECK(p.fields == std::vector<std::string>{"usage", "temp"});
  CHECK(p.max_keys == 5'000);
  CHECK(p.aggregates == std::vector<Aggregate>{Aggregate::sum, Aggregate::mean});
  CHECK(p.measurement == "agg");
  CHECK(p.tags == std::map<std::string, std::string>{{"dc", "eu"}});

  // to_yaml writes them all back.
  const Config c = parse(yaml, "t.yaml", kNoEnv);
  CHECK(parse(to_yaml(c), "again.yaml", kNoEnv) == c);
  const Config defaults = parse(kLineProtocol, "t.yaml", kNoEnv);
  CHECK(parse(to_yaml(defaults), "again.yaml", kNoEnv) == defaults);
  const Config integers = parse(kOne, "t.yaml", kNoEnv);
  CHECK(parse(to_yaml(integers), "again.yaml", kNoEnv) == integers);
  CHECK(to_yaml(integers).find("group_by") == std::string::npos);              // not for integers
  CHECK(to_yaml(defaults).find("max_out_of_orderness") == std::string::npos);  // processing
}

TEST_CASE("keyed config: precision, time and format take their listed values", "[config][keyed]") {
  for (const std::string precision : {"ns", "us", "ms", "s"}) {
    CHECK(pipeline_of(kLineProtocol + "      precision: " + precision + "\n").precision ==
          precision);
  }
  CHECK(error_of(kLineProtocol + "      precision: m\n") ==
        "t.yaml:5: pipelines[0].source.precision: unknown value \"m\" (expected one of ns, us, "
        "ms, s)");
  CHECK(pipeline_of(kLineProtocol + "    window: {time: processing}\n").window_time ==
        "processing");
  CHECK(error_of(kLineProtocol + "    window: {time: wall}\n") ==
        "t.yaml:5: pipelines[0].window.time: unknown value \"wall\" (expected one of processing, "
        "event)");
  CHECK(error_of(kOne + "    source: {format: json}\n") ==
        "t.yaml:3: pipelines[0].source.format: unknown value \"json\" (expected one of integers, "
        "line_protocol)");
}

TEST_CASE("keyed config: event-time keys are refused with processing time", "[config][keyed]") {
  const auto [key, value] = GENERATE(table<std::string, std::string>({
      {"max_out_of_orderness", "1s"},
      {"allowed_lateness", "1s"},
      {"idle_timeout", "1s"},
      {"max_future", "1s"},
  }));
  CAPTURE(key);
  // time written as processing (line 6), the key on line 7.
  CHECK(error_of(kLineProtocol + "    window:\n      time: processing\n      " + key + ": " +
                 value + "\n") == "t.yaml:7: pipelines[0].window." + key +
                                      ": only allowed with time: event (time is processing)");
  // time not written: the default.
  CHECK(error_of(kLineProtocol + "    window:\n      size: 5s\n      " + key + ": " + value +
                 "\n") == "t.yaml:7: pipelines[0].window." + key +
                              ": only allowed with time: event (time is processing, the default)");
  // With event time it is taken.
  CHECK(
      error_of(kLineProtocol + "    window:\n      time: event\n      " + key + ": " + value + "\n")
          .empty());
}

TEST_CASE("keyed config: line_protocol keys are refused with format: integers", "[config][keyed]") {
  const auto [section, key, value] = GENERATE(table<std::string, std::string, std::string>({
      {"source", "precision", "ms"},
      {"window", "time", "event"},
      {"window", "time", "processing"},
      {"window", "group_by", "[host]"},
      {"window", "fields", "[v]"},
      {"window", "max_keys", "10"},
  }));
  CAPTURE(section, key);
  const std::string path = "pipelines[0]." + section + "." + key;
  // format not written (the default): the key on line 4.
  CHECK(error_of(kOne + "    " + section + ":\n      " + key + ": " + value + "\n") ==
        "t.yaml:4: " + path +
            ": only allowed with format: line_protocol (format is integers, the default)");
  // format written: the key on line 6 (window) or 5 (source).
  if (section == "source") {
    CHECK(error_of(kOne + "    source:\n      format: integers\n      " + key + ": " + value +
                   "\n") ==
          "t.yaml:5: " + path + ": only allowed with format: line_protocol (format is integers)");
  } else {
    CHECK(error_of(kOne + "    source: {format: integers}\n    window:\n      size: 1s\n      " +
                   key + ": " + value + "\n") ==
          "t.yaml:6: " + path + ": only allowed with format: line_protocol (format is integers)");
  }
}

TEST_CASE("keyed config: event-time keys are refused with format: integers", "[config][keyed]") {
  CHECK(error_of(kOne + "    window:\n      allowed_lateness: 1m\n") ==
        "t.yaml:4: pipelines[0].window.allowed_lateness: only allowed with time: event (time is "
        "processing, the default)");
}

TEST_CASE("keyed config: a group_by tag may not also be a point tag", "[config][keyed]") {
  CHECK(error_of(kLineProtocol + "    window:\n"
                                 "      group_by: [region, host]\n"
                                 "    point:\n"
                                 "      tags:\n"
                                 "        dc: eu\n"
                                 "        host: x\n") ==
        "t.yaml:9: pipelines[0].point.tags.host: tag \"host\" is also in window.group_by: a "
        "point cannot carry it twice");
  CHECK(error_of(kLineProtocol + "    window:\n"
                                 "      group_by: [region, host]\n"
                                 "    point:\n"
                                 "      tags:\n"
                                 "        dc: eu\n"
                                 "        hosts: x\n")
            .empty());
}

TEST_CASE("keyed config: point.measurement \"\" is refused with format: integers",
          "[config][keyed]") {
  const std::string message = error_of(kOne + "    point:\n      measurement: \"\"\n");
  CHECK(message ==
        "t.yaml:4: pipelines[0].point.measurement: must not be empty with format: integers (\"\" "
        "keeps each input line's measurement, which integers have not)");
  CHECK(error_of(kOne + "    source: {format: integers}\n    point: {measurement: \"\"}\n") ==
        message);
}

TEST_CASE("keyed config: group_by and fields hold distinct names", "[config][keyed]") {
  const auto [list, line, path, what] = GENERATE(table<std::string, int, std::string, std::string>({
      {"      group_by:\n        - host\n        - region\n        - host\n", 9,
       "window.group_by[2]", "duplicate name \"host\""},
      {"      fields: [a, b, a]\n", 6, "window.fields[2]", "duplicate name \"a\""},
      {"      fields: [\"\"]\n", 6, "window.fields[0]", "must not be empty"},
      {"      group_by: [\"a\\\\\"]\n", 6, "window.group_by[0]", "must not end with a backslash"},
      {"      group_by: host\n", 6, "window.group_by", "expected a list"},
      {"      fields: [v, ~]\n", 6, "window.fields[1]", "expected a name, got no value"},
  }));
  CAPTURE(list);
  const std::string message = error_of(kLineProtocol + "    window:\n" + list);
  const std::string prefix = "t.yaml:" + std::to_string(line) + ": pipelines[0]." + path + ": ";
  CHECK(message.substr(0, prefix.size()) == prefix);
  CHECK_THAT(message, Catch::Contains(what));
}

TEST_CASE("keyed config: max_keys is 1 to 1e9", "[config][keyed]") {
  CHECK(pipeline_of(kLineProtocol + "    window: {max_keys: 1}\n").max_keys == 1);
  CHECK(pipeline_of(kLineProtocol + "    window: {max_keys: 1000000000}\n").max_keys ==
        1'000'000'000);
  CHECK_THAT(error_of(kLineProtocol + "    window: {max_keys: 0}\n"),
             Catch::StartsWith("t.yaml:5: pipelines[0].window.max_keys: "));
  CHECK_THAT(error_of(kLineProtocol + "    window: {max_keys: 1000000001}\n"),
             Catch::StartsWith("t.yaml:5: pipelines[0].window.max_keys: "));
}

TEST_CASE("keyed config: KeyedSettings::from carries every key", "[config][keyed]") {
  const PipelineConfig p = pipeline_of(kOne +
                                       "    source: {format: line_protocol, precision: us}\n"
                                       "    window:\n"
                                       "      size: 30s\n"
                                       "      time: event\n"
                                       "      max_out_of_orderness: 3s\n"
                                       "      allowed_lateness: 1m\n"
                                       "      idle_timeout: 45s\n"
                                       "      max_future: 2m\n"
                                       "      group_by: [region, host]\n"
                                       "      fields: [v]\n"
                                       "      max_keys: 77\n"
                                       "      aggregates: [max, count]\n"
                                       "    point: {measurement: agg, tags: {dc: eu}}\n");
  const KeyedSettings s = KeyedSettings::from(p);
  CHECK(s.size_ms == 30'000);
  CHECK(s.event_time);
  CHECK(s.precision == Precision::us);
  CHECK(s.max_out_of_orderness_ms == 3'000);
  CHECK(s.allowed_lateness_ms == 60'000);
  CHECK(s.idle_timeout_ms == 45'000);
  CHECK(s.max_future_ms == 120'000);
  CHECK(s.group_by == std::vector<std::string>{"region", "host"});
  CHECK(s.fields == std::vector<std::string>{"v"});
  CHECK(s.max_keys == 77);
  CHECK(s.aggregates == std::vector<Aggregate>{Aggregate::max, Aggregate::count});
  CHECK(s.measurement == "agg");
  CHECK(s.tags == std::map<std::string, std::string>{{"dc", "eu"}});

  const auto [precision, expected] = GENERATE(table<std::string, Precision>({
      {"ns", Precision::ns},
      {"us", Precision::us},
      {"ms", Precision::ms},
      {"s", Precision::s},
  }));
  const KeyedSettings each =
      KeyedSettings::from(pipeline_of(kLineProtocol + "      precision: " + precision + "\n"));
  CHECK(each.precision == expected);
  CHECK_FALSE(each.event_time);
  CHECK(each.measurement.empty());
  CHECK(each.tags.empty());
}
