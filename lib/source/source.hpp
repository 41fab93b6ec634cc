// Source: where a pipeline's input comes from (TCP, or InfluxDB write requests over HTTP), behind
// one interface so that new sources plug into the pipeline without changing it.
//
// A source hands what it reads to decoders made by the pipeline's DecoderFactory (decoder.hpp),
// one per stream; the decoders hand records to the pipeline. Lifecycle: listen() once (throws
// std::runtime_error with a clear message when it cannot start: startup), then run() until
// stop(), which ends every stream. pause() stops reading (senders are pushed back by their
// transport, nothing accepted is lost) until resume(); the pipeline pauses its source while its
// buffer is full or checkpoints fail. Runs on the pipeline's executor; not thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "config/config.hpp"
#include "source/source_counters.hpp"

namespace tumbled::source {

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
  // Completes once every record read before the call is in the pipeline's state. Only a source
  // that reads on threads of its own (source.tcp.threads) has anything to do: each thread hands
  // its share over (ReaderHandOver, decoder.hpp) and its counters. The pipeline calls it before
  // it closes windows and before each checkpoint.
  virtual boost::asio::awaitable<void> synchronize() { co_return; }
  // Where clients reach it (the bound port when configured with port 0).
  virtual config::Endpoint local_endpoint() const = 0;
};

}  // namespace tumbled::source
