// Hostile clients: thousands of idle connections, megabytes without a newline, random binary, a
// slow drip. The daemon stays up with bounded memory, counts what it rejected, and serves the
// well-behaved client beside them exactly.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "support/influxd.hpp"
#include "support/tcp_feed.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;

namespace {

int connect_idle(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

TEST_CASE("hostile clients cannot take the daemon down or its memory up", "[system][hostile]") {
  // The idle connections need file descriptors on this side too.
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  const std::size_t idle_count = std::min<std::size_t>(2000, limit.rlim_cur / 3);

  InfluxServer influx;
  influx.create_database("telemetry");
  PipelineSpec spec;
  spec.influx_port = influx.port();
  spec.max_connections = 5000;
  spec.max_line_bytes = 64;
  Daemon daemon({spec});
  daemon.start();

  std::vector<int> idle;
  for (std::size_t i = 0; i < idle_count; ++i) {
    const int fd = connect_idle(spec.listen_port);
    if (fd >= 0) idle.push_back(fd);
  }
  CHECK(idle.size() == idle_count);

  std::int64_t expected = 0;
  std::vector<std::thread> clients;
  // 16 MiB without a newline, then a value on its own line: only the value counts.
  clients.emplace_back([&] {
    TcpFeeder feeder(spec.listen_port);
    const std::string chunk(1 << 20, '7');
    for (int i = 0; i < 16; ++i) feeder.send(chunk);
    feeder.send("\n5\n");
    feeder.close();
  });
  expected += 5;
  // Random binary (no digits, so no line can pass for a number by chance).
  clients.emplace_back([&] {
    std::mt19937 random(7);
    std::string noise(4 << 20, '\0');
    for (char& c : noise) {
      c = static_cast<char>(random() & 0xff);
      if (c >= '0' && c <= '9') c = 'x';
    }
    TcpFeeder feeder(spec.listen_port);
    feeder.send(noise);
    feeder.close();
  });
  // A slow drip: one byte every 10 ms.
  clients.emplace_back([&] {
    TcpFeeder feeder(spec.listen_port);
    for (char c : std::string("12345\n")) {
      feeder.send(std::string_view(&c, 1));
      std::this_thread::sleep_for(10ms);
    }
    feeder.close();
  });
  expected += 12345;
  // The well-behaved client.
  clients.emplace_back([&] {
    for (int round = 0; round < 10; ++round) {
      std::string text;
      for (int v = 1; v <= 100; ++v) text += std::to_string(v) + "\n";
      send_all(spec.listen_port, text);
      std::this_thread::sleep_for(50ms);
    }
  });
  expected += 10 * 5050;
  for (auto& c : clients) c.join();

  const auto rss_kib = memory_kib(daemon.pid());
  INFO("daemon RSS " << rss_kib << " KiB with " << idle.size() << " idle connections");
  CHECK(rss_kib > 0);
  CHECK(rss_kib < 256 * 1024);

  const bool landed = wait_until([&] { return window_totals(influx).sum == expected; }, hang_guard(), 100ms);
  INFO(daemon.log_text().substr(0, 20000));
  CHECK(landed);
  for (int fd : idle) ::close(fd);
  CHECK(daemon.stop() == 0);
  const std::string log = daemon.log_text();
  CHECK(log.find("longer than max_line_bytes") != std::string::npos);
  CHECK(log.find("rejected a line from") != std::string::npos);
}
