// What the container stack relies on, against the real daemon (no Docker needed): the image's
// HEALTHCHECK script (deploy/healthcheck.sh) reports healthy exactly while tumbled serves /health,
// and every tumbled_* metric the Grafana dashboard queries is one the daemon exposes on /metrics.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "support/http_client.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;

namespace {

int run_healthcheck(const TempDir& dir, std::uint16_t port) {
  static int runs = 0;
  ChildProcess probe(
      {"bash", TUMBLED_SOURCE_DIR "/deploy/healthcheck.sh", "127.0.0.1", std::to_string(port)},
      dir.path() / ("healthcheck-" + std::to_string(++runs) + ".log"));
  return probe.wait_for(hang_guard()).value_or(-1);
}

// The tumbled_* metric names in the dashboard's Prometheus queries.
std::set<std::string> dashboard_metrics() {
  std::ifstream in(TUMBLED_SOURCE_DIR "/deploy/grafana/dashboards/tumbled.json");
  std::ostringstream text;
  text << in.rdbuf();
  std::set<std::string> names;
  const std::regex metric("tumbled_[a-z0-9_]+");
  const std::function<void(const boost::json::value&)> walk = [&](const boost::json::value& v) {
    if (const auto* object = v.if_object()) {
      if (const auto* expr = object->if_contains("expr"); expr && expr->is_string()) {
        const std::string query(expr->as_string());
        for (std::sregex_iterator it(query.begin(), query.end(), metric), end; it != end; ++it) {
          names.insert(it->str());
        }
      }
      for (const auto& [key, child] : *object) walk(child);
    } else if (const auto* array = v.if_array()) {
      for (const auto& child : *array) walk(child);
    }
  };
  walk(boost::json::parse(text.str()));
  return names;
}

}  // namespace

TEST_CASE("the container health check follows /health, the dashboard's metrics exist",
          "[system][deploy]") {
  TempDir dir;
  PipelineSpec spec;
  spec.influx_port = free_port();  // nothing is fed, so nothing is written
  Daemon daemon({spec});
  const auto http_port = daemon.enable_http();
  CHECK(run_healthcheck(dir, http_port) == 1);  // not started yet: nothing listens

  daemon.start();
  CHECK(run_healthcheck(dir, http_port) == 0);

  const auto metrics =
      http_request(boost::beast::http::verb::get, "127.0.0.1", http_port, "/metrics");
  REQUIRE(metrics.status == 200);
  const auto names = dashboard_metrics();
  CHECK(names.size() >= 10);
  for (const auto& name : names) {
    INFO("dashboard queries " << name);
    CHECK(metrics.body.find("\n" + name + "{") != std::string::npos);
  }

  CHECK(daemon.stop() == 0);
  CHECK(run_healthcheck(dir, http_port) == 1);
}
