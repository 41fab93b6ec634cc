// The deployment files agree with each other and with the daemon, checked without Docker: every
// JSON file under deploy/ parses; the Grafana dashboard only uses provisioned data sources (by uid
// and type); Prometheus scrapes the compose service and port on which config/compose.yaml serves
// /metrics; the feeder targets the port tumbled listens on; and the configurations shipped for the
// package and for compose pass the daemon's own validation.
#include <yaml-cpp/yaml.h>
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "config/config.hpp"

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace tumbled;

namespace {

const fs::path kSource = TUMBLED_SOURCE_DIR;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

json::value parse_json(const fs::path& path) {
  boost::system::error_code ec;
  auto value = json::parse(read_text(path), ec);
  INFO(path.string() << ": " << ec.message());
  REQUIRE(!ec);
  return value;
}

// Every ${VAR} resolves to "", as with the unit's Environment=INFLUX_PASSWORD= default.
config::Config load_config(const fs::path& path) {
  return config::load_file(path.string(), [](const std::string&) { return std::string(); });
}

// Calls `visit` on every object in `value`, depth first.
template <class Visit>
void for_each_object(const json::value& value, Visit&& visit) {
  if (const auto* object = value.if_object()) {
    visit(*object);
    for (const auto& [key, child] : *object) for_each_object(child, visit);
  } else if (const auto* array = value.if_array()) {
    for (const auto& child : *array) for_each_object(child, visit);
  }
}

}  // namespace

TEST_CASE("every JSON file under deploy/ is valid JSON", "[deploy]") {
  std::size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kSource / "deploy")) {
    if (entry.path().extension() != ".json") continue;
    parse_json(entry.path());
    ++files;
  }
  CHECK(files >= 1);
}

TEST_CASE("the Grafana dashboard uses only the provisioned data sources", "[deploy]") {
  const auto provisioned = YAML::LoadFile(
      (kSource / "deploy/grafana/provisioning/datasources/datasources.yaml").string());
  std::map<std::string, std::string> type_of_uid;
  for (const auto& source : provisioned["datasources"]) {
    type_of_uid[source["uid"].as<std::string>()] = source["type"].as<std::string>();
  }
  REQUIRE(type_of_uid == std::map<std::string, std::string>{{"influxdb", "influxdb"},
                                                            {"prometheus", "prometheus"}});
  CHECK(provisioned["datasources"][0]["url"].as<std::string>() == "http://influxdb:8086");
  CHECK(provisioned["datasources"][0]["jsonData"]["dbName"].as<std::string>() == "telemetry");
  CHECK(provisioned["datasources"][1]["url"].as<std::string>() == "http://prometheus:9090");

  const auto dashboard = parse_json(kSource / "deploy/grafana/dashboards/tumbled.json");
  CHECK(dashboard.at("uid").as_string() == "tumbled");
  std::set<std::string> used;
  std::size_t queries = 0;
  for_each_object(dashboard, [&](const json::object& object) {
    if (const auto* source = object.if_contains("datasource"); source && source->is_object()) {
      const auto uid = json::value_to<std::string>(source->at("uid"));
      INFO("datasource uid " << uid);
      REQUIRE(type_of_uid.contains(uid));
      CHECK(json::value_to<std::string>(source->at("type")) == type_of_uid[uid]);
      used.insert(uid);
    }
    if (object.contains("refId")) {
      ++queries;
      CHECK((object.contains("expr") || object.contains("query")));
    }
  });
  CHECK(used == std::set<std::string>{"influxdb", "prometheus"});
  CHECK(queries >= 8);

  const auto provider =
      YAML::LoadFile((kSource / "deploy/grafana/provisioning/dashboards/dashboards.yaml").string());
  CHECK(provider["providers"][0]["options"]["path"].as<std::string>() ==
        "/var/lib/grafana/dashboards");
}

TEST_CASE("compose wires feeder, tumbled, Prometheus and Grafana to the same ports", "[deploy]") {
  const auto compose = YAML::LoadFile((kSource / "docker-compose.yml").string());
  const auto services = compose["services"];
  for (const char* name : {"influxdb", "tumbled", "feeder", "prometheus", "grafana"}) {
    INFO("service " << name);
    CHECK(services[name].IsMap());
  }
  CHECK(services["influxdb"]["image"].as<std::string>() == "influxdb:1.8");

  // tumbled in compose: integers on 9000, metrics on 9100, on every interface of its container.
  const auto cfg = load_config(kSource / "config/compose.yaml");
  REQUIRE(cfg.http_listen.has_value());
  CHECK(*cfg.http_listen == config::Endpoint{"0.0.0.0", 9100});
  REQUIRE(cfg.pipelines.size() == 1);
  CHECK(cfg.pipelines[0].listen == config::Endpoint{"0.0.0.0", 9000});
  CHECK(cfg.pipelines[0].influx.endpoint.host == "influxdb");
  CHECK(cfg.pipelines[0].influx.database == "telemetry");
  CHECK(cfg.state_dir.starts_with("/var/lib/tumbled"));

  const auto prometheus = YAML::LoadFile((kSource / "deploy/prometheus/prometheus.yml").string());
  const auto targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"];
  REQUIRE(targets.size() == 1);
  CHECK(targets[0].as<std::string>() == "tumbled:" + std::to_string(cfg.http_listen->port));

  const auto feeder = services["feeder"]["command"];
  REQUIRE(feeder.size() >= 4);
  CHECK(feeder[2].as<std::string>() == "tumbled");
  CHECK(feeder[3].as<std::string>() == std::to_string(cfg.pipelines[0].listen.port));
}

TEST_CASE("the packaged configuration keeps its state where the unit allows writes", "[deploy]") {
  const auto cfg = load_config(kSource / "deploy/tumbled.yaml");
  CHECK(cfg.state_dir == "/var/lib/tumbled");
  const auto unit = read_text(kSource / "deploy/tumbled.service");
  CHECK(unit.find("\nStateDirectory=tumbled\n") != std::string::npos);
  CHECK(unit.find("\nReadWritePaths=/var/lib/tumbled\n") != std::string::npos);
  CHECK(unit.find("\nExecStart=/usr/bin/tumbled --config /etc/tumbled/tumbled.yaml\n") !=
        std::string::npos);
}
