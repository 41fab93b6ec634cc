// LineFramer: turns a TCP byte stream into int64 values, one per newline-terminated line.
//
// A line is trimmed of ASCII whitespace (so "\r\n" endings work); an empty line is ignored; a line
// matching [+-]?[0-9]+ that fits int64 is a value; anything else is rejected, counted and skipped.
// A line longer than max_line_bytes (not counting its '\n') is discarded up to its newline, so the
// framer never holds more than max_line_bytes of a partial line whatever a client sends. Call
// finish() at end of stream: a last line without newline counts. Pure code, no I/O; one framer per
// connection, not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tumbled::source {

enum class LineKind { value, empty, not_integer, out_of_range };

// Classifies one line (without its '\n'); on LineKind::value stores the integer in `out`.
LineKind parse_line(std::string_view line, std::int64_t& out);

struct LineCounters {
  std::uint64_t accepted = 0;
  std::uint64_t empty = 0;
  std::uint64_t not_integer = 0;
  std::uint64_t out_of_range = 0;
  std::uint64_t too_long = 0;

  std::uint64_t rejected() const { return not_integer + out_of_range + too_long; }
  LineCounters& operator+=(const LineCounters& other);
};

class LineFramer {
 public:
  explicit LineFramer(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  // Feeds the next bytes of the stream; calls on_value(std::int64_t) for each accepted line.
  template <class OnValue>
  void feed(std::string_view bytes, OnValue&& on_value);

  // End of stream: a pending partial line is handled as if it ended with '\n'.
  template <class OnValue>
  void finish(OnValue&& on_value);

  const LineCounters& counters() const { return counters_; }
  // Bytes of an unterminated line held back; never exceeds max_line_bytes.
  std::size_t pending_bytes() const { return partial_.size(); }

 private:
  template <class OnValue>
  void handle(std::string_view line, OnValue& on_value);

  std::size_t max_line_bytes_;
  std::string partial_;      // start of a line whose '\n' has not arrived yet
  bool discarding_ = false;  // inside an over-long line: drop bytes up to the next '\n'
  LineCounters counters_;
};

template <class OnValue>
void LineFramer::handle(std::string_view line, OnValue& on_value) {
  std::int64_t value = 0;
  switch (parse_line(line, value)) {
    case LineKind::value:
      ++counters_.accepted;
      on_value(value);
      break;
    case LineKind::empty: ++counters_.empty; break;
    case LineKind::not_integer: ++counters_.not_integer; break;
    case LineKind::out_of_range: ++counters_.out_of_range; break;
  }
}

template <class OnValue>
void LineFramer::feed(std::string_view bytes, OnValue&& on_value) {
  while (!bytes.empty()) {
    const auto* newline = static_cast<const char*>(std::memchr(bytes.data(), '\n', bytes.size()));
    if (newline == nullptr) {
      if (discarding_) return;
      if (partial_.size() + bytes.size() > max_line_bytes_) {
        // Counted now, at the moment we know, so a client that never sends '\n' is visible.
        ++counters_.too_long;
        discarding_ = true;
        partial_.clear();
        return;
      }
      partial_.append(bytes);
      return;
    }
    const std::string_view line = bytes.substr(0, static_cast<std::size_t>(newline - bytes.data()));
    bytes.remove_prefix(line.size() + 1);
    if (discarding_) {
      discarding_ = false;
    } else if (!partial_.empty()) {
      if (partial_.size() + line.size() > max_line_bytes_) {
        ++counters_.too_long;
      } else {
        partial_.append(line);
        handle(partial_, on_value);
      }
      partial_.clear();
    } else if (line.size() > max_line_bytes_) {
      ++counters_.too_long;
    } else {
      handle(line, on_value);
    }
  }
}

template <class OnValue>
void LineFramer::finish(OnValue&& on_value) {
  if (!discarding_ && !partial_.empty()) handle(partial_, on_value);
  discarding_ = false;
  partial_.clear();
}

}  // namespace tumbled::source
