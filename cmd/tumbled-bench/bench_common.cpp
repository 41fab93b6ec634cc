#include "bench_common.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "support/http_client.hpp"

namespace tumbled::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string fmt(const char* format, ...) {
  char text[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof text, format, args);
  va_end(args);
  return text;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string median_and_range(const std::vector<double>& v, int decimals) {
  if (v.empty()) return "failed";
  if (v.size() == 1) return fmt("%.*f", decimals, v[0]);
  const auto [low, high] = std::minmax_element(v.begin(), v.end());
  return fmt("%.*f (%.*f - %.*f)", decimals, median(v), decimals, *low, decimals, *high);
}

// ---------------------------------------------------------------------------------------------
// Options

Options::Options(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (!arg.starts_with("--")) throw std::invalid_argument("unexpected argument '" + arg + "'");
    arg = arg.substr(2);
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      values_[arg.substr(0, eq)] = arg.substr(eq + 1);
    } else if (i + 1 < argc && !std::string_view(argv[i + 1]).starts_with("--")) {
      values_[arg] = argv[++i];
    } else {
      values_[arg] = "1";
    }
  }
}

std::string Options::get(const std::string& key, const std::string& fallback) const {
  used_[key] = true;
  const auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

long long Options::get_int(const std::string& key, long long fallback) const {
  const auto text = get(key, "");
  return text.empty() ? fallback : std::stoll(text);
}

double Options::get_double(const std::string& key, double fallback) const {
  const auto text = get(key, "");
  return text.empty() ? fallback : std::stod(text);
}

std::vector<std::string> Options::get_list(const std::string& key,
                                           const std::string& fallback) const {
  std::vector<std::string> items;
  std::istringstream in(get(key, fallback));
  for (std::string item; std::getline(in, item, ',');) items.push_back(item);
  return items;
}

std::vector<int> Options::get_int_list(const std::string& key, const std::string& fallback) const {
  std::vector<int> values;
  for (const auto& item : get_list(key, fallback)) values.push_back(std::stoi(item));
  return values;
}

void Options::check_all_used() const {
  for (const auto& [key, value] : values_) {
    if (!used_.count(key)) throw std::invalid_argument("unknown option --" + key);
  }
}

// ---------------------------------------------------------------------------------------------
// KeepAliveHttp

struct KeepAliveHttp::Impl {
  Impl(std::string h, std::uint16_t p) : host(std::move(h)), port(p) {}
  std::string host;
  std::uint16_t port;
  asio::io_context io;
  asio::ip::tcp::socket socket{io};
  beast::flat_buffer buffer;
  bool connected = false;
  std::uint64_t connects = 0;

  void connect() {
    boost::system::error_code ignored;
    socket.close(ignored);
    buffer.clear();
    socket.connect({asio::ip::make_address(host), port});
    socket.set_option(asio::ip::tcp::no_delay(true));
    timeval tv{60, 0};  // a stuck influxd fails the benchmark instead of hanging it
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    connected = true;
    ++connects;
  }

  Response exchange(http::verb verb, const std::string& target, const std::string& body) {
    for (int attempt = 0;; ++attempt) {
      try {
        if (!connected) connect();
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, host + ":" + std::to_string(port));
        req.set(http::field::user_agent, "tumbled-bench");
        if (verb == http::verb::post) req.set(http::field::content_type, "text/plain");
        req.body() = body;
        req.prepare_payload();
        http::write(socket, req);
        http::response<http::string_body> res;
        http::read(socket, buffer, res);
        if (!res.keep_alive()) connected = false;
        return {static_cast<int>(res.result_int()), std::move(res.body())};
      } catch (const boost::system::system_error&) {
        // An idle keep-alive connection the server closed: reconnect once.
        connected = false;
        if (attempt > 0) throw;
      }
    }
  }
};

KeepAliveHttp::KeepAliveHttp(std::string host, std::uint16_t port)
    : impl_(std::make_unique<Impl>(std::move(host), port)) {}
KeepAliveHttp::~KeepAliveHttp() = default;
KeepAliveHttp::Response KeepAliveHttp::post(const std::string& target, const std::string& body) {
  return impl_->exchange(http::verb::post, target, body);
}
KeepAliveHttp::Response KeepAliveHttp::get(const std::string& target) {
  return impl_->exchange(http::verb::get, target, {});
}
std::uint64_t KeepAliveHttp::connects() const {
  return impl_->connects;
}

QueryRows query_rows(KeepAliveHttp& http, std::string_view db, std::string_view influxql) {
  const auto res =
      http.get("/query?db=" + test::url_encode(db) + "&epoch=ms&q=" + test::url_encode(influxql));
  if (res.status != 200) {
    throw std::runtime_error("query '" + std::string(influxql) + "' failed: HTTP " +
                             std::to_string(res.status) + " " + res.body);
  }
  const json::value doc = json::parse(res.body);
  QueryRows out;
  const auto& result = doc.at("results").as_array().at(0).as_object();
  if (const auto* error = result.if_contains("error")) {
    throw std::runtime_error("query '" + std::string(influxql) +
                             "' failed: " + json::serialize(*error));
  }
  const auto* series = result.if_contains("series");
  if (series == nullptr || series->as_array().empty()) return out;
  const auto& first = series->as_array().at(0).as_object();
  for (const auto& c : first.at("columns").as_array()) out.columns.emplace_back(c.as_string());
  for (const auto& row : first.at("values").as_array()) {
    std::vector<std::string> values;
    for (const auto& v : row.as_array()) values.push_back(json::serialize(v));
    out.rows.push_back(std::move(values));
  }
  return out;
}

void create_database(KeepAliveHttp& http, std::string_view db) {
  const auto res =
      http.post("/query?q=" + test::url_encode("CREATE DATABASE \"" + std::string(db) + "\""), "");
  if (res.status != 200) throw std::runtime_error("CREATE DATABASE failed: " + res.body);
}

InfluxTotals influx_totals(KeepAliveHttp& http, std::string_view db) {
  InfluxTotals totals;
  const auto rows = query_rows(http, db, "SELECT * FROM records");
  int sum_col = -1, count_col = -1, saturated_col = -1;
  for (std::size_t i = 0; i < rows.columns.size(); ++i) {
    if (rows.columns[i] == "sum") sum_col = static_cast<int>(i);
    if (rows.columns[i] == "count") count_col = static_cast<int>(i);
    if (rows.columns[i] == "sum_saturated") saturated_col = static_cast<int>(i);
  }
  for (const auto& row : rows.rows) {
    ++totals.windows;
    if (sum_col >= 0 && row[sum_col] != "null") totals.sum += std::stoll(row[sum_col]);
    if (count_col >= 0 && row[count_col] != "null") totals.count += std::stoull(row[count_col]);
    if (saturated_col >= 0 && row[saturated_col] == "true") totals.saturated = true;
  }
  const auto total = query_rows(http, db, "SELECT sum(\"sum\") FROM records");
  totals.influx_sum = total.rows.empty() ? "none" : total.rows.at(0).at(1);
  return totals;
}

// ---------------------------------------------------------------------------------------------
// Tumbled

namespace {

bool can_connect(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

Tumbled::Tumbled(TumbledSpec spec, const std::filesystem::path& dir)
    : spec_(std::move(spec)), dir_(dir) {
  for (int attempt = 0;; ++attempt) {
    port_ = test::free_port();
    // No endpoints unless asked for: the default port may be taken.
    std::string metrics_listen;
    if (spec_.metrics) {
      do {
        metrics_port_ = test::free_port();
      } while (metrics_port_ == port_);
      metrics_listen = "127.0.0.1:" + std::to_string(metrics_port_);
    }
    const auto config = dir_ / "tumbled.yaml";
    {
      std::ofstream out(config);
      out << "log: {level: " << spec_.log_level << "}\n"
          << "http: {listen: \"" << metrics_listen << "\"}\n"
          << "state: {dir: " << state_dir().string();
      if (!spec_.checkpoint_interval.empty())
        out << ", checkpoint_interval: " << spec_.checkpoint_interval;
      out << "}\n"
          << "pipelines:\n"
          << "  - name: bench\n"
          << "    source: {"
          << (spec_.kafka.empty() ? "tcp: {listen: 127.0.0.1:" + std::to_string(port_) +
                                        ", threads: " + std::to_string(spec_.tcp_threads) + "}"
                                  : "kafka: {" + spec_.kafka + "}")
          << (spec_.source_extra.empty() ? "" : ", " + spec_.source_extra) << "}\n"
          << "    window: {size: " << spec_.window << ", aggregates: " << spec_.aggregates
          << (spec_.window_extra.empty() ? "" : ", " + spec_.window_extra) << "}\n";
      if (!spec_.point) {
        out << "    point: {measurement: records, tags: {window: " << spec_.window << "}}\n";
      } else if (!spec_.point->empty()) {
        out << "    point: " << *spec_.point << "\n";
      }
      out << "    sink:\n      influxdb:\n"
          << "        url: http://127.0.0.1:" << spec_.influx_port << "\n"
          << "        database: " << spec_.database << "\n";
      if (!spec_.batch_size.empty()) out << "        batch_size: " << spec_.batch_size << "\n";
      if (!spec_.max_batch_size.empty())
        out << "        max_batch_size: " << spec_.max_batch_size << "\n";
      if (!spec_.batch_interval.empty())
        out << "        batch_interval: " << spec_.batch_interval << "\n";
      if (!spec_.max_backoff.empty())
        out << "        retry: {max_backoff: " << spec_.max_backoff << "}\n";
      if (!out) throw std::runtime_error("cannot write " + config.string());
    }
    started_at_ = Clock::now();
    process_.emplace(std::vector<std::string>{spec_.binary, "--config", config.string()},
                     dir_ / "tumbled.log");
    const bool up = test::wait_until(
        [&] {
          return !process_->running() || ((!spec_.kafka.empty() || can_connect(port_)) &&
                                          (metrics_port_ == 0 || can_connect(metrics_port_)));
        },
        milliseconds(60'000), milliseconds(2));
    if (up && process_->running()) return;
    const auto log = process_->log_text();
    process_.reset();
    if (attempt == 0 && log.find("in use") != std::string::npos) continue;  // free_port() race
    throw std::runtime_error("tumbled did not start; log:\n" + log);
  }
}

Tumbled::~Tumbled() = default;  // ~ChildProcess kills a daemon still running

int Tumbled::stop(milliseconds timeout) {
  process_->signal(SIGTERM);
  const auto code = process_->wait_for(timeout);
  if (!code) throw std::runtime_error("tumbled did not stop after SIGTERM; log:\n" + log_text());
  return *code;
}

// ---------------------------------------------------------------------------------------------
// Senders

namespace {

int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::system_error(err, std::generic_category(),
                            "connect 127.0.0.1:" + std::to_string(port));
  }
  return fd;
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "send");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

SendResult send_payload(const Payload& payload, const std::vector<Chunk>& chunks,
                        std::uint16_t port, int connections, double seconds,
                        double lines_per_second, const std::atomic<bool>* stop,
                        std::uint64_t min_lines) {
  struct PerConnection {
    int fd = -1;
    SendResult result;
    Clock::time_point last_write, closed;
    std::exception_ptr error;
  };
  std::vector<PerConnection> conns(static_cast<std::size_t>(connections));
  for (auto& c : conns) c.fd = connect_loopback(port);

  std::atomic<bool> go{false};
  Clock::time_point start;
  std::vector<std::thread> threads;
  for (auto& c : conns) {
    threads.emplace_back([&, &c = c] {
      try {
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(seconds));
        std::size_t i = 0;
        for (;;) {
          const Chunk& chunk = chunks[i];
          write_all(c.fd, payload.view(chunk));
          c.result.bytes += chunk.size;
          c.result.lines += chunk.lines;
          c.result.sum += chunk.sum;
          i = (i + 1) % chunks.size();
          const auto now = Clock::now();
          if ((now >= deadline && c.result.lines >= min_lines) || (stop && stop->load())) break;
          if (lines_per_second > 0) {
            const auto due =
                start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                            double(c.result.lines) / lines_per_second));
            if (due > now) std::this_thread::sleep_until(due);
          }
        }
        c.last_write = Clock::now();
        ::shutdown(c.fd, SHUT_WR);
        timeval tv{120, 0};
        ::setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char sink[4096];
        for (;;) {  // the peer closes once it has read everything up to our FIN
          const ssize_t n = ::recv(c.fd, sink, sizeof sink, 0);
          if (n == 0) break;
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) throw std::system_error(errno, std::generic_category(), "waiting for close");
        }
        c.closed = Clock::now();
      } catch (...) {
        c.error = std::current_exception();
      }
      ::close(c.fd);
    });
  }
  start = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  SendResult total;
  Clock::time_point last_write = start, closed = start;
  for (auto& c : conns) {
    if (c.error) std::rethrow_exception(c.error);
    total.bytes += c.result.bytes;
    total.lines += c.result.lines;
    total.sum += c.result.sum;
    total.connection_lines.push_back(c.result.lines);
    last_write = std::max(last_write, c.last_write);
    closed = std::max(closed, c.closed);
  }
  total.elapsed = std::chrono::duration<double>(closed - start).count();
  total.send_elapsed = std::chrono::duration<double>(last_write - start).count();
  return total;
}

void send_text(std::uint16_t port, std::string_view bytes) {
  const int fd = connect_loopback(port);
  try {
    write_all(fd, bytes);
    ::shutdown(fd, SHUT_WR);
    timeval tv{60, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char sink[256];
    for (;;) {  // the peer closes once it has read everything up to our FIN
      const ssize_t n = ::recv(fd, sink, sizeof sink, 0);
      if (n == 0) break;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::system_error(errno, std::generic_category(), "waiting for close");
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

// ---------------------------------------------------------------------------------------------
// NewlineCounter

struct NewlineCounter::Thread {
  std::thread thread;
  std::uint64_t newlines = 0;
  std::exception_ptr error;
};

NewlineCounter::NewlineCounter() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::system_error(errno, std::generic_category(), "newline counter listen");
  }
  port_ = ntohs(addr.sin_port);
}

NewlineCounter::~NewlineCounter() {
  if (thread_ && thread_->thread.joinable()) thread_->thread.join();
  ::close(listen_fd_);
}

void NewlineCounter::start(int connections) {
  thread_ = std::make_unique<Thread>();
  thread_->thread = std::thread([this, connections] {
    try {
      const int ep = ::epoll_create1(EPOLL_CLOEXEC);
      for (int i = 0; i < connections; ++i) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) throw std::system_error(errno, std::generic_category(), "accept");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      }
      std::vector<char> buffer(256 * 1024);  // the read size tumbled uses
      std::uint64_t count = 0;
      int open = connections;
      epoll_event events[64];
      while (open > 0) {
        const int n = ::epoll_wait(ep, events, 64, -1);
        if (n < 0 && errno == EINTR) continue;
        for (int e = 0; e < n; ++e) {
          const int fd = events[e].data.fd;
          const ssize_t got = ::read(fd, buffer.data(), buffer.size());
          if (got > 0) {
            const char* p = buffer.data();
            const char* const end = p + got;
            while ((p = static_cast<const char*>(std::memchr(p, '\n', std::size_t(end - p))))) {
              ++count;
              ++p;
            }
          } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
            ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
            ::close(fd);
            --open;
          }
        }
      }
      ::close(ep);
      thread_->newlines = count;
    } catch (...) {
      thread_->error = std::current_exception();
    }
  });
}

std::uint64_t NewlineCounter::join() {
  thread_->thread.join();
  if (thread_->error) std::rethrow_exception(thread_->error);
  return thread_->newlines;
}

// ---------------------------------------------------------------------------------------------
// perf

PerfRecorder::PerfRecorder(const std::string& output, pid_t pid,
                           const std::filesystem::path& log_dir)
    : output_(output) {
  if (output.empty()) return;
  process_.emplace(std::vector<std::string>{"perf", "record", "-F", "999", "-g", "-o", output, "-p",
                                            std::to_string(pid)},
                   log_dir / "perf.log");
  std::this_thread::sleep_for(milliseconds(300));  // let perf attach
}

void PerfRecorder::stop() {
  if (!process_) return;
  process_->signal(SIGINT);
  process_->wait_for(milliseconds(60'000));
  process_.reset();
  std::cout << "perf data in " << output_ << "\n";
}

// ---------------------------------------------------------------------------------------------
// /proc

ProcSample sample_proc(pid_t pid) {
  ProcSample s;
  s.at = Clock::now();
  const std::string stat = test::read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) throw std::runtime_error("cannot read /proc/PID/stat");
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f;
  for (std::string word; fields >> word;) f.push_back(word);
  // f[0] is field 3 (state): utime is field 14, stime 15, num_threads 20.
  const double tick = double(::sysconf(_SC_CLK_TCK));
  s.cpu_seconds = (std::stod(f.at(11)) + std::stod(f.at(12))) / tick;
  s.threads = std::stoi(f.at(17));
  std::istringstream status(test::read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) s.rss_kib = std::stoull(line.substr(6));
    if (line.starts_with("VmHWM:")) s.hwm_kib = std::stoull(line.substr(6));
  }
  return s;
}

std::string machine_description() {
  std::string model = "unknown CPU";
  std::istringstream cpuinfo(test::read_file("/proc/cpuinfo"));
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.starts_with("model name")) {
      const auto colon = line.find(':');
      model = line.substr(std::min(line.size(), line.find_first_not_of(" \t", colon + 1)));
      break;
    }
  }
  cpu_set_t cpus;  // as nproc counts them: the CPUs this process may run on
  const int count = ::sched_getaffinity(0, sizeof cpus, &cpus) == 0
                        ? CPU_COUNT(&cpus)
                        : static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  return fmt("%d CPUs, %s", count, model.c_str());
}

// ---------------------------------------------------------------------------------------------
// Results

namespace {
std::mutex rows_mutex;
std::vector<std::string> rows;
}  // namespace

void result_row(const std::string& bench, const std::string& metric, const std::string& value,
                const std::string& note) {
  std::lock_guard lock(rows_mutex);
  rows.push_back("| " + bench + " | " + metric + " | " + value + " | " + note + " |");
}

void print_result_rows() {
  std::lock_guard lock(rows_mutex);
  std::cout << "\n| Benchmark | Metric | Value | Note |\n|---|---|---|---|\n";
  for (const auto& r : rows) std::cout << r << "\n";
  std::cout.flush();
}

}  // namespace tumbled::bench
