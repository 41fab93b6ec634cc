// Source: where a pipeline's input comes from (TCP today), behind one interface so that new
// sources plug into the pipeline without changing it.
//
// A source hands what it reads to decoders made by the pipeline's DecoderFactory (decoder.hpp),
// one per stream; the decoders hand records to the pipeline. Lifecycle: listen() once (throws
// std::runtime_error with a clear message when it cannot start: startup), then run() until
// stop(), which ends every stream. pause() stops reading (senders are pushed back by their
// transport, nothing accepted is lost) until resume(); the pipeline pauses its source while its
// buffer is full or checkpoints fail. Runs on the pipeline's executor; not thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>

#include "config/config.hpp"
#include "source/line_framer.hpp"

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

class Source {
 public:
  virtual ~Source() = default;
  virtual void listen() = 0;
  virtual boost::asio::awaitable<void> run() = 0;
  virtual void stop() = 0;
  virtual void pause() = 0;
  virtual void resume() = 0;
  virtual bool paused() const = 0;
  virtual const SourceCounters& counters() const = 0;
  // Where clients reach it (the bound port when configured with port 0).
  virtual config::Endpoint local_endpoint() const = 0;
};

}  // namespace tumbled::source
