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
//
// Readers (source.tcp.threads): connections are read by `threads` readers. Reader 0 runs on the
// pipeline's executor; each other one on a thread and io_context of its own, with its own
// connection table, read buffer and counters, so that no value crosses a lock or an atomic. The
// accept loop runs on the pipeline's executor and gives each newcomer to the reader with the
// fewest connections; at max_connections, to the reader with the most, which closes its own
// connection silent longest (or the newcomer). Decoders of reader r are made with
// StreamFormat::reader = r; synchronize() asks each thread for its share (ReaderHandOver) and its
// counters, in turn. counters() are those of reader 0 live, the others' as of the last
// synchronize(); connections_open is always live. The public members are called from the
// pipeline's executor only; the destructor joins the reader threads.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "source/decoder.hpp"
#include "source/source.hpp"

namespace spdlog {
class logger;
}

namespace tumbled::source {

class TcpSource final : public Source {
 public:
  // `threads` >= 1; with more than one, `hand_over` takes each reader thread's share.
  TcpSource(boost::asio::any_io_executor executor, config::Endpoint listen,
            std::size_t max_connections, config::Millis idle_timeout, std::size_t threads,
            DecoderFactory decoders, ReaderHandOver hand_over, std::shared_ptr<spdlog::logger> log);
  ~TcpSource() override;

  void listen() override;  // binds, then starts the reader threads
  config::Endpoint local_endpoint() const override;
  boost::asio::awaitable<void> run() override;  // the accept loop; ends after stop()
  void stop() override;
  void pause() override;
  void resume() override;
  bool paused() const override { return paused_; }
  const SourceCounters& counters() const override;
  boost::asio::awaitable<void> synchronize() override;

 private:
  class Reader;

  boost::asio::awaitable<void> hand_off(boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<void> close_idle_connections();
  // On the pipeline's executor, when a connection given to `reader` has ended.
  void ended(std::size_t reader);
  template <class Action>
  void on_each_reader(Action action);

  boost::asio::any_io_executor executor_;
  config::Endpoint listen_;
  std::size_t max_connections_;
  config::Millis idle_timeout_;
  DecoderFactory decoders_;
  ReaderHandOver hand_over_;
  std::shared_ptr<spdlog::logger> log_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer idle_timer_;
  std::vector<std::unique_ptr<Reader>> readers_;
  std::vector<std::size_t> open_;  // connections given to each reader and not ended yet
  std::size_t open_total_ = 0;
  std::size_t next_reader_ = 0;  // where the search for the next newcomer's reader starts
  // The other readers' counters (reader r at r - 1), as of the last synchronize().
  std::vector<SourceCounters> reported_;
  std::uint64_t pauses_ = 0;
  std::uint64_t hand_off_failures_ = 0;  // accept loop (reader 0's connections included)
  mutable SourceCounters counters_;      // what counters() returns
  bool paused_ = false;
  bool stopped_ = false;
};

}  // namespace tumbled::source
