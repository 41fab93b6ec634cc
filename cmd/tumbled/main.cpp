// tumbled: sums integers received over TCP in tumbling windows and writes them to InfluxDB.
//
// Exit codes: 0 success (also after a graceful stop), 1 runtime failure (cannot bind at startup,
// cannot open or read the state store), 64 bad command line, 78 invalid configuration.
// Signals and what they do: daemon.hpp.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>
#include <string_view>

#include "config/config.hpp"
#include "daemon.hpp"
#include "http/http_server.hpp"
#include "log/json_log.hpp"
#include "pipeline/pipeline.hpp"
#include "store/checkpoint_store.hpp"
#include "systemd_notifier.hpp"

namespace {

namespace asio = boost::asio;
using namespace tumbled;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 64;   // sysexits EX_USAGE
constexpr int kExitConfig = 78;  // sysexits EX_CONFIG

constexpr std::string_view kHelp = R"(Usage: tumbled --config PATH [--check-config | --print-config]
       tumbled deadletter list|replay --config PATH [--pipeline NAME] [--lines]
       tumbled --help-config | --version | --help

Reads newline-delimited integers from TCP, sums them over tumbling windows and
writes one point per window to InfluxDB, keeping open windows and unsent points
in a local state store so that nothing accepted is lost across restarts.

Options:
  -c, --config PATH   YAML configuration file (see config/tumbled.yaml)
  --check-config      validate the configuration and exit (0 valid, 78 invalid)
  --print-config      print the effective configuration, secrets masked, and exit
  --help-config       print every configuration key with its type, default and meaning
  --version           print the version and exit
  -h, --help          print this help and exit

Dead letters (points InfluxDB refused for good, kept in the state store):
  deadletter list     print them: pipeline, id, time, points, InfluxDB's error
                      (--lines also prints the points); works while tumbled runs
  deadletter replay   put them back in their pipelines' queues, to be sent at the
                      next start (after fixing the cause); tumbled must be stopped

Signals (each one is logged with what tumbled does about it):
  SIGTERM, SIGINT  stop gracefully: stop accepting, checkpoint, flush for at
                   most shutdown_timeout, exit 0; a second one exits at once
  SIGHUP           reload --config PATH: an invalid file changes nothing;
                   unchanged pipelines run on with their connections; changed
                   and removed ones stop gracefully, changed and added ones
                   start with their stored state; log.level,
                   state.checkpoint_interval and shutdown_timeout apply at
                   once; state.dir, http.listen and log.format need a restart
  SIGUSR1          log one status line per pipeline (connections, open
                   windows, points waiting, last write to InfluxDB)
  SIGPIPE          ignored (a failed write is handled where it happens)

Exit codes: 0 ok, 1 startup failure (address in use, state store), 64 bad
command line, 78 invalid configuration.
)";

struct Options {
  std::string config_path;
  bool check_only = false;
  bool print_config = false;
  std::string deadletter_command;  // list | replay, or empty
  std::string pipeline;            // deadletter: only this pipeline
  bool lines = false;              // deadletter list: print the points too
};

std::string utc_time(std::int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

int run_deadletter(const Options& options, const config::Config& cfg) {
  const bool replay = options.deadletter_command == "replay";
  std::unique_ptr<store::CheckpointStore> store;
  try {
    store = store::CheckpointStore::open(cfg.state_dir,
                                         replay ? store::CheckpointStore::Access::read_write
                                                : store::CheckpointStore::Access::read_only);
  } catch (const std::exception& e) {
    std::cerr << "tumbled: " << e.what() << "\n";
    return kExitRuntime;
  }
  std::vector<store::DeadLetter> all;
  try {
    all = store->dead_letters();
  } catch (const std::exception& e) {
    // A record that does not decode: say which store, and change nothing.
    std::cerr << "tumbled: cannot read the dead letters in " << cfg.state_dir << ": " << e.what()
              << (replay ? "; nothing was requeued" : "") << "\n";
    return kExitRuntime;
  }
  std::size_t letters = 0, points = 0;
  for (const auto& letter : all) {
    if (!options.pipeline.empty() && letter.pipeline != options.pipeline) continue;
    const auto count =
        static_cast<std::size_t>(std::count(letter.body.begin(), letter.body.end(), '\n'));
    ++letters;
    points += count;
    if (replay) {
      if (const auto error = store->requeue_dead_letter(letter)) {
        std::cerr << "tumbled: cannot requeue dead letter " << letter.first_seq << ": " << *error
                  << "\n";
        return kExitRuntime;
      }
      continue;
    }
    std::cout << letter.pipeline << "\t" << letter.first_seq << "\t"
              << utc_time(letter.failed_at_ms) << "\t" << count << " points\t" << letter.error
              << "\n";
    if (options.lines) {
      std::string_view body = letter.body;
      while (!body.empty()) {
        const auto end = body.find('\n');
        std::cout << "    " << body.substr(0, end) << "\n";
        body.remove_prefix(end == std::string_view::npos ? body.size() : end + 1);
      }
    }
  }
  if (replay) {
    std::cout << "requeued " << letters << " dead letters (" << points
              << " points); they are sent when tumbled starts\n";
  } else {
    std::cout << letters << " dead letters, " << points << " points\n";
  }
  return 0;
}

std::shared_ptr<spdlog::logger> make_root_logger(const std::string& level,
                                                 const std::string& format) {
  // Colour only on a terminal: under systemd the journal gets plain lines.
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
      isatty(STDERR_FILENO) ? spdlog::color_mode::automatic : spdlog::color_mode::never);
  auto logger = std::make_shared<spdlog::logger>("main", sink);
  if (format == "json") {
    logger->set_formatter(tumbled::log::json_formatter());  // on the sink, shared by every clone
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  return logger;
}

// Each connection is a file descriptor: allow as many as the hard limit does, so that
// max_connections, not a default soft limit of 1024, is what caps them.
void raise_open_file_limit(spdlog::logger& log) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == limit.rlim_max) return;
  const auto soft = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    log.warn("cannot raise the open file limit above {}: {}", soft, std::strerror(errno));
  }
}

int run(const std::string& config_path, const config::Config& cfg) {
  // Until the signal set below takes SIGPIPE over, and after it lets go: a log line written to a
  // pipe whose reader went away must fail, not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  auto log = make_root_logger(cfg.log_level, cfg.log_format);
  raise_open_file_limit(*log);
  for (const auto& warning : config::warnings(cfg)) log->warn("{}", warning);
  const pipeline::Loggers loggers{log->clone("tcp"), log->clone("window"), log->clone("influx"),
                                  log->clone("store")};
  auto systemd_log = log->clone("systemd");
  auto http_log = log->clone("http");

  // The io_context outlives the pipelines: coroutine frames it still holds at exit never touch
  // them.
  asio::io_context io;
  // Before anything slow: a signal that arrives during startup waits for the loop instead of
  // killing the daemon (SIGHUP's default action) half-started.
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  signals.add(SIGUSR1);
  signals.add(SIGPIPE);

  std::unique_ptr<store::CheckpointStore> store;
  try {
    store = store::CheckpointStore::open(cfg.state_dir);
  } catch (const std::exception& e) {
    log->critical("{}", e.what());
    return kExitRuntime;
  }

  SystemdNotifier systemd(io, systemd_log);
  const auto wall_clock = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  Daemon daemon(
      io, signals, config_path, cfg, *store, loggers,
      {log, loggers.tcp, loggers.window, loggers.influx, loggers.store, systemd_log, http_log}, log,
      systemd, wall_clock);
  try {
    daemon.start_pipelines();
  } catch (const std::exception& e) {
    log->critical("{}", e.what());
    return kExitRuntime;
  }
  // After the pipelines, so that it never reports on one that is not there yet; it keeps
  // answering (/ready: not ready) while they stop.
  std::optional<http::HttpServer> http_server;
  if (cfg.http_listen) {
    http_server.emplace(io.get_executor(), *cfg.http_listen, daemon.pipelines(), http_log);
    try {
      http_server->listen();
    } catch (const std::exception& e) {
      log->critical("{}", e.what());
      return kExitRuntime;
    }
    spawn_logged(io, http_server->run(), log,
                 "the HTTP server (/metrics, /health and /ready are gone)");
    log->info("serving /metrics, /health and /ready on http://{}",
              http_server->local_endpoint().to_string());
  }
  // A reload replaces pipelines: the HTTP server learns of it before any is destroyed.
  daemon.on_pipelines_changed([&](std::vector<const pipeline::Pipeline*> alive) {
    if (http_server) http_server->set_pipelines(std::move(alive));
  });
  log->info("tumbled {} started: {} pipelines, state in {}, checkpoint every {}", TUMBLED_VERSION,
            daemon.pipelines().size(), cfg.state_dir,
            config::format_duration(cfg.checkpoint_interval));
  systemd.ready("running " + std::to_string(daemon.pipelines().size()) + " pipelines");

  daemon.run_signals();
  // Last line of defence: every connection's path catches its own errors, but a handler that
  // throws anyway must not end the daemon. Asio lets run() go on after it propagates one.
  for (std::uint64_t escaped = 1;; ++escaped) {
    try {
      io.run();
      break;
    } catch (const std::exception& e) {
      log->critical("an event handler failed: {}; carrying on ({} such failures so far)",
                    e.what(), escaped);
    } catch (...) {
      log->critical("an event handler failed; carrying on ({} such failures so far)", escaped);
    }
  }
  // Leaving the signal set restores the default actions; SIGPIPE must stay ignored for the last
  // log lines, SIGHUP and SIGUSR1 must not kill a daemon that has already stopped cleanly.
  signals.clear();
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGHUP, SIG_IGN);
  std::signal(SIGUSR1, SIG_IGN);
  log->info("tumbled stopped");
  return daemon.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  int first = 1;
  if (argc > 1 && std::string_view(argv[1]) == "deadletter") {
    if (argc < 3 ||
        (std::string_view(argv[2]) != "list" && std::string_view(argv[2]) != "replay")) {
      std::cerr << "tumbled: deadletter needs list or replay\n\n" << kHelp;
      return kExitUsage;
    }
    options.deadletter_command = argv[2];
    first = 3;
  }
  for (int i = first; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kHelp;
      return 0;
    } else if (arg == "--help-config") {
      std::cout << config::config_reference();
      return 0;
    } else if (arg == "--version") {
      std::cout << "tumbled " << TUMBLED_VERSION << "\n";
      return 0;
    } else if ((arg == "--config" || arg == "-c") && i + 1 < argc) {
      options.config_path = argv[++i];
    } else if (arg.starts_with("--config=")) {
      options.config_path = std::string(arg.substr(9));
    } else if (arg == "--check-config") {
      options.check_only = true;
    } else if (arg == "--print-config") {
      options.print_config = true;
    } else if (!options.deadletter_command.empty() && arg == "--pipeline" && i + 1 < argc) {
      options.pipeline = argv[++i];
    } else if (!options.deadletter_command.empty() && arg == "--lines") {
      options.lines = true;
    } else {
      std::cerr << "tumbled: unknown or incomplete option '" << arg << "'\n\n" << kHelp;
      return kExitUsage;
    }
  }
  if (options.config_path.empty()) {
    std::cerr << "tumbled: --config PATH is required\n\n" << kHelp;
    return kExitUsage;
  }

  config::Config cfg;
  try {
    cfg = config::load_file(options.config_path);
  } catch (const config::ConfigError& e) {
    std::cerr << "tumbled: invalid configuration: " << e.what() << "\n";
    return kExitConfig;
  }
  if (!options.deadletter_command.empty()) return run_deadletter(options, cfg);
  if (options.check_only) {
    std::cout << options.config_path << ": configuration is valid (" << cfg.pipelines.size()
              << " pipelines)\n";
    for (const auto& warning : config::warnings(cfg)) std::cout << "WARNING: " << warning << "\n";
    return 0;
  }
  if (options.print_config) {
    std::cout << config::to_yaml(cfg);
    return 0;
  }
  return run(options.config_path, cfg);
}
