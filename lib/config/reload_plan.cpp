#include "config/reload_plan.hpp"

#include <algorithm>

namespace tumbled {

namespace {

const config::PipelineConfig* find(const std::vector<config::PipelineConfig>& pipelines,
                                   const std::string& name) {
  const auto it = std::find_if(pipelines.begin(), pipelines.end(),
                               [&](const config::PipelineConfig& p) { return p.name == name; });
  return it == pipelines.end() ? nullptr : &*it;
}

std::string endpoint_text(const std::optional<config::Endpoint>& endpoint) {
  return endpoint ? endpoint->to_string() : "\"\" (off)";
}

}  // namespace

ReloadPlan plan_reload(const config::Config& running, const config::Config& loaded) {
  ReloadPlan plan;
  plan.effective = loaded;
  if (loaded.state_dir != running.state_dir) {
    plan.needs_restart.push_back("state.dir: " + running.state_dir + " -> " + loaded.state_dir);
    plan.effective.state_dir = running.state_dir;
  }
  if (loaded.http_listen != running.http_listen) {
    plan.needs_restart.push_back("http.listen: " + endpoint_text(running.http_listen) + " -> " +
                                 endpoint_text(loaded.http_listen));
    plan.effective.http_listen = running.http_listen;
  }
  if (loaded.log_format != running.log_format) {
    plan.needs_restart.push_back("log.format: " + running.log_format + " -> " + loaded.log_format);
    plan.effective.log_format = running.log_format;
  }
  for (const auto& old : running.pipelines) {
    const auto* now = find(loaded.pipelines, old.name);
    if (now == nullptr) {
      plan.removed.push_back(old.name);
    } else if (*now == old) {
      plan.unchanged.push_back(old.name);
    } else {
      plan.changed.push_back(old.name);
    }
  }
  for (const auto& now : loaded.pipelines) {
    if (find(running.pipelines, now.name) == nullptr) plan.added.push_back(now.name);
  }
  return plan;
}

}  // namespace tumbled
