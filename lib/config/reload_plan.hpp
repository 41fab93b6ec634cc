// ReloadPlan: what a configuration reload (SIGHUP) changes, decided from the running and the newly
// loaded configuration alone.
//
// Pipelines are matched by name. One whose PipelineConfig is equal in both keeps running untouched
// (its connections stay open); one that changed is stopped and started anew with its stored
// state; one only in the running configuration is stopped; one only in the new one is started.
// Global keys that only take effect at startup (state.dir, http.listen, log.format) keep their
// running values: the plan lists them so that the daemon can say a restart is needed. log.level,
// state.checkpoint_interval and shutdown_timeout take effect at once. Pure code: no I/O.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace tumbled {

struct ReloadPlan {
  std::vector<std::string> unchanged;  // pipeline names, kept running
  std::vector<std::string> changed;    // stopped, then started with the new settings
  std::vector<std::string> removed;    // stopped
  std::vector<std::string> added;      // started
  // "state.dir: /a -> /b" for each key that changed but needs a restart.
  std::vector<std::string> needs_restart;
  // The configuration to run: the loaded one, with the running values of the keys above.
  config::Config effective;

  bool changes_pipelines() const { return !changed.empty() || !removed.empty() || !added.empty(); }
};

ReloadPlan plan_reload(const config::Config& running, const config::Config& loaded);

}  // namespace tumbled
