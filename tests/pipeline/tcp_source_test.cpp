// Component tests for source::TcpSource with reader threads (source.tcp.threads): real loopback
// connections, the source's io_context run on a thread of the test, integer decoders counting
// into per-reader totals that synchronize() hands over. Whatever the test asks of the source it
// asks on the source's executor (run_on), as the pipeline does.
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <catch2/catch.hpp>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "source/integer_decoder.hpp"
#include "source/tcp_source.hpp"
#include "support/process.hpp"
#include "support/tcp_feed.hpp"

namespace {

namespace asio = boost::asio;
using tumbled::source::IntegerDecoder;
using tumbled::source::StreamFormat;
using tumbled::source::TcpSource;
using namespace tumbled::test;

constexpr std::size_t kThreads = 3;

// A TcpSource with kThreads readers whose decoders sum what they read: reader r > 0 into
// pending[r], touched only on its thread and handed over into `total` by synchronize().
struct Readers {
  asio::io_context io;
  // run() ends with stop(); the test still asks things of the source after that.
  asio::executor_work_guard<asio::io_context::executor_type> keep_running{io.get_executor()};
  std::int64_t total = 0;                        // on io's thread
  std::array<std::int64_t, kThreads> pending{};  // [r]: on reader r's thread
  std::array<int, kThreads> streams{};           // [r]: decoders made on reader r
  std::array<std::vector<std::int64_t>, kThreads> values;
  std::ostringstream log_text;
  std::unique_ptr<TcpSource> source;
  std::future<void> running;
  std::thread runner;

  explicit Readers(std::size_t max_connections) {
    auto log = std::make_shared<spdlog::logger>(
        "tcp", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text));
    source = std::make_unique<TcpSource>(
        io.get_executor(), tumbled::config::Endpoint{"127.0.0.1", 0}, max_connections,
        tumbled::config::Millis(0), kThreads,
        [this](const StreamFormat& format) {
          const std::size_t r = format.reader;
          ++streams.at(r);
          return std::make_unique<IntegerDecoder>(64, values[r], [this, r](auto read) {
            for (const std::int64_t v : read) (r == 0 ? total : pending[r]) += v;
          });
        },
        [this](std::size_t r) -> std::function<void()> {
          const std::int64_t sum = std::exchange(pending[r], 0);
          return [this, sum] { total += sum; };
        },
        log);
    source->listen();
    running = asio::co_spawn(io, source->run(), asio::use_future);
    runner = std::thread([this] { io.run(); });
  }

  ~Readers() {
    if (runner.joinable()) stop();
  }

  // Runs `f` on the source's executor and returns what it returns.
  template <class F>
  auto run_on(F f) {
    return asio::co_spawn(
               io, [f]() -> asio::awaitable<decltype(f())> { co_return f(); }, asio::use_future)
        .get();
  }

  // total once the source has synchronized.
  std::int64_t synchronized_total() {
    return asio::co_spawn(
               io,
               [this]() -> asio::awaitable<std::int64_t> {
                 co_await source->synchronize();
                 co_return total;
               },
               asio::use_future)
        .get();
  }

  std::uint16_t port() {
    return run_on([this] { return source->local_endpoint().port; });
  }

  // As Pipeline::shutdown: stop, wait for every connection to end, then the source may go.
  void stop() {
    run_on([this] {
      source->stop();
      return 0;
    });
    running.get();
    CHECK(wait_until(
        [&] { return run_on([this] { return source->counters().connections_open; }) == 0; },
        hang_guard()));
    run_on([this] {
      source.reset();  // joins the reader threads
      return 0;
    });
    keep_running.reset();
    runner.join();
  }
};

std::string ones(int n) {
  std::string text;
  for (int i = 0; i < n; ++i) text += "1\n";
  return text;
}

}  // namespace

TEST_CASE(
    "TcpSource: connections are spread over the readers, synchronize() hands every value over",
    "[tcp_source]") {
  Readers readers(16);
  const std::uint16_t port = readers.port();
  std::vector<std::unique_ptr<TcpFeeder>> senders;
  for (int i = 0; i < 6; ++i) senders.push_back(std::make_unique<TcpFeeder>(port));
  std::int64_t sent = 0;
  for (int round = 0; round < 20; ++round) {
    for (auto& sender : senders) {
      sender->send(ones(1000));
      sent += 1000;
    }
  }
  // Some connections end before the others; the rest stay open until the source stops.
  senders[0]->close();
  senders[3]->close();
  CHECK(wait_until([&] { return readers.synchronized_total() == sent; }, hang_guard()));

  // Six connections over three readers, two each (the fewest first).
  for (std::size_t r = 0; r < kThreads; ++r) CHECK(readers.streams[r] == 2);
  const auto counters = readers.run_on([&] { return readers.source->counters(); });
  CHECK(counters.lines.accepted == static_cast<std::uint64_t>(sent));
  CHECK(counters.connections_accepted == 6);
  CHECK(counters.connections_open == 4);
  readers.stop();
}

TEST_CASE("TcpSource: at max_connections the newcomer's reader refuses it, and says so",
          "[tcp_source]") {
  Readers readers(2);
  const std::uint16_t port = readers.port();
  TcpFeeder first(port), second(port);
  first.send("1\n");
  second.send("2\n");
  REQUIRE(wait_until([&] { return readers.synchronized_total() == 3; }, hang_guard()));

  // Both are busy (not silent for 10 s): the third is refused, whichever reader it went to.
  TcpFeeder third(port);
  CHECK(wait_until(
      [&] {
        readers.synchronized_total();
        return readers.run_on([&] { return readers.source->counters().connections_refused; }) == 1;
      },
      hang_guard()));
  CHECK(readers.log_text.str().find("refusing more") != std::string::npos);
  first.send("10\n");
  CHECK(wait_until([&] { return readers.synchronized_total() == 13; }, hang_guard()));
  readers.stop();
}
