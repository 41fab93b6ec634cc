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

#include "source/integer_lines.hpp"

namespace tumbled::source {

enum class LineKind { value, empty, not_integer, out_of_range };

// Classifies one line (without its '\n'); on LineKind::value stores the integer in `out`.
LineKind parse_line(std::string_view line, std::int64_t& out);

// Why a line was rejected, for the counters and the first-rejection log of a connection.
enum class Rejection : std::uint8_t {
  none,
  not_integer,        // integers: not [+-]?[0-9]+
  out_of_range,       // an integer outside int64 (line protocol: a `u` value above int64, or
                      // a window end outside the times InfluxDB can store)
  too_long,           // longer than max_line_bytes
  bad_line,           // line protocol that does not parse
  no_numeric_field,   // line protocol without any of the selected numeric fields
  type_conflict,      // a field whose type differs from the first value accepted for it
  too_late,           // its window's allowed lateness has passed
  too_far_in_future,  // event time beyond the wall clock + window.max_future
  too_many_keys,      // a new (key, window) pair over window.max_keys
};
// Every reason, in the order of the enum (none excluded).
inline constexpr Rejection kRejections[] = {
    Rejection::not_integer, Rejection::out_of_range,      Rejection::too_long,
    Rejection::bad_line,    Rejection::no_numeric_field,  Rejection::type_conflict,
    Rejection::too_late,    Rejection::too_far_in_future, Rejection::too_many_keys,
};
// A short description: "not an integer", "too late", ...
const char* describe(Rejection reason);
// Its name in metrics: "not_integer", "too_late", ...
const char* name(Rejection reason);

struct LineCounters {
  std::uint64_t accepted = 0;
  std::uint64_t empty = 0;  // blank lines (and line-protocol comments): skipped, not rejected
  std::uint64_t not_integer = 0;
  std::uint64_t out_of_range = 0;
  std::uint64_t too_long = 0;
  std::uint64_t bad_line = 0;
  std::uint64_t no_numeric_field = 0;
  std::uint64_t type_conflict = 0;
  std::uint64_t too_late = 0;
  std::uint64_t too_far_in_future = 0;
  std::uint64_t too_many_keys = 0;

  // The counter of one reason (none: `accepted`).
  std::uint64_t& operator[](Rejection reason);
  std::uint64_t operator[](Rejection reason) const {
    return (*const_cast<LineCounters*>(this))[reason];
  }
  std::uint64_t rejected() const {
    std::uint64_t total = 0;
    for (const Rejection reason : kRejections) total += (*this)[reason];
    return total;
  }
  LineCounters& operator+=(const LineCounters& other);
  LineCounters& operator-=(const LineCounters& other);
};

// LineSplitter: the framing alone. Cuts a byte stream into lines at '\n' (the '\n' not included)
// and hands each to a callback; a line longer than max_line_bytes is discarded up to its newline
// and counted, so at most max_line_bytes of a partial line are ever held. Decoders of any line
// format build on it; LineFramer adds the integer fast path.
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  // Consumes `bytes` up to and including the first '\n' (all of them if there is none) and calls
  // on_line(std::string_view) if that completed a line; returns how many bytes it consumed.
  template <class OnLine>
  std::size_t feed_line(std::string_view bytes, OnLine&& on_line);
  // Every line of `bytes`.
  template <class OnLine>
  void feed(std::string_view bytes, OnLine&& on_line) {
    while (!bytes.empty()) bytes.remove_prefix(feed_line(bytes, on_line));
  }
  // End of stream: a pending partial line is handed over as if it ended with '\n'.
  template <class OnLine>
  void finish(OnLine&& on_line);

  // No partial or discarded line pending: the next byte starts a line.
  bool at_line_start() const { return partial_.empty() && !discarding_; }
  std::size_t max_line_bytes() const { return max_line_bytes_; }
  // Lines dropped for exceeding max_line_bytes.
  std::uint64_t too_long() const { return too_long_; }
  // Bytes of an unterminated line held back; never exceeds max_line_bytes.
  std::size_t pending_bytes() const { return partial_.size(); }

 private:
  std::size_t max_line_bytes_;
  std::string partial_;      // start of a line whose '\n' has not arrived yet
  bool discarding_ = false;  // inside an over-long line: drop bytes up to the next '\n'
  std::uint64_t too_long_ = 0;
};

template <class OnLine>
std::size_t LineSplitter::feed_line(std::string_view bytes, OnLine&& on_line) {
  const auto* newline = static_cast<const char*>(std::memchr(bytes.data(), '\n', bytes.size()));
  if (newline == nullptr) {
    if (discarding_) return bytes.size();
    if (partial_.size() + bytes.size() > max_line_bytes_) {
      // Counted now, at the moment we know, so a client that never sends '\n' is visible.
      ++too_long_;
      discarding_ = true;
      partial_.clear();
      return bytes.size();
    }
    partial_.append(bytes);
    return bytes.size();
  }
  const std::string_view line = bytes.substr(0, static_cast<std::size_t>(newline - bytes.data()));
  if (discarding_) {
    discarding_ = false;
  } else if (!partial_.empty()) {
    if (partial_.size() + line.size() > max_line_bytes_) {
      ++too_long_;
    } else {
      partial_.append(line);
      on_line(std::string_view(partial_));
    }
    partial_.clear();
  } else if (line.size() > max_line_bytes_) {
    ++too_long_;
  } else {
    on_line(line);
  }
  return line.size() + 1;
}

template <class OnLine>
void LineSplitter::finish(OnLine&& on_line) {
  if (!discarding_ && !partial_.empty()) on_line(std::string_view(partial_));
  discarding_ = false;
  partial_.clear();
}

class LineFramer {
 public:
  explicit LineFramer(std::size_t max_line_bytes) : splitter_(max_line_bytes) {}

  // Feeds the next bytes of the stream; calls on_value(std::int64_t) for each accepted line.
  template <class OnValue>
  void feed(std::string_view bytes, OnValue&& on_value);

  // End of stream: a pending partial line is handled as if it ended with '\n'.
  template <class OnValue>
  void finish(OnValue&& on_value) {
    splitter_.finish([&](std::string_view line) { handle(line, on_value); });
    counters_.too_long = splitter_.too_long();
  }

  const LineCounters& counters() const { return counters_; }
  // Bytes of an unterminated line held back; never exceeds max_line_bytes.
  std::size_t pending_bytes() const { return splitter_.pending_bytes(); }
  // The reason of the first line rejected since forget_first_rejection(); none if none was.
  Rejection first_rejection() const { return first_rejection_; }
  void forget_first_rejection() { first_rejection_ = Rejection::none; }

 private:
  void note(Rejection reason) {
    if (first_rejection_ == Rejection::none) first_rejection_ = reason;
  }

  template <class OnValue>
  void handle(std::string_view line, OnValue& on_value);
  template <class OnValue>
  std::size_t parse_plain_lines(std::string_view bytes, OnValue& on_value);

  // The fast path takes lines of a sign, up to 19 digits and '\r', so it only runs when such a
  // line can never exceed max_line_bytes.
  static constexpr std::size_t kFastLineBytes = integer_lines::kMaxPlainLine;

  LineSplitter splitter_;
  LineCounters counters_;
  Rejection first_rejection_ = Rejection::none;
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
    case LineKind::not_integer:
      ++counters_.not_integer;
      note(Rejection::not_integer);
      break;
    case LineKind::out_of_range:
      ++counters_.out_of_range;
      note(Rejection::out_of_range);
      break;
  }
}

// The common case, 8 digits and 64 bytes at a time (integer_lines.hpp): plain lines
// "[+-]?[0-9]{1,19}\r?\n" with a value inside int64. Stops at the first line that is anything else
// (spaces, empty, long numbers, out of range, garbage, a line cut by the end of the chunk) and
// returns how many bytes it consumed; feed() handles that line the general way and comes back.
template <class OnValue>
std::size_t LineFramer::parse_plain_lines(std::string_view bytes, OnValue& on_value) {
  std::uint64_t lines = 0;
  const char* const stop =
      integer_lines::parse_plain_lines(bytes.data(), bytes.data() + bytes.size(), on_value, lines);
  counters_.accepted += lines;
  return static_cast<std::size_t>(stop - bytes.data());
}

template <class OnValue>
void LineFramer::feed(std::string_view bytes, OnValue&& on_value) {
  const bool fast = splitter_.max_line_bytes() >= kFastLineBytes;
  const auto on_line = [&](std::string_view line) { handle(line, on_value); };
  while (!bytes.empty()) {
    if (fast && splitter_.at_line_start()) {
      bytes.remove_prefix(parse_plain_lines(bytes, on_value));
      if (bytes.empty()) break;
    }
    bytes.remove_prefix(splitter_.feed_line(bytes, on_line));
    if (splitter_.too_long() > counters_.too_long) {
      counters_.too_long = splitter_.too_long();
      note(Rejection::too_long);
    }
  }
}

}  // namespace tumbled::source
