#include "system/daemon.hpp"

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "support/http_client.hpp"
#include "support/tcp_feed.hpp"

namespace tumbled::test {

void Daemon::write_config() const {
  std::ofstream out(config_path());
  out << "log: {level: debug, format: " << log_format_ << "}\n"
      << "http: {listen: "
      << (http_port_ ? "127.0.0.1:" + std::to_string(http_port_) : std::string("\"\"")) << "}\n"
      << "state: {dir: " << (dir_.path() / "state").string()
      << ", checkpoint_interval: " << checkpoint_interval_ << "}\n"
      << "shutdown_timeout: " << shutdown_timeout_ << "\n"
      << "pipelines:\n";
  for (const auto& p : pipelines_) {
    out << "  - name: " << p.name << "\n"
        << "    source: {";
    if (!p.kafka.empty()) {
      out << "kafka: {" << p.kafka << "}";
    } else if (p.http) {
      out << "http: {listen: 127.0.0.1:" << p.listen_port
          << (p.http_extra.empty() ? "" : ", " + p.http_extra) << "}";
    } else {
      out << "tcp: {listen: 127.0.0.1:" << p.listen_port << ", max_line_bytes: " << p.max_line_bytes
          << ", max_connections: " << p.max_connections << ", idle_timeout: " << p.idle_timeout
          << ", threads: " << p.threads << "}";
    }
    out << (p.source_extra.empty() ? "" : ", " + p.source_extra) << "}\n"
        << "    buffer: " << p.buffer << "\n"
        << "    window: {size: " << p.window << ", aggregates: " << p.aggregates
        << (p.window_extra.empty() ? "" : ", " + p.window_extra) << "}\n"
        << "    point: "
        << (p.point.empty() ? "{measurement: " + p.name + ", tags: " +
                                  (p.tags.empty() ? "{window: " + p.window + "}" : p.tags) + "}"
                            : p.point)
        << "\n"
        << "    sink:\n      influxdb:\n"
        << "        url: http://127.0.0.1:" << p.influx_port << "\n"
        << "        database: " << p.database << "\n"
        << "        batch_size: " << p.batch_size << "\n"
        << (p.max_batch_size.empty() ? "" : "        max_batch_size: " + p.max_batch_size + "\n")
        << "        batch_interval: " << p.batch_interval << "\n"
        << "        request_timeout: " << p.request_timeout << "\n"
        << "        retry: {initial_backoff: 50ms, max_backoff: " << p.max_backoff << "}\n";
  }
  if (!out) throw std::runtime_error("cannot write " + config_path());
}

void Daemon::start() {
  write_config();
  ++starts_;
  const auto log = dir_.path() / ("tumbled-" + std::to_string(starts_) + ".log");
  process_.emplace(std::vector<std::string>{TUMBLED_BINARY, "--config", config_path()}, log, env_,
                   std::vector<std::string>{"NOTIFY_SOCKET", "WATCHDOG_"});
  std::vector<std::uint16_t> ports;
  for (const auto& p : pipelines_) {
    if (p.kafka.empty()) ports.push_back(p.listen_port);
  }
  if (http_port_ != 0) ports.push_back(http_port_);  // bound after the pipelines
  for (const std::uint16_t port : ports) {
    const bool listening = wait_until(
        [&] {
          if (!process_->running()) return true;
          try {
            TcpFeeder probe(port, std::chrono::milliseconds(200));
            probe.close();
            return true;
          } catch (const std::exception&) {
            return false;
          }
        },
        hang_guard());
    if (!listening || !process_->running()) {
      throw std::runtime_error("tumbled did not start listening on port " + std::to_string(port) +
                               "; log:\n" + process_->log_text());
    }
  }
}

int Daemon::stop(std::chrono::milliseconds timeout) {
  process_->signal(SIGTERM);
  const auto code = process_->wait_for(timeout);
  if (!code) throw std::runtime_error("tumbled did not stop after SIGTERM; log:\n" + log_text());
  return *code;
}

std::pair<int, std::string> Daemon::run_command(std::vector<std::string> args) {
  args.insert(args.begin(), TUMBLED_BINARY);
  args.push_back("--config");
  args.push_back(config_path());
  ChildProcess command(args, dir_.path() / ("command-" + std::to_string(++commands_) + ".log"));
  const auto code = command.wait_for(hang_guard());
  return {code.value_or(-1), command.log_text()};
}

int Daemon::wait_for_exit(std::chrono::milliseconds timeout) {
  const auto code = process_->wait_for(timeout);
  if (!code) throw std::runtime_error("tumbled did not exit; log:\n" + log_text());
  return *code;
}

void Daemon::signal(int signo) {
  if (!process_) throw std::logic_error("signal() before start()");
  process_->signal(signo);
}

void Daemon::reconfigure(std::vector<PipelineSpec> pipelines) {
  pipelines_ = std::move(pipelines);
  write_config();
}

void Daemon::write_config_text(const std::string& yaml) const {
  std::ofstream out(config_path());
  out << yaml;
  if (!out) throw std::runtime_error("cannot write " + config_path());
}

std::size_t Daemon::log_count(const std::string& text) const {
  const std::string log = log_text();
  std::size_t count = 0;
  for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + text.size())) {
    ++count;
  }
  return count;
}

bool Daemon::wait_for_log(const std::string& text, std::size_t times,
                          std::chrono::milliseconds timeout) {
  return wait_until([&] { return log_count(text) >= times || !process_->running(); }, timeout) &&
         log_count(text) >= times;
}

void Daemon::kill() {
  process_->signal(SIGKILL);
  process_->wait_for(hang_guard());  // SIGKILL cannot be ignored: only a hang would reach this
}

WindowTotals window_totals(InfluxServer& influx, const std::string& measurement) {
  WindowTotals totals;
  for (const auto& row :
       influx.series_values("telemetry", "SELECT sum FROM \"" + measurement + "\"")) {
    totals.sum += row.at(1).to_number<std::int64_t>();
    ++totals.windows;
  }
  return totals;
}

std::size_t memory_kib(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoul(line.substr(field.size() + 1));
  }
  return 0;
}

}  // namespace tumbled::test
