// TcpSource: accepts TCP connections on one address and turns their bytes into int64 values.
//
// Each connection is one coroutine reading large chunks into a LineFramer; the values of a chunk
// are handed over together through `on_values`, so the window stage reads the clock once per
// chunk rather than once per value. Rejected lines are counted by reason; the first one on a
// connection is logged with its peer, the rest only counted. listen() throws std::runtime_error
// naming the address when it cannot bind (startup); stop() closes the listener and every
// connection. A connection silent for idle_timeout is closed (checked every quarter of it; 0 =
// never). At max_connections a newcomer closes the connection silent longest if that one has
// been silent for 10 s or more, otherwise the newcomer is closed at once; both counted. While
// reading is paused no connection counts as silent.
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
#include <vector>

#include "config/config.hpp"
#include "net/listener.hpp"
#include "source/line_framer.hpp"

namespace spdlog {
class logger;
}

namespace tumbled::source {

struct SourceCounters {
  LineCounters lines;
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_open = 0;
  std::uint64_t connections_refused = 0;      // at max_connections, none silent for long
  std::uint64_t connections_evicted = 0;      // silent longest, closed to admit a newcomer
  std::uint64_t connections_idle_closed = 0;  // silent for idle_timeout
  std::uint64_t connection_failures = 0;      // an exception ended a connection (a bug; logged)
  std::uint64_t pauses = 0;                   // times reading stopped for backpressure
};

class TcpSource {
 public:
  using OnValues = std::function<void(std::span<const std::int64_t>)>;

  TcpSource(boost::asio::any_io_executor executor, config::Endpoint listen,
            std::size_t max_line_bytes, std::size_t max_connections, config::Millis idle_timeout,
            OnValues on_values, std::shared_ptr<spdlog::logger> log);

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
  boost::asio::awaitable<void> close_idle_connections();
  bool admit();

  config::Endpoint listen_;
  std::size_t max_line_bytes_;
  std::size_t max_connections_;
  config::Millis idle_timeout_;
  OnValues on_values_;
  std::shared_ptr<spdlog::logger> log_;
  boost::asio::ip::tcp::acceptor acceptor_;
  net::ConnectionTable connections_;
  boost::asio::steady_timer idle_timer_;
  SourceCounters counters_;
  boost::asio::steady_timer resume_signal_;  // paused readers wait on it; resume() cancels it
  bool paused_ = false;
  bool stopped_ = false;
  std::vector<char> read_buffer_;     // shared by all connections, see serve()
  std::vector<std::int64_t> values_;  // the values of one read
};

}  // namespace tumbled::source
