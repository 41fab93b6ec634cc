// plan_reload: which pipelines a SIGHUP keeps, restarts, stops and starts, and which global keys
// wait for a restart.
#include <catch2/catch.hpp>

#include "config/reload_plan.hpp"

using tumbled::plan_reload;
using tumbled::config::Config;
using tumbled::config::Endpoint;
using tumbled::config::PipelineConfig;

namespace {

PipelineConfig pipeline(const std::string& name, std::uint16_t port) {
  PipelineConfig p;
  p.name = name;
  p.listen = Endpoint{"127.0.0.1", port};
  return p;
}

}  // namespace

TEST_CASE("plan_reload sorts pipelines into unchanged, changed, removed and added", "[config]") {
  Config running;
  running.pipelines = {pipeline("kept", 1), pipeline("retagged", 2), pipeline("gone", 3)};
  Config loaded = running;
  loaded.pipelines.erase(loaded.pipelines.begin() + 2);
  loaded.pipelines[1].tags = {{"window", "1-min"}};
  loaded.pipelines.push_back(pipeline("new", 4));

  const auto plan = plan_reload(running, loaded);
  CHECK(plan.unchanged == std::vector<std::string>{"kept"});
  CHECK(plan.changed == std::vector<std::string>{"retagged"});
  CHECK(plan.removed == std::vector<std::string>{"gone"});
  CHECK(plan.added == std::vector<std::string>{"new"});
  CHECK(plan.changes_pipelines());
  CHECK(plan.needs_restart.empty());
  CHECK(plan.effective == loaded);
}

TEST_CASE("plan_reload of the same configuration changes nothing", "[config]") {
  Config running;
  running.pipelines = {pipeline("a", 1), pipeline("b", 2)};
  const auto plan = plan_reload(running, running);
  CHECK(plan.unchanged == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(plan.changes_pipelines());
  CHECK(plan.needs_restart.empty());
}

TEST_CASE("plan_reload keeps startup-only keys at their running values and says so", "[config]") {
  Config running;
  running.pipelines = {pipeline("a", 1)};
  Config loaded = running;
  loaded.state_dir = "/elsewhere";
  loaded.http_listen.reset();
  loaded.log_format = "json";
  loaded.log_level = "debug";
  loaded.checkpoint_interval = std::chrono::milliseconds(250);

  const auto plan = plan_reload(running, loaded);
  CHECK(plan.needs_restart == std::vector<std::string>{"state.dir: ./var/tumbled -> /elsewhere",
                                                       "http.listen: 127.0.0.1:9100 -> \"\" (off)",
                                                       "log.format: text -> json"});
  CHECK(plan.effective.state_dir == running.state_dir);
  CHECK(plan.effective.http_listen == running.http_listen);
  CHECK(plan.effective.log_format == running.log_format);
  // These take effect at once.
  CHECK(plan.effective.log_level == "debug");
  CHECK(plan.effective.checkpoint_interval == std::chrono::milliseconds(250));
  CHECK_FALSE(plan.changes_pipelines());
}
