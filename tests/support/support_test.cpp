// Self-tests for the test-support library: if these fail, every component
// and system test built on top of them is meaningless.
#include "support/fault_proxy.hpp"
#include "support/http_client.hpp"
#include "support/influxd.hpp"
#include "support/process.hpp"
#include "support/tcp_feed.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/system/system_error.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include <poll.h>

using namespace std::chrono_literals;
using namespace tumbled::test;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
using Mode = FaultProxy::Mode;

namespace {

// One influxd per test process: ctest runs every test case in its own
// process anyway, and start-up dominates the cost.
InfluxServer& influx() {
  static InfluxServer server;
  return server;
}

int ping(std::uint16_t port, std::chrono::milliseconds timeout = hang_guard()) {
  return http_request(http::verb::get, "127.0.0.1", port, "/ping", {}, {}, timeout).status;
}

// Accepts one connection and records everything it reads until EOF.
class RecordingServer {
 public:
  RecordingServer() : acceptor_(ioc_, {asio::ip::address_v4::loopback(), 0}) {
    thread_ = std::thread([this] {
      boost::system::error_code ec;
      tcp::socket socket(ioc_);
      acceptor_.accept(socket, ec);
      if (ec) return;
      std::array<char, 4096> buf;
      for (;;) {
        const auto n = socket.read_some(asio::buffer(buf), ec);
        const std::lock_guard lock(mutex_);
        data_.append(buf.data(), n);
        if (ec) {
          end_ = ec;
          return;
        }
      }
    });
  }
  ~RecordingServer() {
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // unblocks accept() if nobody came
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string data() const {
    const std::lock_guard lock(mutex_);
    return data_;
  }
  boost::system::error_code end() const {
    const std::lock_guard lock(mutex_);
    return end_;
  }

 private:
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::string data_;
  boost::system::error_code end_;
};

// What a read on a blocking socket ends with, once the peer acts; timed_out only if it does not
// within the hang guard.
boost::system::error_code read_outcome(tcp::socket& socket) {
  pollfd pfd{socket.native_handle(), POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(hang_guard().count())) != 1) return asio::error::timed_out;
  std::array<char, 64> buf;
  boost::system::error_code ec;
  socket.read_some(asio::buffer(buf), ec);
  return ec;
}

}  // namespace

TEST_CASE("ChildProcess reports exit codes, signals, env and output", "[support]") {
  TempDir dir;
  {
    ChildProcess child({"sh", "-c", "echo out-$TUMBLED_SELFTEST; echo err >&2; exit 3"},
                       dir.path() / "a.log", {{"TUMBLED_SELFTEST", "yes"}});
    CHECK(child.pid() > 0);
    CHECK(child.wait_for(hang_guard()) == 3);
    CHECK_FALSE(child.running());
    CHECK(child.log_text() == "out-yes\nerr\n");
  }
  {
    ChildProcess child({"sleep", "30"}, dir.path() / "b.log");
    CHECK(child.running());
    CHECK_FALSE(child.wait_for(50ms).has_value());  // ends by the child's doing: it sleeps 30 s
    child.signal(SIGTERM);
    CHECK(child.wait_for(hang_guard()) == 128 + SIGTERM);
  }
  CHECK_THROWS_AS(ChildProcess({"/nonexistent/binary"}, dir.path() / "c.log"), std::system_error);
}

TEST_CASE("TempDir and wait_until", "[support]") {
  std::filesystem::path kept;
  {
    TempDir dir;
    kept = dir.path();
    CHECK(std::filesystem::is_directory(kept));
    std::ofstream(kept / "sub.txt") << "x";
  }
  // TUMBLED_TEST_KEEP_TMP keeps it on purpose (tests/sanitize.sh sets it to read daemon logs).
  if (std::getenv("TUMBLED_TEST_KEEP_TMP") == nullptr) {
    CHECK_FALSE(std::filesystem::exists(kept));
  } else {
    CHECK(std::filesystem::exists(kept));
    std::filesystem::remove_all(kept);
  }

  int calls = 0;
  CHECK(wait_until([&] { return ++calls == 3; }, hang_guard(), 1ms));
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(wait_until([] { return false; }, 60ms));
  CHECK(std::chrono::steady_clock::now() - start >= 60ms);
  CHECK(free_port() != 0);
}

TEST_CASE("InfluxServer round-trips points", "[support]") {
  auto& server = influx();
  CHECK(server.url() == "http://127.0.0.1:" + std::to_string(server.port()));
  server.create_database("selftest");
  CHECK(server.write("selftest", "sums,src=a value=3i 1000\nsums,src=a value=5i 2000\n") == 204);

  const auto rows = server.series_values("selftest", "SELECT value FROM sums WHERE src = 'a'");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0][0].as_int64() == 1000);
  CHECK(rows[0][1].as_int64() == 3);
  CHECK(rows[1][0].as_int64() == 2000);
  CHECK(rows[1][1].as_int64() == 5);

  CHECK(server.series_values("selftest", "SELECT value FROM nothing_here").empty());
  CHECK_THROWS(server.series_values("no_such_db", "SELECT value FROM sums"));
  CHECK(server.write("selftest", "not line protocol") == 400);
  CHECK(server.log_text().find("Listening on HTTP") != std::string::npos);
}

TEST_CASE("FaultProxy relays HTTP to influxd in pass mode", "[support]") {
  FaultProxy proxy(influx().port());
  CHECK(ping(proxy.port()) == 204);
  CHECK(proxy.accepted_connections() == 1);
  CHECK(proxy.bytes_forwarded() > 0);
  CHECK(wait_until([&] { return proxy.open_connections() == 0; }, hang_guard()));
}

TEST_CASE("FaultProxy forwards half-closes, TcpFeeder interleaves", "[support]") {
  SECTION("send_all") {
    RecordingServer sink;
    FaultProxy proxy(sink.port());
    send_all(proxy.port(), "1\n2\n3\n");
    REQUIRE(wait_until([&] { return sink.end() == asio::error::eof; }, hang_guard()));
    CHECK(sink.data() == "1\n2\n3\n");
    CHECK(proxy.bytes_forwarded() == 6);
  }
  SECTION("TcpFeeder") {
    RecordingServer sink;
    TcpFeeder feeder(sink.port());
    feeder.send("10\n");
    CHECK(wait_until([&] { return sink.data() == "10\n"; }, hang_guard()));
    feeder.send("20\n");
    feeder.close();
    CHECK_FALSE(feeder.is_open());
    REQUIRE(wait_until([&] { return sink.end() == asio::error::eof; }, hang_guard()));
    CHECK(sink.data() == "10\n20\n");
  }
}

TEST_CASE("FaultProxy refuse closes the port, pass reopens the same one", "[support]") {
  FaultProxy proxy(influx().port());
  const auto port = proxy.port();
  asio::io_context ioc;
  tcp::socket idle(ioc);
  idle.connect({asio::ip::address_v4::loopback(), port});
  REQUIRE(wait_until([&] { return proxy.open_connections() == 1; }, hang_guard()));

  proxy.set_mode(Mode::refuse);
  CHECK(proxy.mode() == Mode::refuse);
  CHECK(read_outcome(idle) == asio::error::eof);  // existing connection closed
  try {
    ping(port);
    FAIL("connect through a refusing proxy succeeded");
  } catch (const boost::system::system_error& e) {
    CHECK(e.code() == asio::error::connection_refused);
  }

  CHECK_THROWS_AS(TcpFeeder(port), boost::system::system_error);

  proxy.set_mode(Mode::pass);
  CHECK(proxy.port() == port);
  CHECK(ping(port) == 204);

  FaultProxy born_refusing(influx().port(), Mode::refuse);
  CHECK_THROWS_AS(ping(born_refusing.port()), boost::system::system_error);
  born_refusing.set_mode(Mode::pass);
  CHECK(ping(born_refusing.port()) == 204);
}

TEST_CASE("FaultProxy blackhole makes requests time out", "[support]") {
  FaultProxy proxy(influx().port());
  proxy.set_mode(Mode::blackhole);
  const auto start = std::chrono::steady_clock::now();
  try {
    ping(proxy.port(), 300ms);  // times out by the peer's doing: it never answers
    FAIL("request through a black hole got an answer");
  } catch (const boost::system::system_error& e) {
    CHECK(e.code() == boost::beast::error::timeout);
  }
  CHECK(std::chrono::steady_clock::now() - start >= 300ms);
  CHECK(proxy.accepted_connections() == 1);
  CHECK(proxy.bytes_forwarded() == 0);

  proxy.set_mode(Mode::pass);
  CHECK(ping(proxy.port()) == 204);
}

TEST_CASE("FaultProxy cut and reset abort connections with RST", "[support]") {
  FaultProxy proxy(influx().port());
  asio::io_context ioc;
  tcp::socket open_connection(ioc);
  open_connection.connect({asio::ip::address_v4::loopback(), proxy.port()});
  REQUIRE(wait_until([&] { return proxy.open_connections() == 1; }, hang_guard()));

  proxy.cut();
  CHECK(read_outcome(open_connection) == asio::error::connection_reset);
  CHECK(proxy.mode() == Mode::pass);
  CHECK(ping(proxy.port()) == 204);  // cut is not sticky

  proxy.set_mode(Mode::reset);
  CHECK_THROWS_AS(ping(proxy.port()), boost::system::system_error);
  proxy.set_mode(Mode::pass);
  CHECK(ping(proxy.port()) == 204);
}

TEST_CASE("InfluxServer stop and start keep ports and data", "[support][.slow]") {
  InfluxServer server;
  server.create_database("restart");
  REQUIRE(server.write("restart", "m v=1i 1000") == 204);
  const auto port = server.port();
  server.stop();
  CHECK_FALSE(server.running());
  CHECK_THROWS_AS(ping(port), boost::system::system_error);  // refused
  server.start();
  CHECK(server.port() == port);
  CHECK(server.series_values("restart", "SELECT v FROM m").size() == 1);
}
