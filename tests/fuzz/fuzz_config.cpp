// libFuzzer target for config::parse: arbitrary text, with a fixed fake environment for ${VAR}.
// parse() must return a Config or throw config::ConfigError whose message starts with the source
// name; any other exception, a crash or a sanitizer report is a finding. A Config that parses
//   - satisfies the validation rules (names line protocol can carry, positive durations,
//     max_backoff >= initial_backoff, unique pipeline names, at least one pipeline);
//   - survives to_yaml(): the text re-parses to an equal Config (passwords and tokens come back
//     masked as "******"), and printing that again gives the same text. Not when a value contains "${"
//     (see below).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "config/config.hpp"
#include "sink/line_protocol.hpp"

using namespace tumbled;
using tumbled::config::Config;
using tumbled::config::ConfigError;

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_config: %s\n%s\n", what, detail.c_str());
  std::abort();
}

#define CHECK(cond, detail)           \
  do {                                \
    if (!(cond)) fail(#cond, detail); \
  } while (0)

const config::EnvLookup& fake_env() {
  static const std::map<std::string, std::string> vars{
      {"A", "x"},
      {"EMPTY", ""},
      {"PORT", "9000"},
      {"SIZE", "5s"},
      {"HOST", "127.0.0.1"},
      {"INFLUX_PASSWORD", "s3cret"},
      {"URL", "http://influx.example:8086/p"},
      {"SPACE", " a b "},
  };
  static const config::EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  return env;
}

Config parse_or_null(const std::string& text, const std::string& source, bool& ok) {
  ok = false;
  try {
    Config c = config::parse(text, source, fake_env());
    ok = true;
    return c;
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    CHECK(what.compare(0, source.size() + 1, source + ":") == 0, what);
    return {};
  } catch (const std::exception& e) {
    fail("parse threw something other than ConfigError", e.what());
  } catch (...) {
    fail("parse threw a non-std::exception", "");
  }
}

void check_valid(const Config& c, const std::string& text) {
  CHECK(c.checkpoint_interval.count() > 0, text);
  CHECK(c.shutdown_timeout.count() > 0, text);
  CHECK(!c.state_dir.empty(), text);
  CHECK(!c.pipelines.empty(), text);
  std::set<std::string> names;
  for (const auto& p : c.pipelines) {
    CHECK(names.insert(p.name).second, text);
    CHECK(p.max_line_bytes >= 1 && p.max_line_bytes <= (1u << 20), text);
    CHECK(p.window_size.count() > 0, text);
    CHECK(!p.aggregates.empty(), text);
    CHECK(!sink::name_problem(p.measurement, sink::NameRole::measurement), text);
    for (const auto& [k, v] : p.tags) {
      CHECK(!sink::name_problem(k, sink::NameRole::tag_key), text);
      CHECK(!sink::name_problem(v, sink::NameRole::tag_value), text);
    }
    CHECK(p.influx.scheme == "http" || p.influx.scheme == "https", text);
    CHECK(p.influx.api == "v1" || (p.influx.api == "v2" && !p.influx.org.empty() &&
                                   !p.influx.bucket.empty()),
          text);
    CHECK(p.influx.endpoint.port >= 1, text);
    CHECK(p.influx.batch_size >= 1, text);
    CHECK(p.influx.batch_interval.count() > 0, text);
    CHECK(p.influx.request_timeout.count() > 0, text);
    CHECK(p.influx.retry.initial_backoff <= p.influx.retry.max_backoff, text);
    CHECK(p.influx.retry.max_retries >= -1, text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  bool ok = false;
  const Config c = parse_or_null(text, "fuzz.yaml", ok);
  if (!ok) return 0;
  check_valid(c, text);

  const std::string yaml = config::to_yaml(c);
  // Known limitation, left unchecked: a value that is literally "${NAME}" (only the environment
  // can produce one, e.g. "$${EMPTY}{A}") prints as a reference, which re-reads as the variable's
  // value or fails: the config language has no escape for "${".
  if (yaml.find("${") != std::string::npos) return 0;
  const Config back = parse_or_null(yaml, "to_yaml", ok);
  CHECK(ok, "to_yaml output does not parse:\n" + yaml);

  Config expected = c;
  for (auto& p : expected.pipelines) {
    if (!p.influx.password.empty()) p.influx.password = "******";
    if (!p.influx.token.empty()) p.influx.token = "******";
  }
  CHECK(back == expected, "to_yaml output parses to a different Config:\n" + yaml);
  CHECK(config::to_yaml(back) == yaml, "to_yaml is not stable:\n" + yaml);
  return 0;
}
