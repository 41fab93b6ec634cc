// Decoder: turns the bytes of one stream (one TCP connection, one request body, ...) into records
// for the pipeline, so any source can carry any input format.
//
// A source makes one decoder per stream from the pipeline's DecoderFactory, feeds it every chunk
// it reads and calls finish() at the end of the stream. The decoder frames lines (LineSplitter),
// decodes them and hands the records to the callback the pipeline gave its factory; it counts
// every line it accepted, skipped or rejected. Two formats: `integers` (integer_decoder.hpp, one
// int64 per line, on a one-pass fast path) and `line_protocol` (line_protocol_decoder.hpp).
// Pure code, no I/O; one decoder per stream, not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "source/line_framer.hpp"
#include "source/line_protocol_parser.hpp"

namespace tumbled::source {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // The next bytes of the stream: complete lines are decoded and handed over at once.
  virtual void feed(std::string_view bytes) = 0;
  // End of the stream: a last line without '\n' counts.
  virtual void finish() = 0;
  // Lines of this stream so far, by outcome.
  virtual const LineCounters& counters() const = 0;
  // Why the first line rejected in the latest chunk (feed or finish) was rejected, with its column
  // where there is one ("not valid line protocol: column 12: invalid number"); for a stream's
  // first-rejection log.
  virtual std::string last_rejection() const = 0;
};

// What one stream says about its own bytes (an HTTP write request's `precision`); unset: the
// pipeline's settings.
struct StreamFormat {
  std::optional<Precision> precision;
  // One whole request body, fed at once and then finished (HTTP): the pipeline reads its clock
  // once for it and keeps a note of the state decoding started from, for its input log.
  bool whole = false;
  // The Kafka partition the stream is (source.kafka): the pipeline keeps its windows apart.
  std::optional<std::int32_t> partition;
  // The source's thread reading the stream (source.tcp.threads): 0 is the pipeline's own; the
  // factory is called on that thread, and the decoder must touch only that thread's state.
  std::size_t reader = 0;
};

using DecoderFactory = std::function<std::unique_ptr<Decoder>(const StreamFormat&)>;

// Called on reader thread `reader` (>= 1) when the source synchronizes: takes what that thread's
// decoders have made since the last call and returns what folds it into the pipeline's state,
// run on the pipeline's executor (empty: nothing to fold).
using ReaderHandOver = std::function<std::function<void()>(std::size_t reader)>;

}  // namespace tumbled::source
