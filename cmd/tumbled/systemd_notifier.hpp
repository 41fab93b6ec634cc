// SystemdNotifier: tells systemd (Type=notify, see deploy/tumbled.service) how the daemon is doing.
//
// ready() sends READY=1 once every pipeline listens, stopping() sends STOPPING=1 when a stop signal
// arrives, reloading() sends RELOADING=1 when SIGHUP starts a reload (ready() again ends it), all
// with a STATUS= line for `systemctl status`. When systemd asks for a watchdog
// (WatchdogSec=, i.e. sd_watchdog_enabled(): WATCHDOG_USEC set and WATCHDOG_PID unset or ours),
// ready() also starts a coroutine on the daemon's io_context that sends WATCHDOG=1 every half of
// the timeout: the pings come from the same loop that moves the data, so a loop that hangs stops
// them and systemd restarts the daemon.
//
// Contract: inert when NOTIFY_SOCKET is unset (started by hand, in a container, in most tests): no
// message, no timer. A failed send is logged once at warn and otherwise ignored: supervision never
// stops the data path. Not thread-safe: call it from the io_context's thread, like everything else
// in the daemon. Must not outlive the io_context it was given.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace tumbled {

class SystemdNotifier {
 public:
  SystemdNotifier(boost::asio::io_context& io, std::shared_ptr<spdlog::logger> log);

  // READY=1 and STATUS=<status>; starts the watchdog pings if systemd expects them.
  void ready(const std::string& status);
  // STOPPING=1 and STATUS=<status>. The pings go on until the loop stops: a flush that hangs the
  // loop is then caught by the watchdog too, a slow one by TimeoutStopSec.
  void stopping(const std::string& status);
  // RELOADING=1, MONOTONIC_USEC=<now> (systemd needs it to tell this reload from an older one)
  // and STATUS=<status>. Call ready() when the reload is over, whatever its outcome.
  void reloading(const std::string& status);

  bool enabled() const { return enabled_; }
  // Zero when systemd does not expect watchdog pings.
  std::chrono::microseconds watchdog_timeout() const { return watchdog_timeout_; }

 private:
  void send(const std::string& message);
  boost::asio::awaitable<void> keep_alive();

  boost::asio::io_context& io_;
  std::shared_ptr<spdlog::logger> log_;
  boost::asio::steady_timer timer_;
  bool enabled_ = false;
  std::chrono::microseconds watchdog_timeout_{0};
  bool keep_alive_started_ = false;
  bool send_failure_logged_ = false;
};

}  // namespace tumbled
