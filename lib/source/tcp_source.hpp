// TcpSource: accepts TCP connections on one address and hands their bytes to decoders.
//
// Each connection is one coroutine reading large chunks into its own Decoder (made by the
// pipeline's DecoderFactory). Rejected lines are counted by reason; the first one on a connection
// is logged with its peer and reason, the rest only counted. listen() throws std::runtime_error
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
#include "source/decoder.hpp"
#include "source/source.hpp"

namespace spdlog {
class logger;
}

namespace tumbled::source {

class TcpSource final : public Source {
 public:
  TcpSource(boost::asio::any_io_executor executor, config::Endpoint listen,
            std::size_t max_connections, config::Millis idle_timeout, DecoderFactory decoders,
            std::shared_ptr<spdlog::logger> log);

  void listen() override;
  config::Endpoint local_endpoint() const override;
  boost::asio::awaitable<void> run() override;  // the accept loop; ends after stop()
  void stop() override;
  void pause() override;
  void resume() override;
  bool paused() const override { return paused_; }
  const SourceCounters& counters() const override { return counters_; }

 private:
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<void> close_idle_connections();
  bool admit();

  config::Endpoint listen_;
  std::size_t max_connections_;
  config::Millis idle_timeout_;
  DecoderFactory decoders_;
  std::shared_ptr<spdlog::logger> log_;
  boost::asio::ip::tcp::acceptor acceptor_;
  net::ConnectionTable connections_;
  boost::asio::steady_timer idle_timer_;
  SourceCounters counters_;
  boost::asio::steady_timer resume_signal_;  // paused readers wait on it; resume() cancels it
  bool paused_ = false;
  bool stopped_ = false;
  std::vector<char> read_buffer_;  // shared by all connections, see serve()
};

}  // namespace tumbled::source
