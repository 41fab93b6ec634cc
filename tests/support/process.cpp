#include "support/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace tumbled::test {
namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// PATH lookup happens in the parent: execvp is not async-signal-safe, and
// everything between fork and exec must be.
std::string resolve_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    const auto colon = dirs.find(':');
    const auto dir = dirs.substr(0, colon);
    const std::string candidate = std::string(dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return name;  // exec will fail with ENOENT and report it.
}

std::vector<std::string> build_environment(const EnvVars& extra,
                                           const std::vector<std::string>& scrub_prefixes) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('='));
    bool drop = false;
    for (const auto& prefix : scrub_prefixes) drop = drop || name.starts_with(prefix);
    for (const auto& [key, value] : extra) drop = drop || name == key;
    if (!drop) env.emplace_back(entry);
  }
  for (const auto& [key, value] : extra) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> as_argv(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

[[noreturn]] void child_fail(int error_fd) {
  const int err = errno;
  [[maybe_unused]] auto n = ::write(error_fd, &err, sizeof err);
  ::_exit(127);
}

// Runs in the forked child: async-signal-safe calls only. Reports failure by
// writing errno into `error_fd` (close-on-exec, so success closes it silently).
[[noreturn]] void exec_child(pid_t parent, int error_fd, const char* log_path, const char* file,
                             char* const* argv, char* const* envp, int max_fd) {
  auto fail = [&] { child_fail(error_fd); };
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);  // parent died before prctl took effect

  // Signal masks and ignored dispositions survive exec; the test runner's
  // (e.g. ignored SIGPIPE, blocked signals) must not leak into the daemon.
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);

  const int in = ::open("/dev/null", O_RDONLY);
  if (in < 0) fail();
  const int out = ::open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out < 0) fail();
  if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) fail();
  if (error_fd != 3) {
    if (::dup2(error_fd, 3) < 0) fail();
    error_fd = 3;
  }
  ::fcntl(3, F_SETFD, FD_CLOEXEC);
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, 4U, ~0U, 0U) != 0)
#endif
    for (int fd = 4; fd < max_fd; ++fd) ::close(fd);

  ::execve(file, argv, envp);
  child_fail(error_fd);
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, std::filesystem::path log_path,
                           EnvVars extra_env, std::vector<std::string> scrub_env_prefixes)
    : log_path_(std::move(log_path)) {
  if (argv.empty()) throw std::invalid_argument("ChildProcess: empty argv");
  const std::string file = resolve_executable(argv[0]);
  auto env_strings = build_environment(extra_env, scrub_env_prefixes);
  auto argv_ptrs = as_argv(argv);
  auto env_ptrs = as_argv(env_strings);
  const std::string log = log_path_.string();
  rlimit limit{};
  const int max_fd = (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
                         ? static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 65536))
                         : 65536;

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    throw_errno(err, "fork");
  }
  if (pid == 0) {
    ::close(pipe_fds[0]);
    exec_child(parent, pipe_fds[1], log.c_str(), file.c_str(), argv_ptrs.data(), env_ptrs.data(),
               max_fd);
  }
  ::close(pipe_fds[1]);
  pid_ = pid;

  // EOF means exec succeeded (the close-on-exec pipe closed); 4 bytes are
  // the child's errno. Turning exec failure into an exception here beats a
  // mysterious exit code 127 later.
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(pipe_fds[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  ::close(pipe_fds[0]);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    kill_and_reap();
    throw_errno(child_errno, "cannot start " + argv[0] + " (log " + log + ")");
  }
}

ChildProcess::~ChildProcess() {
  kill_and_reap();
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      status_(other.status_),
      log_path_(std::move(other.log_path_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
    status_ = other.status_;
    log_path_ = std::move(other.log_path_);
  }
  return *this;
}

bool ChildProcess::try_reap() {
  if (status_) return true;
  if (pid_ < 0) return false;
  int raw = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &raw, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  if (r < 0) {
    status_ = -1;  // ECHILD: someone else reaped it; nothing sane to report.
    return true;
  }
  if (WIFEXITED(raw))
    status_ = WEXITSTATUS(raw);
  else if (WIFSIGNALED(raw))
    status_ = 128 + WTERMSIG(raw);
  else
    return false;  // stopped/continued: still alive
  return true;
}

void ChildProcess::signal(int signo) {
  if (pid_ > 0 && !try_reap()) ::kill(pid_, signo);
}

std::optional<int> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  // Short polls: most waits are for processes already on their way out.
  if (wait_until([&] { return try_reap(); }, timeout, std::chrono::milliseconds(5))) return status_;
  return std::nullopt;
}

bool ChildProcess::running() {
  return pid_ > 0 && !try_reap();
}

std::string ChildProcess::log_text() const {
  return read_file(log_path_);
}

void ChildProcess::kill_and_reap() noexcept {
  if (pid_ <= 0 || status_) return;
  ::kill(pid_, SIGKILL);
  int raw = 0;
  while (::waitpid(pid_, &raw, 0) < 0 && errno == EINTR) {
  }
  status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
}

TempDir::TempDir(std::string_view prefix) {
  std::string templ = "/tmp/" + std::string(prefix) + "XXXXXX";
  if (!::mkdtemp(templ.data())) throw_errno(errno, "mkdtemp " + templ);
  path_ = templ;
}

TempDir::~TempDir() {
  remove();
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

void TempDir::remove() noexcept {
  if (path_.empty()) return;
  if (std::getenv("TUMBLED_TEST_KEEP_TMP")) {
    std::cerr << "TUMBLED_TEST_KEEP_TMP: keeping " << path_ << '\n';
  } else {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  path_.clear();
}

std::chrono::milliseconds hang_guard() {
  static const std::chrono::milliseconds guard = [] {
    double scale = 1.0;
    if (const char* text = std::getenv("TUMBLED_TEST_TIME_SCALE")) {
      char* end = nullptr;
      const double parsed = std::strtod(text, &end);
      if (end != text && *end == '\0' && parsed >= 1.0 && parsed <= 1000.0) scale = parsed;
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(60'000 * scale));
  }();
  return guard;
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    throw_errno(err, "bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace tumbled::test
