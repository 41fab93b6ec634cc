// Child processes, temp dirs, ports and polling for component/system tests.
//
// Contract:
// - ChildProcess runs argv (argv[0] is a path, or a name looked up in PATH)
//   with the parent's environment plus `extra_env` overrides, minus inherited
//   variables whose names start with one of `scrub_env_prefixes` (so a stray
//   INFLUXDB_* in the CI environment cannot reconfigure the server). stdin is
//   /dev/null; stdout and stderr are appended to `log_path`. Only fds 0-2 are
//   inherited: a leaked listening socket in a child would keep a port
//   accepting after the test closed it. The child gets PR_SET_PDEATHSIG
//   SIGKILL, so a crashed or killed test binary leaves no orphan daemons
//   behind. Caveat: Linux delivers it when the *thread* that spawned the
//   child exits, so spawn from the test's own thread, not a short-lived one.
//   The destructor SIGKILLs and reaps a child that is still running.
//   Not thread-safe: drive one ChildProcess from one thread.
// - TempDir makes a fresh /tmp/<prefix>XXXXXX and removes it recursively on
//   destruction, unless TUMBLED_TEST_KEEP_TMP is set (then it prints the path
//   to stderr so logs can be inspected after a failure).
// - free_port() returns a port that was free a moment ago: inherently racy,
//   callers that hand it to a server must cope with EADDRINUSE.
// - wait_until() is the one way tests wait for something: poll a predicate,
//   never sleep blindly.
// - hang_guard() is how long a test waits for something that must happen before
//   it calls it a hang: 60 s, times TUMBLED_TEST_TIME_SCALE if set (a number,
//   e.g. 3 for a very slow machine). It only ever ends a test that would
//   otherwise hang; it never decides a verdict on a slow or loaded machine
//   (sanitizer builds, CPU hogs), so a wait for what must happen uses it rather
//   than a deadline of its own.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace tumbled::test {

using EnvVars = std::vector<std::pair<std::string, std::string>>;

class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::filesystem::path log_path,
               EnvVars extra_env = {}, std::vector<std::string> scrub_env_prefixes = {});
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // No-op once the child has been reaped (its pid may have been reused).
  void signal(int signo);
  // Exit code, or 128 + signal number if killed; nullopt if still running
  // after `timeout`. Once reaped, returns the same status on every call.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  bool running();
  const std::filesystem::path& log_path() const { return log_path_; }
  std::string log_text() const;

 private:
  bool try_reap();
  void kill_and_reap() noexcept;

  pid_t pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path log_path_;
};

class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "tumbled-test-");
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  void remove() noexcept;
  std::filesystem::path path_;
};

std::uint16_t free_port();

std::chrono::milliseconds hang_guard();

// Reads a whole file; empty string if it does not exist (yet).
std::string read_file(const std::filesystem::path& path);

template <class Predicate>
bool wait_until(Predicate&& predicate, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll_interval = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (predicate()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(poll_interval, deadline - now));
  }
}

}  // namespace tumbled::test
