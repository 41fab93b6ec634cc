// The daemon under systemd's Type=notify protocol, with the test playing systemd: it binds the
// unix datagram socket NOTIFY_SOCKET names and reads what tumbled sends there — READY=1 once it
// listens, WATCHDOG=1 every half of WATCHDOG_USEC, STOPPING=1 at SIGTERM.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <system_error>

#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;

namespace {

// The service manager's end of NOTIFY_SOCKET: one datagram per sd_notify() call.
class NotifySocket {
 public:
  explicit NotifySocket(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket(AF_UNIX)");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const auto text = path_.string();
    if (text.size() >= sizeof address.sun_path) throw std::runtime_error("path too long: " + text);
    std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      throw std::system_error(errno, std::generic_category(), "bind " + text);
    }
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Reads every datagram waiting, without blocking; returns all messages received so far.
  const std::vector<std::string>& messages() {
    char buffer[4096];
    for (;;) {
      const auto n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n < 0) break;
      messages_.emplace_back(buffer, static_cast<std::size_t>(n));
    }
    return messages_;
  }

  // How many messages so far contain `line` as one of their lines.
  std::size_t count(const std::string& line) {
    return static_cast<std::size_t>(
        std::count_if(messages().begin(), messages().end(),
                      [&](const std::string& m) { return has_line(m, line); }));
  }

  // Index of the first message containing `line`, or messages().size().
  std::size_t first(const std::string& line) {
    const auto& all = messages();
    return static_cast<std::size_t>(
        std::find_if(all.begin(), all.end(),
                     [&](const std::string& m) { return has_line(m, line); }) -
        all.begin());
  }

  static bool has_line(const std::string& message, const std::string& line) {
    return ("\n" + message + "\n").find("\n" + line + "\n") != std::string::npos;
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::vector<std::string> messages_;
};

PipelineSpec pipeline_without_influxdb() {
  // Nothing is fed, so nothing is written: InfluxDB's port only has to be a valid one.
  PipelineSpec spec;
  spec.influx_port = free_port();
  return spec;
}

}  // namespace

TEST_CASE("tells systemd when it is ready, alive and stopping", "[system][systemd]") {
  TempDir dir;
  NotifySocket systemd(dir.path() / "notify");
  Daemon daemon({pipeline_without_influxdb()});
  // WATCHDOG_PID unset: sd_watchdog_enabled() then takes WATCHDOG_USEC as meant for this process.
  daemon.set_environment({{"NOTIFY_SOCKET", systemd.path().string()}, {"WATCHDOG_USEC", "200000"}});
  daemon.start();

  REQUIRE(wait_until([&] { return systemd.count("READY=1") == 1; }, hang_guard()));
  CHECK(systemd.count("STATUS=running 1 pipelines") == 1);
  // Pings every 100 ms: a handful arrive within a second or two, and only after READY=1.
  REQUIRE(wait_until([&] { return systemd.count("WATCHDOG=1") >= 5; }, hang_guard()));
  CHECK(systemd.first("READY=1") < systemd.first("WATCHDOG=1"));
  CHECK(systemd.count("STOPPING=1") == 0);
  CHECK(daemon.log_text().find("systemd watchdog: pinging every 100 ms") != std::string::npos);

  CHECK(daemon.stop() == 0);
  CHECK(systemd.count("STOPPING=1") == 1);
  CHECK(systemd.count("STATUS=stopping: flushing for at most 3s") == 1);
  CHECK(systemd.first("READY=1") < systemd.first("STOPPING=1"));
  INFO("daemon log:\n" << daemon.log_text());
  CHECK(daemon.log_text().find("cannot notify systemd") == std::string::npos);
}

TEST_CASE("no watchdog pings when WATCHDOG_PID names another process", "[system][systemd]") {
  TempDir dir;
  NotifySocket systemd(dir.path() / "notify");
  Daemon daemon({pipeline_without_influxdb()});
  // As when tumbled runs under a wrapper that systemd watches: the settings are not for tumbled.
  daemon.set_environment({{"NOTIFY_SOCKET", systemd.path().string()},
                          {"WATCHDOG_USEC", "200000"},
                          {"WATCHDOG_PID", std::to_string(::getpid())}});
  daemon.start();
  REQUIRE(wait_until([&] { return systemd.count("READY=1") == 1; }, hang_guard()));
  // Absence can only be observed over a while: five would-be ping intervals.
  wait_until([&] { return systemd.count("WATCHDOG=1") > 0; }, 500ms);
  CHECK(systemd.count("WATCHDOG=1") == 0);
  CHECK(daemon.stop() == 0);
  CHECK(systemd.count("STOPPING=1") == 1);
}
