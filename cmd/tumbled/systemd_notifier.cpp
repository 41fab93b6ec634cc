#include "systemd_notifier.hpp"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>

namespace tumbled {

namespace asio = boost::asio;

SystemdNotifier::SystemdNotifier(asio::io_context& io, std::shared_ptr<spdlog::logger> log)
    : io_(io), log_(std::move(log)), timer_(io) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  if (!enabled_) return;
  std::uint64_t usec = 0;
  const int watchdog = sd_watchdog_enabled(0, &usec);
  if (watchdog < 0) {
    log_->warn("ignoring the systemd watchdog settings (WATCHDOG_USEC, WATCHDOG_PID): {}",
               std::strerror(-watchdog));
  } else if (watchdog > 0 && usec > 0) {
    watchdog_timeout_ = std::chrono::microseconds(usec);
  }
}

void SystemdNotifier::ready(const std::string& status) {
  if (!enabled_) return;
  send("READY=1\nSTATUS=" + status);
  if (watchdog_timeout_.count() == 0 || keep_alive_started_) return;
  keep_alive_started_ = true;
  log_->info("systemd watchdog: pinging every {} ms (WatchdogSec={} ms)",
             watchdog_timeout_.count() / 2000, watchdog_timeout_.count() / 1000);
  asio::co_spawn(io_, keep_alive(), [log = log_](std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      log->error("systemd watchdog pings stopped: {}; systemd will restart tumbled", e.what());
    }
  });
}

void SystemdNotifier::stopping(const std::string& status) {
  if (!enabled_) return;
  send("STOPPING=1\nSTATUS=" + status);
}

void SystemdNotifier::reloading(const std::string& status) {
  if (!enabled_) return;
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000 +
                    static_cast<std::uint64_t>(now.tv_nsec) / 1000;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=" + status);
}

void SystemdNotifier::send(const std::string& message) {
  const int sent = sd_notify(0, message.c_str());
  if (sent >= 0 || send_failure_logged_) return;
  // Logged once: the daemon works without systemd hearing from it, except that a watchdog will
  // eventually restart it, and that restart is what the operator then sees.
  send_failure_logged_ = true;
  log_->warn("cannot notify systemd through NOTIFY_SOCKET ({}); carrying on without it",
             std::strerror(-sent));
}

asio::awaitable<void> SystemdNotifier::keep_alive() {
  const auto interval = watchdog_timeout_ / 2;
  for (;;) {
    send("WATCHDOG=1");
    timer_.expires_after(interval);
    const auto [ec] = co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;  // cancelled: the notifier is going away
  }
}

}  // namespace tumbled
