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
  template <class OnValue>
  std::size_t parse_plain_lines(std::string_view bytes, OnValue& on_value);

  // The fast path takes lines of an optional '-' and at most 18 digits (always inside int64),
  // so it only runs when such a line can never exceed max_line_bytes.
  static constexpr std::size_t kFastLineBytes = 20;

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

// The common case in one pass, without memchr or from_chars: "-?[0-9]{1,18}\n" lines, each value
// built while scanning for its newline. Stops at the first line that is anything else (spaces,
// '+', '\r', long numbers, garbage, a line cut by the end of the chunk) and returns how many
// bytes it consumed; feed() handles that line the general way and comes back.
template <class OnValue>
std::size_t LineFramer::parse_plain_lines(std::string_view bytes, OnValue& on_value) {
  const char* const begin = bytes.data();
  const char* const end = begin + bytes.size();
  const char* line = begin;
  while (line < end) {
    const char* p = line;
    const bool negative = *p == '-';
    p += negative;
    const char* const digits = p;
    std::uint64_t magnitude = 0;
    while (p < end && static_cast<unsigned char>(*p - '0') < 10) {
      magnitude = magnitude * 10 + static_cast<unsigned char>(*p - '0');
      ++p;
    }
    const auto count = p - digits;
    if (p == end || *p != '\n' || count == 0 || count > 18) break;
    ++counters_.accepted;
    const auto value = static_cast<std::int64_t>(magnitude);
    on_value(negative ? -value : value);
    line = p + 1;
  }
  return static_cast<std::size_t>(line - begin);
}

template <class OnValue>
void LineFramer::feed(std::string_view bytes, OnValue&& on_value) {
  while (!bytes.empty()) {
    if (partial_.empty() && !discarding_ && max_line_bytes_ >= kFastLineBytes) {
      const std::size_t used = parse_plain_lines(bytes, on_value);
      bytes.remove_prefix(used);
      if (bytes.empty()) return;
    }
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
