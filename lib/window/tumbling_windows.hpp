// Processing-time tumbling windows aligned to the Unix epoch, and the aggregates they emit.
//
// A value received at wall time t (ms) belongs to [floor(t/size)*size, +size). Windows are kept
// open until close_due(now) is called with now >= their end; each closed non-empty window is
// returned once, oldest first. If the wall clock steps backwards behind a window already closed,
// values go to the oldest window still open instead of re-opening (and re-emitting) a closed one.
// The sum accumulates in 128 bits, so it is exact for any realistic input; window_fields() reports
// a sum outside int64 as saturated (see there). Pure code, no I/O, not thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "sink/line_protocol.hpp"

namespace tumbled::window {

using TimeMs = std::int64_t;  // Unix epoch milliseconds
using Aggregate = config::Aggregate;
__extension__ using Int128 = __int128;  // g++ and clang both have it; -Wpedantic needs telling
__extension__ using UInt128 = unsigned __int128;

struct WindowAccumulator {
  Int128 sum = 0;
  std::int64_t count = 0;
  std::int64_t min = std::numeric_limits<std::int64_t>::max();
  std::int64_t max = std::numeric_limits<std::int64_t>::min();

  void add(std::int64_t value) {
    sum += value;
    ++count;
    if (value < min) min = value;
    if (value > max) max = value;
  }
  void merge(const WindowAccumulator& other);
  bool empty() const { return count == 0; }
  bool operator==(const WindowAccumulator&) const = default;
};

struct ClosedWindow {
  TimeMs start = 0;
  TimeMs end = 0;
  WindowAccumulator totals;
};

class TumblingWindows {
 public:
  explicit TumblingWindows(TimeMs size_ms);

  TimeMs size() const { return size_; }
  TimeMs start_of(TimeMs t) const;  // floor(t/size)*size, correct for negative t

  // The accumulator of the window that a value received at `now` belongs to. The reference stays
  // valid until the next close_due(); callers on a hot path fetch it once per batch of values.
  WindowAccumulator& accumulator_at(TimeMs now);
  void add(TimeMs now, std::int64_t value) { accumulator_at(now).add(value); }

  // Removes and returns every window whose end <= now, oldest first; empty windows are dropped.
  std::vector<ClosedWindow> close_due(TimeMs now);
  // End of the oldest open window, if any.
  std::optional<TimeMs> next_end() const;

  // A reader thread's share (source.tcp.threads): take_open() empties these windows and returns
  // them; merge() folds such windows in, a window already closed here into the oldest open one,
  // as for a clock stepped back.
  std::map<TimeMs, WindowAccumulator> take_open() { return std::exchange(open_, {}); }
  void merge(const std::map<TimeMs, WindowAccumulator>& windows);

  // For checkpoints: the open windows by start time, and putting one back at startup.
  const std::map<TimeMs, WindowAccumulator>& open_windows() const { return open_; }
  void restore(TimeMs start, const WindowAccumulator& totals);

 private:
  TimeMs size_;
  std::map<TimeMs, WindowAccumulator> open_;
  TimeMs closed_through_ = std::numeric_limits<TimeMs>::min();  // end of the last closed window
};

// The fields a closed window emits, in the configured order. sum and min/max/count are integers,
// mean a float. A sum outside int64 is clamped to the nearest bound and an extra boolean field
// `sum_saturated=true` is added, so the point is still written and the overflow is visible in the
// data itself rather than wrapping silently; `saturated` tells the caller to count and log it.
std::vector<sink::Field> window_fields(const WindowAccumulator& totals,
                                       const std::vector<Aggregate>& aggregates, bool& saturated);

}  // namespace tumbled::window
