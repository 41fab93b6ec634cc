// The README's configuration reference is the config table's own output, so the two cannot drift.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "config/config.hpp"

TEST_CASE("README's configuration reference matches the config table", "[config][docs]") {
  std::ifstream file(TUMBLED_SOURCE_DIR "/README.md");
  REQUIRE(file);
  std::stringstream text;
  text << file.rdbuf();
  const std::string readme = text.str();
  const std::string begin = "<!-- config-reference:begin -->\n";
  const auto from = readme.find(begin);
  const auto to = readme.find("<!-- config-reference:end -->");
  REQUIRE(from != std::string::npos);
  REQUIRE(to != std::string::npos);
  INFO("regenerate with: build/tumbled --help-config, pasted between the README's markers");
  CHECK(readme.substr(from + begin.size(), to - from - begin.size()) ==
        tumbled::config::config_reference());
}

// The example configurations shipped in config/ load, and the CDN and Telegraf examples say what
// the README's "Records", "Writes over HTTP" and "Reading Kafka" sections show.
TEST_CASE("the example configurations in config/ are valid", "[config][docs]") {
  const auto load = [](const std::string& name) {
    return tumbled::config::load_file(TUMBLED_SOURCE_DIR "/config/" + name,
                                      [](const std::string&) { return std::string("secret"); });
  };
  CHECK(load("tumbled.yaml").pipelines.at(0).format == "integers");
  const auto cdn = load("cdn.yaml").pipelines.at(0);
  CHECK(cdn.format == "line_protocol");
  CHECK(cdn.window_time == "event");
  CHECK(cdn.group_by == std::vector<std::string>{"stream", "isp"});
  CHECK(cdn.measurement == "cdn_5m");
  CHECK(cdn.window_size == std::chrono::minutes(5));
  const auto front = load("telegraf-front.yaml").pipelines.at(0);
  CHECK(front.reads_http());
  CHECK(front.source_listen().port == 8186);
  CHECK(front.format == "line_protocol");
  CHECK(front.http.token == "secret");
  CHECK(front.measurement.empty());  // each input measurement keeps its name
  const auto kafka = load("kafka.yaml");
  const auto& consumer = kafka.pipelines.at(0);
  CHECK(consumer.reads_kafka());
  CHECK(consumer.kafka.group == "tumbled");
  CHECK(consumer.kafka.partition_tag == "partition");
  CHECK(consumer.window_time == "event");
  CHECK(tumbled::config::warnings(kafka).empty());  // nothing that weakens exactness
}
