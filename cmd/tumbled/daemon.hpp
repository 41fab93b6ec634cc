// Daemon: the running pipelines and what signals do to them.
//
// start_pipelines() starts the configured pipelines (throwing on the first that cannot start: a
// startup failure). run_signals() then answers signals on the daemon's one io_context:
//   SIGTERM, SIGINT  stop gracefully: every pipeline stops accepting, checkpoints and flushes for
//                    at most shutdown_timeout, then the io_context stops; a second one stops it
//                    at once.
//   SIGHUP           reload the configuration file (see config/reload_plan.hpp for what changes how):
//                    the file is loaded and validated first, and an invalid one changes nothing;
//                    changed and removed pipelines are stopped as above (checkpointed, so their
//                    open windows and unsent points wait in the state store), then changed and
//                    added ones are started and restore that state. A pipeline that cannot start
//                    is logged and left out; the others run on. Reloads never overlap: a SIGHUP
//                    during one asks for one more reload after it. A stop signal during a reload
//                    lets the pipelines being stopped finish stopping, starts nothing, and stops.
//   SIGUSR1          log one status line per pipeline.
//   SIGPIPE          ignored (a write to a closed pipe or socket fails with EPIPE where it
//                    happens, e.g. when the reader of the log went away); logged at most once a
//                    minute, since that log line may itself raise one.
// Every signal is logged with what the daemon does about it. Coroutines on one thread: no locks.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "pipeline/pipeline.hpp"
#include "store/checkpoint_store.hpp"
#include "systemd_notifier.hpp"

namespace tumbled {

// Starts `task` on `io`; if it throws, logs "<what> failed: <exception>" at critical, then calls
// `on_failure` (if any).
void spawn_logged(boost::asio::io_context& io, boost::asio::awaitable<void> task,
                  std::shared_ptr<spdlog::logger> log, std::string what,
                  std::function<void()> on_failure = {});

class Daemon {
 public:
  // `loggers` are the pipelines' loggers; `all_loggers` every logger of the process, whose level a
  // reload sets. `signals` must hold SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGPIPE.
  Daemon(boost::asio::io_context& io, boost::asio::signal_set& signals, std::string config_path,
         config::Config config, store::CheckpointStore& store, pipeline::Loggers loggers,
         std::vector<std::shared_ptr<spdlog::logger>> all_loggers,
         std::shared_ptr<spdlog::logger> log, SystemdNotifier& systemd, sink::Clock clock);

  // Startup: throws std::exception on the first pipeline that cannot start.
  void start_pipelines();
  // Called with the pipelines alive after every change, e.g. for the HTTP server: a pipeline is
  // destroyed only after this was called without it.
  void on_pipelines_changed(std::function<void(std::vector<const pipeline::Pipeline*>)> callback);
  std::vector<const pipeline::Pipeline*> pipelines() const;
  const config::Config& config() const { return config_; }

  // Answers signals until a stop signal has stopped every pipeline, then stops the io_context.
  void run_signals();
  // 0 after a graceful stop, 1 if the daemon's control loop itself failed.
  int exit_code() const { return exit_code_; }

 private:
  struct Running {
    std::unique_ptr<pipeline::Pipeline> pipeline;
    config::Endpoint listening_on;  // the bound address (port 0 resolved)
    bool stopping = false;
  };

  void on_signal(const boost::system::error_code& ec, int signal);
  boost::asio::awaitable<void> control();
  boost::asio::awaitable<void> reload();
  // Stops the named pipelines concurrently and destroys them.
  boost::asio::awaitable<void> stop_pipelines(const std::vector<std::string>& names,
                                              std::chrono::milliseconds flush_timeout);
  void start_pipeline(const config::PipelineConfig& settings);
  void log_status() const;
  void pipelines_changed();

  boost::asio::io_context& io_;
  boost::asio::signal_set& signals_;
  std::string config_path_;
  config::Config config_;  // what runs: pipelines that failed to start are not in it
  store::CheckpointStore& store_;
  pipeline::Loggers loggers_;
  std::vector<std::shared_ptr<spdlog::logger>> all_loggers_;
  std::shared_ptr<spdlog::logger> log_;
  SystemdNotifier& systemd_;
  sink::Clock clock_;

  std::vector<Running> running_;  // in the configuration's order
  // Pipelines whose shutdown failed: their coroutines may still run, so they live until exit.
  std::vector<std::unique_ptr<pipeline::Pipeline>> broken_;
  std::function<void(std::vector<const pipeline::Pipeline*>)> on_change_;
  boost::asio::steady_timer wake_;  // the control loop waits on it; a request cancels it
  bool stop_requested_ = false;
  bool reload_requested_ = false;
  bool reloading_ = false;
  std::chrono::steady_clock::time_point last_sigpipe_log_{};
  std::uint64_t sigpipes_ = 0;
  int exit_code_ = 0;
};

}  // namespace tumbled
