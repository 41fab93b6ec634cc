// Signals as an operator sends them to the daemon: SIGHUP reloads the configuration (unchanged
// pipelines untouched, changed and removed ones checkpointed, nothing lost), SIGUSR1 logs the
// status, SIGPIPE — also a real one, from a log reader that went away — is survived. Every wait
// polls the log, InfluxDB or the daemon; hang_guard() only ends a test that would hang.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <numeric>

#include "support/fault_proxy.hpp"
#include "support/influxd.hpp"
#include "support/tcp_feed.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;

namespace {

// "1\n2\n...count\n" and its sum.
std::pair<std::string, std::int64_t> values(std::int64_t from, std::int64_t count) {
  std::string text;
  std::int64_t sum = 0;
  for (std::int64_t v = from; v < from + count; ++v) {
    text += std::to_string(v) + "\n";
    sum += v;
  }
  return {text, sum};
}

// Sends `count` values on a connection of its own and waits until the daemon has read them all
// (the connection's closing log line counts them); returns their sum. `count` must be unique
// among the test's connections.
std::int64_t feed(Daemon& daemon, std::uint16_t port, std::int64_t from, std::int64_t count) {
  const auto [text, sum] = values(from, count);
  send_all(port, text);
  const bool read = daemon.wait_for_log("closed: " + std::to_string(count) + " values");
  INFO(daemon.log_text());
  REQUIRE(read);
  return sum;
}

bool sum_arrives(InfluxServer& influx, const std::string& measurement, std::int64_t sum) {
  return wait_until([&] { return window_totals(influx, measurement).sum == sum; }, hang_guard(),
                    100ms);
}

PipelineSpec spec(const std::string& name, std::uint16_t influx_port) {
  PipelineSpec p;
  p.name = name;
  p.influx_port = influx_port;
  return p;
}

// Holds a loopback port with a listener, as another process would.
class PortHolder {
 public:
  explicit PortHolder(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd_, 1) != 0) {
      throw std::runtime_error("cannot hold port " + std::to_string(port));
    }
  }
  ~PortHolder() { release(); }
  void release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

}  // namespace

TEST_CASE("SIGUSR1 logs one status line per pipeline, SIGPIPE is ignored, both are logged",
          "[system][signals]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  Daemon daemon({spec("a", influx.port()), spec("b", influx.port())});
  daemon.start();
  std::int64_t sent = feed(daemon, daemon.pipeline(0).listen_port, 1, 10);
  REQUIRE(sum_arrives(influx, "a", sent));

  // The daemon counts a write once InfluxDB's answer is in, a moment after the point can be
  // queried: ask again until the status says so.
  std::size_t asked = 0;
  const bool acknowledged = wait_until(
      [&] {
        daemon.signal(SIGUSR1);
        ++asked;
        return daemon.wait_for_log("status: pipeline b:", asked) &&
               daemon.log_count("InfluxDB: last write ok") >= 1;
      },
      hang_guard(), 50ms);
  INFO(daemon.log_text());
  REQUIRE(acknowledged);
  CHECK(daemon.log_count("signal SIGUSR1: status of 2 pipelines follows") == asked);
  CHECK(daemon.log_count("status: pipeline a: listening on 127.0.0.1:" +
                         std::to_string(daemon.pipeline(0).listen_port) +
                         ", 0 connections open, 10 values accepted") == asked);
  CHECK(daemon.log_count("status: pipeline b: listening on 127.0.0.1:" +
                         std::to_string(daemon.pipeline(1).listen_port)) == asked);
  CHECK(daemon.log_count("InfluxDB: nothing written yet") >= asked);  // b each time

  for (int i = 0; i < 3; ++i) daemon.signal(SIGPIPE);
  REQUIRE(daemon.wait_for_log("signal SIGPIPE (1 so far): ignored"));
  sent += feed(daemon, daemon.pipeline(0).listen_port, 100, 11);  // still at work afterwards
  CHECK(sum_arrives(influx, "a", sent));
  CHECK(daemon.running());
  CHECK(daemon.stop() == 0);
}

TEST_CASE("a log reader that goes away (tumbled 2>&1 | tee) does not kill the daemon",
          "[system][signals]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  Daemon daemon({spec("a", influx.port())});
  daemon.reconfigure({daemon.pipeline()});  // writes the config file; the daemon is ours to run
  TempDir dir;
  const auto fifo = dir.path() / "log";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(reader >= 0);
  ChildProcess tumbled({TUMBLED_BINARY, "--config", daemon.config_path()}, fifo);
  // Read the log until the daemon has started, then go away like a closed `tee`.
  std::string log;
  const bool started = wait_until(
      [&] {
        char buffer[4096];
        for (ssize_t n; (n = ::read(reader, buffer, sizeof buffer)) > 0;) log.append(buffer, n);
        return log.find(" started") != std::string::npos || !tumbled.running();
      },
      hang_guard());
  INFO(log);
  REQUIRE((started && tumbled.running()));
  ::close(reader);

  // Each connection logs (debug) and so writes to the broken pipe.
  std::int64_t sent = 0;
  for (int i = 1; i <= 3; ++i) {
    const auto [text, sum] = values(i * 100, 10);
    send_all(daemon.pipeline().listen_port, text);
    sent += sum;
  }
  CHECK(sum_arrives(influx, "a", sent));
  CHECK(tumbled.running());
  tumbled.signal(SIGTERM);
  CHECK(tumbled.wait_for(hang_guard()) == 0);  // not 141 (SIGPIPE)
}

TEST_CASE(
    "SIGHUP: a changed and an added pipeline start with their state, an unchanged one "
    "keeps its connection, no point is lost",
    "[system][signals][reload]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  auto a = spec("a", influx.port());
  a.window = "3s";  // long enough that the reload meets it open, on most runs
  auto c = spec("c", influx.port());
  Daemon daemon({a, c});
  daemon.start();

  // c: a connection that stays open across the reload.
  TcpFeeder kept(c.listen_port);
  auto [c_text, c_sent] = values(1, 20);
  kept.send(c_text);
  std::int64_t a_sent = feed(daemon, a.listen_port, 1, 30);

  a.tags = "{window: 3s, version: two}";
  a.batch_interval = "200ms";
  auto b = spec("b", influx.port());
  daemon.reconfigure({a, b, c});
  daemon.signal(SIGHUP);
  REQUIRE(daemon.wait_for_log(
      "reload done: 3 pipelines running (1 kept, 1 restarted, 1 added, 0 removed)"));
  INFO(daemon.log_text());
  CHECK(daemon.log_count("signal SIGHUP: reloading the configuration from " +
                         daemon.config_path()) == 1);
  CHECK(daemon.log_count("reload: pipeline a changed: stopping it") == 1);
  CHECK(daemon.log_count("kept running with their connections: c") == 1);
  CHECK(daemon.log_count("pipeline a stopped") == 1);
  CHECK(daemon.log_count("pipeline c stopped") == 0);

  const auto [more_c, more_c_sum] = values(1000, 5);
  kept.send(more_c);  // the same connection, still served
  c_sent += more_c_sum;
  a_sent += feed(daemon, a.listen_port, 500, 31);
  const std::int64_t b_sent = feed(daemon, b.listen_port, 700, 32);
  CHECK(sum_arrives(influx, "a", a_sent));
  CHECK(sum_arrives(influx, "b", b_sent));
  CHECK(sum_arrives(influx, "c", c_sent));
  // Points of a written after the reload carry its new tag.
  CHECK(!influx.series_values("telemetry", "SELECT sum FROM a WHERE version = 'two'").empty());
  kept.close();
  CHECK(daemon.stop() == 0);
}

TEST_CASE("SIGHUP with an invalid file changes nothing, the pipelines keep working",
          "[system][signals][reload]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  Daemon daemon({spec("a", influx.port())});
  daemon.start();
  std::int64_t sent = feed(daemon, daemon.pipeline().listen_port, 1, 10);

  daemon.write_config_text("pipelines:\n  - name: a\n    window: {size: 10 seconds}\n");
  daemon.signal(SIGHUP);
  REQUIRE(daemon.wait_for_log("reload: invalid configuration, nothing changed"));
  INFO(daemon.log_text());
  CHECK(daemon.log_count(":3:") >= 1);  // the file's error, with its line
  CHECK(daemon.log_count("window.size") >= 1);
  CHECK(daemon.log_count("pipeline a stopped") == 0);

  sent += feed(daemon, daemon.pipeline().listen_port, 100, 11);
  CHECK(sum_arrives(influx, "a", sent));
  CHECK(daemon.stop() == 0);
}

TEST_CASE("a pipeline removed by SIGHUP is checkpointed, added back its window arrives exact",
          "[system][signals][reload]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  auto a = spec("a", influx.port());
  auto b = spec("b", influx.port());
  b.window = "3s";
  Daemon daemon({a, b});
  daemon.start();
  std::int64_t b_sent = feed(daemon, b.listen_port, 1, 40);

  daemon.reconfigure({a});
  daemon.signal(SIGHUP);
  REQUIRE(daemon.wait_for_log(
      "reload done: 1 pipelines running (1 kept, 0 restarted, 0 added, 1 removed)"));
  CHECK(daemon.wait_for_log("pipeline b stopped"));
  CHECK(daemon.log_count("reload: pipeline b removed") == 1);

  daemon.reconfigure({a, b});
  daemon.signal(SIGHUP);
  REQUIRE(daemon.wait_for_log(
      "reload done: 2 pipelines running (1 kept, 0 restarted, 1 added, 0 removed)"));
  b_sent += feed(daemon, b.listen_port, 100, 41);
  INFO(daemon.log_text());
  CHECK(sum_arrives(influx, "b", b_sent));
  CHECK(daemon.stop() == 0);
}

TEST_CASE("a pipeline that cannot start at a reload is named, the others run on, SIGHUP retries",
          "[system][signals][reload]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  auto a = spec("a", influx.port());
  auto d = spec("d", influx.port());
  Daemon daemon({a});
  daemon.start();
  PortHolder holder(d.listen_port);

  daemon.reconfigure({a, d});
  daemon.signal(SIGHUP);
  REQUIRE(daemon.wait_for_log("reload done with errors: 1 pipelines running; NOT running: d"));
  INFO(daemon.log_text());
  CHECK(daemon.log_count("reload: pipeline d cannot start: cannot listen on 127.0.0.1:" +
                         std::to_string(d.listen_port)) == 1);
  std::int64_t a_sent = feed(daemon, a.listen_port, 1, 10);
  CHECK(sum_arrives(influx, "a", a_sent));

  holder.release();
  daemon.signal(SIGHUP);
  REQUIRE(daemon.wait_for_log(
      "reload done: 2 pipelines running (1 kept, 0 restarted, 1 added, 0 removed)"));
  const std::int64_t d_sent = feed(daemon, d.listen_port, 1, 12);
  CHECK(sum_arrives(influx, "d", d_sent));
  CHECK(daemon.stop() == 0);
}

TEST_CASE("reloads never overlap: SIGHUPs during one make one more, SIGTERM during one stops",
          "[system][signals][reload]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  FaultProxy proxy(influx.port(), FaultProxy::Mode::refuse);
  auto a = spec("a", proxy.port());
  a.window = "200ms";
  Daemon daemon({a});
  // Stopping `a` flushes for up to shutdown_timeout while InfluxDB refuses its point: the test
  // holds a reload open that way and ends it by letting the proxy pass.
  daemon.set_shutdown_timeout("120s");
  daemon.start();
  std::int64_t sent = feed(daemon, a.listen_port, 1, 10);
  REQUIRE(daemon.wait_for_log("closed with 10 values"));

  a.batch_interval = "150ms";
  daemon.reconfigure({a});
  daemon.signal(SIGHUP);
  REQUIRE(daemon.wait_for_log("reload: pipeline a changed: stopping it"));
  daemon.signal(SIGHUP);
  REQUIRE(daemon.wait_for_log("a reload is in progress; reloading once more after it"));
  daemon.signal(SIGHUP);
  REQUIRE(daemon.wait_for_log("a reload is in progress; another one is already queued after it"));
  proxy.set_mode(FaultProxy::Mode::pass);
  REQUIRE(daemon.wait_for_log("reload done: pipelines unchanged, 1 kept running"));
  INFO(daemon.log_text());
  CHECK(daemon.log_count("reload done: 1 pipelines running (0 kept, 1 restarted") == 1);
  CHECK(daemon.log_count("reload done") == 2);

  // Again, and SIGTERM while the changed pipeline is being stopped.
  proxy.set_mode(FaultProxy::Mode::refuse);
  sent += feed(daemon, a.listen_port, 100, 11);
  REQUIRE(daemon.wait_for_log("closed with 11 values"));
  a.batch_interval = "120ms";
  daemon.reconfigure({a});
  daemon.signal(SIGHUP);
  REQUIRE(daemon.wait_for_log("reload: pipeline a changed: stopping it", 2));
  daemon.signal(SIGTERM);
  REQUIRE(daemon.wait_for_log("the reload in progress starts no more pipelines"));
  proxy.set_mode(FaultProxy::Mode::pass);
  CHECK(daemon.wait_for_exit() == 0);
  CHECK(daemon.log_count("reload: interrupted by the stop signal; not starting a") == 1);
  CHECK(daemon.log_count("pipeline a stopped") == 2);
  CHECK(daemon.log_count("tumbled stopped") == 1);
  CHECK(window_totals(influx, "a").sum == sent);  // both flushes went through
}
