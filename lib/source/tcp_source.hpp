// TcpSource: accepts TCP connections on one address and turns their bytes into int64 values.
//
// Each connection is one coroutine reading large chunks into a LineFramer; the values of a chunk
// are handed over together through `on_values`, so the window stage reads the clock once per
// chunk rather than once per value. Rejected lines are counted by reason; the first one on a
// connection is logged with its peer, the rest only counted. listen() throws std::runtime_error
// naming the address when it cannot bind (startup); stop() closes the listener and every
// connection. Connections beyond max_connections are accepted and closed at once, and counted.
// pause() stops reading every connection (the kernel's buffers fill and TCP pushes back on the
// senders) until resume(); the pipeline pauses when its buffer is full or its checkpoints fail.
// Runs on one executor; all members are called from it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "config/config.hpp"
#include "source/line_framer.hpp"

namespace spdlog {
class logger;
}

namespace tumbled::source {

struct SourceCounters {
  LineCounters lines;
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_open = 0;
  std::uint64_t connections_refused = 0;  // over max_connections
  std::uint64_t pauses = 0;               // times reading stopped for backpressure
};

// Resolves `address`, binds `acceptor` to it and listens; throws std::runtime_error naming the
// address and `what` (the config key) on failure. Shared by every listener of the daemon.
void listen_on(boost::asio::ip::tcp::acceptor& acceptor, const config::Endpoint& address,
               std::string_view what);

using ServeFn = std::function<boost::asio::awaitable<void>(boost::asio::ip::tcp::socket)>;

// Accepts on `acceptor` until `stopped` turns true. Each socket `admit()` allows is served by its
// own coroutine (an exception it throws is logged); one it refuses (it counts and logs why) is
// closed at once. Accept errors (typically EMFILE) pause 100 ms, so existing connections keep
// being served. `what` names the listener in logs. Shared by every listener of the daemon.
boost::asio::awaitable<void> accept_connections(boost::asio::ip::tcp::acceptor& acceptor,
                                                const bool& stopped, std::function<bool()> admit,
                                                ServeFn serve, std::shared_ptr<spdlog::logger> log,
                                                std::string what);

class TcpSource {
 public:
  using OnValues = std::function<void(std::span<const std::int64_t>)>;

  TcpSource(boost::asio::any_io_executor executor, config::Endpoint listen,
            std::size_t max_line_bytes, std::size_t max_connections, OnValues on_values,
            std::shared_ptr<spdlog::logger> log);

  void listen();
  config::Endpoint local_endpoint() const;
  boost::asio::awaitable<void> run();  // the accept loop; ends after stop()
  void stop();
  void pause();
  void resume();
  bool paused() const { return paused_; }
  const SourceCounters& counters() const { return counters_; }

 private:
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

  config::Endpoint listen_;
  std::size_t max_line_bytes_;
  std::size_t max_connections_;
  OnValues on_values_;
  std::shared_ptr<spdlog::logger> log_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unordered_set<boost::asio::ip::tcp::socket*> connections_;
  SourceCounters counters_;
  boost::asio::steady_timer resume_signal_;  // paused readers wait on it; resume() cancels it
  bool paused_ = false;
  bool stopped_ = false;
  std::vector<char> read_buffer_;     // shared by all connections, see serve()
  std::vector<std::int64_t> values_;  // the values of one read
};

}  // namespace tumbled::source
