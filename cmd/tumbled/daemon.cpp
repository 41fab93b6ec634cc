#include "daemon.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <cstdio>

#include "config/reload_plan.hpp"
#include "sink/influx_writer.hpp"

namespace tumbled {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kSigpipeLogEvery = std::chrono::minutes(1);

const char* signal_name(int signal) {
  switch (signal) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    case SIGUSR1: return "SIGUSR1";
    case SIGPIPE: return "SIGPIPE";
    default: return "signal";
  }
}

// Where a pipeline's input comes from, for logs: "listening on 127.0.0.1:9000", or "reading
// Kafka topic telemetry in group tumbled".
std::string source_text(const config::PipelineConfig& p, const config::Endpoint& bound,
                        bool stopping = false) {
  if (p.reads_kafka()) {
    return std::string(stopping ? "stopping, was reading" : "reading") + " Kafka topic " +
           p.kafka.topic + " in group " + p.kafka.group;
  }
  const bool threads = !p.reads_http() && p.tcp_threads > 1;
  return std::string(stopping ? "stopping, was on " : "listening on ") + bound.to_string() +
         (threads ? " (" + std::to_string(p.tcp_threads) + " reader threads)" : "");
}

std::string aggregates_text(const config::PipelineConfig& p) {
  std::string text;
  for (auto a : p.aggregates) {
    if (!text.empty()) text += ',';
    text += config::to_string(a);
  }
  return text;
}

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", seconds);
  return text;
}

std::string join(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

void spawn_logged(asio::io_context& io, asio::awaitable<void> task,
                  std::shared_ptr<spdlog::logger> log, std::string what,
                  std::function<void()> on_failure) {
  asio::co_spawn(io, std::move(task),
                 [log = std::move(log), what = std::move(what),
                  on_failure = std::move(on_failure)](std::exception_ptr error) {
                   if (!error) return;
                   try {
                     std::rethrow_exception(error);
                   } catch (const std::exception& e) {
                     log->critical("{} failed: {}", what, e.what());
                   }
                   if (on_failure) on_failure();
                 });
}

Daemon::Daemon(asio::io_context& io, asio::signal_set& signals, std::string config_path,
               config::Config config, store::CheckpointStore& store, pipeline::Loggers loggers,
               std::vector<std::shared_ptr<spdlog::logger>> all_loggers,
               std::shared_ptr<spdlog::logger> log, SystemdNotifier& systemd, sink::Clock clock)
    : io_(io),
      signals_(signals),
      config_path_(std::move(config_path)),
      config_(std::move(config)),
      store_(store),
      loggers_(std::move(loggers)),
      all_loggers_(std::move(all_loggers)),
      log_(std::move(log)),
      systemd_(systemd),
      clock_(std::move(clock)),
      wake_(io) {}

void Daemon::start_pipelines() {
  for (const auto& p : config_.pipelines) start_pipeline(p);
}

void Daemon::start_pipeline(const config::PipelineConfig& settings) {
  auto p = std::make_unique<pipeline::Pipeline>(io_, settings, config_.checkpoint_interval, store_,
                                                loggers_, clock_);
  p->start();  // on failure nothing of it runs yet: destroying it is safe
  const auto endpoint = p->listening_on();
  const auto& sink = settings.influx;
  log_->info(
      "pipeline {}: {}, {} windows of [{}], writing to {} in batches of {} or every {} (a "
      "backlog in batches of up to {})",
      settings.name, source_text(settings, endpoint), config::format_duration(settings.window_size),
      aggregates_text(settings), sink::describe_destination(sink), sink.batch_size,
      config::format_duration(sink.batch_interval), sink.max_batch_size);
  running_.push_back({std::move(p), endpoint});
}

void Daemon::on_pipelines_changed(
    std::function<void(std::vector<const pipeline::Pipeline*>)> callback) {
  on_change_ = std::move(callback);
}

std::vector<const pipeline::Pipeline*> Daemon::pipelines() const {
  std::vector<const pipeline::Pipeline*> alive;
  for (const auto& r : running_) alive.push_back(r.pipeline.get());
  return alive;
}

void Daemon::pipelines_changed() {
  if (on_change_) on_change_(pipelines());
}

void Daemon::run_signals() {
  signals_.async_wait(
      [this](const boost::system::error_code& ec, int signal) { on_signal(ec, signal); });
  spawn_logged(io_, control(), log_, "the daemon's control loop (exiting at once)", [this] {
    exit_code_ = 1;
    io_.stop();
  });
}

void Daemon::on_signal(const boost::system::error_code& ec, int signal) {
  if (ec) return;  // the signal set was cancelled: the daemon is going away
  signals_.async_wait([this](const boost::system::error_code& next, int next_signal) {
    on_signal(next, next_signal);
  });
  const char* name = signal_name(signal);
  switch (signal) {
    case SIGINT:
    case SIGTERM:
      if (stop_requested_) {
        log_->warn("second stop signal ({}): exiting without waiting for the flush", name);
        io_.stop();
        return;
      }
      stop_requested_ = true;
      systemd_.stopping("stopping: flushing for at most " +
                        config::format_duration(config_.shutdown_timeout));
      log_->info("signal {}: stopping (flushing for at most {}){}", name,
                 config::format_duration(config_.shutdown_timeout),
                 reloading_ ? "; the reload in progress starts no more pipelines" : "");
      wake_.cancel();
      return;
    case SIGHUP:
      if (stop_requested_) {
        log_->info("signal SIGHUP: ignored, tumbled is stopping");
      } else if (reloading_) {
        log_->info("signal SIGHUP: a reload is in progress; {}",
                   reload_requested_ ? "another one is already queued after it"
                                     : "reloading once more after it");
        reload_requested_ = true;
      } else {
        log_->info("signal SIGHUP: reloading the configuration from {}", config_path_);
        reload_requested_ = true;
        wake_.cancel();
      }
      return;
    case SIGUSR1:
      log_->info("signal SIGUSR1: status of {} pipelines follows", running_.size());
      log_status();
      return;
    case SIGPIPE: {
      // Logging may itself write to the broken pipe and raise the next SIGPIPE: rate-limit.
      ++sigpipes_;
      const auto now = std::chrono::steady_clock::now();
      if (sigpipes_ == 1 || now - last_sigpipe_log_ >= kSigpipeLogEvery) {
        last_sigpipe_log_ = now;
        log_->warn(
            "signal SIGPIPE ({} so far): ignored; a write to a closed pipe or socket (e.g. the log "
            "reader went away) fails where it happens and the daemon carries on; logged at most "
            "once a minute",
            sigpipes_);
      }
      return;
    }
    default: log_->warn("signal {}: not expected; ignored", signal);
  }
}

asio::awaitable<void> Daemon::control() {
  for (;;) {
    if (stop_requested_) break;
    if (reload_requested_) {
      reload_requested_ = false;
      co_await reload();
      continue;
    }
    wake_.expires_at(asio::steady_timer::time_point::max());
    co_await wake_.async_wait(use_tuple);
  }
  std::vector<std::string> all;
  for (const auto& r : running_) all.push_back(r.pipeline->settings().name);
  co_await stop_pipelines(all, config_.shutdown_timeout);
  io_.stop();
}

asio::awaitable<void> Daemon::reload() {
  reloading_ = true;
  systemd_.reloading("reloading " + config_path_);
  const auto finish = [this](const std::string& outcome) {
    reloading_ = false;
    systemd_.ready("running " + std::to_string(running_.size()) + " pipelines; " + outcome);
  };

  config::Config loaded;
  try {
    loaded = config::load_file(config_path_);
  } catch (const config::ConfigError& e) {
    log_->error("reload: invalid configuration, nothing changed, {} pipelines run on: {}",
                running_.size(), e.what());
    finish("the last reload failed: invalid configuration");
    co_return;
  }
  for (const auto& warning : config::warnings(loaded)) log_->warn("reload: {}", warning);
  const ReloadPlan plan = plan_reload(config_, loaded);
  for (const auto& key : plan.needs_restart) {
    log_->warn("reload: {} takes effect only at a restart; keeping the running value", key);
  }
  // Settings that can change live apply at once, to every pipeline.
  if (plan.effective.log_level != config_.log_level) {
    for (const auto& logger : all_loggers_) {
      logger->set_level(spdlog::level::from_str(plan.effective.log_level));
    }
    log_->info("reload: log.level {} -> {}", config_.log_level, plan.effective.log_level);
  }
  if (plan.effective.checkpoint_interval != config_.checkpoint_interval) {
    for (auto& r : running_)
      r.pipeline->set_checkpoint_interval(plan.effective.checkpoint_interval);
    log_->info("reload: state.checkpoint_interval {} -> {}, for every pipeline",
               config::format_duration(config_.checkpoint_interval),
               config::format_duration(plan.effective.checkpoint_interval));
  }
  if (plan.effective.shutdown_timeout != config_.shutdown_timeout) {
    log_->info("reload: shutdown_timeout {} -> {}, from this reload's stops on",
               config::format_duration(config_.shutdown_timeout),
               config::format_duration(plan.effective.shutdown_timeout));
  }
  // The global settings now run; the pipelines are brought in line below.
  auto pipelines = std::move(config_.pipelines);
  config_ = plan.effective;
  config_.pipelines = std::move(pipelines);

  if (!plan.changes_pipelines()) {
    log_->info("reload done: pipelines unchanged, {} kept running", running_.size());
    finish("reloaded");
    co_return;
  }
  for (const auto& name : plan.changed) {
    log_->info("reload: pipeline {} changed: stopping it, then starting it with the new settings",
               name);
  }
  for (const auto& name : plan.removed) {
    log_->info(
        "reload: pipeline {} removed: stopping it; what it holds (open windows, unsent points) "
        "stays in the state store for a pipeline of that name",
        name);
  }
  if (!plan.unchanged.empty()) {
    log_->info("reload: pipelines unchanged, kept running with their connections: {}",
               join(plan.unchanged));
  }

  // Stop before starting: a replacement may listen on the address its predecessor held.
  auto to_stop = plan.changed;
  to_stop.insert(to_stop.end(), plan.removed.begin(), plan.removed.end());
  co_await stop_pipelines(to_stop, config_.shutdown_timeout);
  std::erase_if(config_.pipelines,
                [&](const config::PipelineConfig& p) { return contains(to_stop, p.name); });
  if (stop_requested_) {
    log_->info("reload: interrupted by the stop signal; not starting {}", join([&] {
                 auto names = plan.changed;
                 names.insert(names.end(), plan.added.begin(), plan.added.end());
                 return names;
               }()));
    reloading_ = false;
    co_return;
  }

  std::vector<std::string> failed;
  for (const auto& settings : loaded.pipelines) {
    if (!contains(plan.changed, settings.name) && !contains(plan.added, settings.name)) continue;
    try {
      start_pipeline(settings);
      config_.pipelines.push_back(settings);
    } catch (const std::exception& e) {
      failed.push_back(settings.name);
      log_->error(
          "reload: pipeline {} cannot start: {}; it is NOT running (its stored state is kept); "
          "the other pipelines run on; fix the configuration and send SIGHUP again",
          settings.name, e.what());
    }
  }
  // The configuration's order, for logs, /metrics and the next reload's comparison.
  const auto order = [&](const std::string& name) {
    const auto it = std::find_if(loaded.pipelines.begin(), loaded.pipelines.end(),
                                 [&](const auto& p) { return p.name == name; });
    return it - loaded.pipelines.begin();
  };
  std::stable_sort(running_.begin(), running_.end(), [&](const Running& a, const Running& b) {
    return order(a.pipeline->settings().name) < order(b.pipeline->settings().name);
  });
  std::stable_sort(config_.pipelines.begin(), config_.pipelines.end(),
                   [&](const auto& a, const auto& b) { return order(a.name) < order(b.name); });
  pipelines_changed();

  if (failed.empty()) {
    log_->info("reload done: {} pipelines running ({} kept, {} restarted, {} added, {} removed)",
               running_.size(), plan.unchanged.size(), plan.changed.size(), plan.added.size(),
               plan.removed.size());
    finish("reloaded");
  } else {
    log_->error("reload done with errors: {} pipelines running; NOT running: {}", running_.size(),
                join(failed));
    finish("the last reload left pipelines not running: " + join(failed));
  }
}

asio::awaitable<void> Daemon::stop_pipelines(const std::vector<std::string>& names,
                                             milliseconds flush_timeout) {
  std::size_t pending = 0;
  asio::steady_timer all_stopped(io_, asio::steady_timer::time_point::max());
  for (auto& r : running_) {
    if (r.stopping || !contains(names, r.pipeline->settings().name)) continue;
    r.stopping = true;
    ++pending;
    // The references stay valid: this coroutine waits below until every handler has run.
    asio::co_spawn(io_, r.pipeline->shutdown(flush_timeout), [&](std::exception_ptr error) {
      if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          log_->error("pipeline {} failed while stopping: {}", r.pipeline->settings().name,
                      e.what());
        }
        broken_.push_back(std::move(r.pipeline));
      }
      if (--pending == 0) all_stopped.cancel();
    });
  }
  while (pending > 0) co_await all_stopped.async_wait(use_tuple);
  // Out of every observer's hands first, then destroyed.
  std::vector<std::unique_ptr<pipeline::Pipeline>> stopped;
  for (auto& r : running_) {
    if (r.stopping && r.pipeline) stopped.push_back(std::move(r.pipeline));
  }
  std::erase_if(running_, [](const Running& r) { return r.stopping; });
  pipelines_changed();
}

void Daemon::log_status() const {
  for (const auto& r : running_) {
    const auto& p = *r.pipeline;
    const auto s = p.stats();
    std::string influx;
    if (!s.last_write_failure.empty()) {
      influx = "last write failed: " + s.last_write_failure;
    } else if (s.last_write_success_ms > 0) {
      influx = "last write ok " +
               seconds_text(static_cast<double>(clock_() - s.last_write_success_ms) / 1000.0) +
               " ago";
    } else {
      influx = "nothing written yet";
    }
    std::string waiting = std::to_string(s.points_waiting) + " points waiting";
    if (s.points_waiting > 0) {
      waiting += " (oldest " + seconds_text(s.oldest_waiting_age_seconds) + ")";
    }
    log_->info(
        "status: pipeline {}: {}{}, {} connections open, {} values accepted, {} lines "
        "rejected, {} open windows, {} windows emitted, {}, {} points written, {} dead-lettered, "
        "InfluxDB: {}",
        s.name, source_text(p.settings(), r.listening_on, r.stopping),
        s.source_paused ? " (reading paused: backpressure)" : "", s.connections_open,
        s.lines.accepted, s.lines.rejected(), p.open_windows(), s.windows_emitted, waiting,
        s.points_written, s.points_dead_lettered, influx);
  }
}

}  // namespace tumbled
