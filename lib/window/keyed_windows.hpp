// KeyedWindows: tumbling windows per key over records, on event or processing time. Pure code,
// no I/O, driven by events (a line in, time advanced, points emitted, checkpoint saved), so every
// rule below is table-tested on simulated time (tests/window/keyed_windows_test.cpp).
//
// Key. A line's key is its measurement (or point.measurement) plus the values of the
// window.group_by tags it carries, in any order; a missing tag is simply absent, as in
// InfluxDB's GROUP BY; other tags never reach the output. Keys are interned: the key's text is
// the escaped `measurement,tag=value,...` prefix of the points it emits (static point.tags
// merged in, sorted), held once however many windows the key is open in.
//
// Time. processing: a line belongs to the window of `now` and the watermark is `now` (never
// moving back: if the wall clock steps back, lines go to the oldest window still open).
// event: to the window of its timestamp (in `precision`; none: `now`). The watermark is the
// newest event time seen minus max_out_of_orderness, and never moves back; with no line for
// idle_timeout it follows the wall clock (now - max_out_of_orderness), so the last windows close.
// An event time beyond now + max_future is rejected (too_far_in_future); one whose window would
// end outside the times InfluxDB can store (int64 nanoseconds) is rejected as out_of_range.
//
// Windows. [s, e) is emitted when the watermark reaches e: one point per key, fields
// `<field>_<aggregate>`, timestamp e in ms. Until the watermark reaches e + allowed_lateness the
// window stays open: a value for it updates it and the whole point is emitted again (same
// series and time: InfluxDB overwrites it). After that the window is dropped; values for it are
// rejected (too_late) and never change data.
//
// Fields. Numeric fields only (integers, unsigned integers up to int64, floats; strings and
// booleans are ignored), all of them or window.fields. A field's type is fixed per output
// measurement and field by the first value accepted for it; a line with a value of the other
// type is rejected whole (type_conflict), as InfluxDB would refuse the point. Integers sum in
// 128 bits; a sum outside int64 is written clamped with `<field>_sum_saturated=true`. Floats
// aggregate as doubles; mean is a float and count an integer in both.
//
// Bounds. At most max_keys open (key, window) pairs: a line for a new pair beyond that is
// rejected (too_many_keys) while existing pairs keep aggregating, and its time still moves the
// watermark, so the windows that hold the pairs close; at most max_keys field types, and at
// most kFieldsPerPair × max_keys field aggregates in all (a line opening more is rejected the
// same way), so many field names per key cannot grow memory either.
// Memory follows the open pairs, whatever the input.
//
// Checkpoints. changes() lists what changed since the last saved checkpoint (pairs written to,
// windows dropped, new field types, the watermark), so a checkpoint costs O(pairs changed), and
// encodes each pair for the store; saved() marks them saved. restore_*() rebuild the state at
// startup. A restored window the watermark has passed is emitted again at the first emit():
// the points are the same, and InfluxDB overwrites them.
// Not thread-safe.
#pragma once

#include <algorithm>
#include <boost/container/small_vector.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "source/line_framer.hpp"
#include "source/line_protocol_parser.hpp"

namespace tumbled::window {

using TimeMs = std::int64_t;  // Unix epoch milliseconds

using source::Precision;

struct KeyedSettings {
  TimeMs size_ms = 10'000;
  bool event_time = false;
  Precision precision = Precision::ns;  // of line-protocol timestamps
  TimeMs max_out_of_orderness_ms = 0;
  TimeMs allowed_lateness_ms = 0;
  TimeMs idle_timeout_ms = 0;  // 0: the watermark never follows the wall clock
  TimeMs max_future_ms = 60'000;
  std::vector<std::string> group_by;
  std::vector<std::string> fields;  // empty: every numeric field
  std::vector<config::Aggregate> aggregates{config::Aggregate::sum};
  std::string measurement;  // "": each line's own
  std::map<std::string, std::string> tags;
  std::size_t max_keys = 1'000'000;

  static KeyedSettings from(const config::PipelineConfig& pipeline);
};

// What changed since the last saved checkpoint, for the store.
struct KeyedChanges {
  struct Pair {
    TimeMs start;
    std::string_view key;  // the key's text; valid until the next add() or emit()
    std::string value;     // the pair's aggregates, encoded (restore_pair reads it back)
  };
  struct FieldType {
    std::string_view measurement;
    std::string_view field;
    bool is_float;
  };
  std::vector<Pair> pairs;
  std::vector<TimeMs> dropped_windows;  // every pair of these windows is gone
  std::vector<FieldType> field_types;   // fixed since the last checkpoint
  TimeMs watermark;
  TimeMs newest_event;
};

struct KeyedCounters {
  std::uint64_t points_emitted = 0;   // first emission of a (key, window)
  std::uint64_t points_updated = 0;   // emitted again after a late value
  std::uint64_t sums_saturated = 0;   // points written with a clamped sum
  std::uint64_t windows_dropped = 0;  // windows whose lateness passed
};

// Field aggregates allowed per open pair on average (see Bounds above).
inline constexpr std::size_t kFieldsPerPair = 16;

class KeyedWindows {
  // libstdc++'s string hash reads 8 bytes at a time; boost::hash's is several times slower on
  // the key texts hashed for every line, and the flat maps mix any hash's bits themselves.
  struct TextHash {
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };

 public:
  explicit KeyedWindows(KeyedSettings settings);

  // One parsed line read at wall time `now`: aggregates it, or says why not (nothing changes).
  source::Rejection add(const source::ParsedLine& line, TimeMs now);
  // The same for a line whose timestamp is in `precision` rather than the pipeline's (an HTTP
  // write request says its own).
  source::Rejection add(const source::ParsedLine& line, TimeMs now, Precision precision);
  // The wall clock: moves the watermark in processing time, and in event time after
  // idle_timeout without a line.
  void advance(TimeMs now);
  // The input is not idle at `now` although no line arrived: the pipeline stopped reading it
  // (backpressure), and lines may wait unread. Without this the watermark would follow the wall
  // clock past windows those lines belong to, and they would be rejected as too late.
  void not_idle(TimeMs now) { last_line_at_ = last_line_at_ ? std::max(*last_line_at_, now) : now; }
  // Hands `on_point` one line-protocol point (with '\n') per (key, window) due: windows the
  // watermark has reached, with values not emitted yet, oldest window first; then drops the
  // windows whose lateness has passed. Returns the number of points.
  std::size_t emit(const std::function<void(std::string&& point)>& on_point) {
    return emit_by_window([&on_point](TimeMs, std::string&& point) { on_point(std::move(point)); });
  }
  // The same, with the start of each point's window.
  std::size_t emit_by_window(
      const std::function<void(TimeMs start, std::string&& point)>& on_point);
  // The same, appending the points to `out`.
  std::size_t emit(std::string& out) {
    return emit([&out](std::string&& point) { out += point; });
  }

  KeyedChanges changes() const;
  void saved();  // the latest changes() are in the store

  void restore_time(TimeMs watermark, TimeMs newest_event);
  void restore_field_type(std::string_view measurement, std::string_view field, bool is_float);
  // False if `value` is not what changes() encodes (a corrupt store).
  bool restore_pair(TimeMs start, std::string_view key, std::string_view value);

  TimeMs watermark() const { return watermark_; }
  TimeMs newest_event() const { return newest_event_; }
  // The window the latest accepted line went to.
  TimeMs last_start() const { return last_start_; }
  // The oldest window still open (emitted or not), if any: older ones are dropped for good.
  std::optional<TimeMs> oldest_open() const {
    return windows_.empty() ? std::nullopt : std::optional(windows_.begin()->first);
  }
  std::size_t open_pairs() const { return open_pairs_; }
  std::size_t open_keys() const { return keys_.size(); }
  const KeyedSettings& settings() const { return settings_; }
  std::size_t open_windows() const { return windows_.size(); }
  const KeyedCounters& counters() const { return counters_; }
  TimeMs start_of(TimeMs t) const;

 private:
  // One numeric field of one (key, window). Integers: a 128-bit sum in (sum_high, sum_low);
  // floats: the sum, min and max are doubles stored bit for bit (std::bit_cast).
  struct FieldState {
    std::uint32_t type = 0;  // index into types_
    std::int64_t count = 0;
    std::uint64_t sum_low = 0;
    std::int64_t sum_high = 0;
    std::int64_t min = 0;
    std::int64_t max = 0;
  };
  struct PairState {
    boost::container::small_vector<FieldState, 1> fields;
    bool pending = true;   // changed since emitted (or never emitted)
    bool unsaved = true;   // changed since the last saved checkpoint
    bool emitted = false;  // emitted at least once: the next emission is an update
  };
  struct Window {
    boost::unordered_flat_map<std::uint32_t, PairState> pairs;  // by key id
    std::size_t pending = 0;                                    // pairs with pending set
  };
  struct FieldType {
    std::string measurement;
    std::string field;
    std::string output_name;  // the escaped field key, for `<name>_<aggregate>`
    bool is_float;
  };
  struct Selected {  // a numeric field of the line being added
    std::uint32_t type;
    const source::ParsedField* value;
  };

  std::optional<std::uint32_t> find_or_add_type(std::string_view measurement,
                                                std::string_view field, bool is_float, bool& added);
  std::uint32_t intern_key(std::string_view text);
  void release_key(std::uint32_t id);
  void build_key(std::string_view measurement, const source::ParsedLine& line);
  PairState* pair_for(TimeMs start, std::uint32_t key, bool& created);
  void emit_pair(std::string& out, std::uint32_t key, PairState& pair, TimeMs end);
  TimeMs event_time_of(const source::ParsedLine& line, TimeMs now, Precision precision) const;
  void see(TimeMs t, TimeMs now);  // a line of time t read at now: the watermark moves

  KeyedSettings settings_;
  std::vector<std::string> group_by_sorted_;
  std::vector<std::pair<std::string, std::string>> static_tags_;  // escaped, sorted

  std::map<TimeMs, Window> windows_;  // by start
  std::size_t open_pairs_ = 0;
  std::size_t open_fields_ = 0;  // field aggregates of all open pairs

  // Interned keys: text by id (a deque keeps each string in place, so the map's views hold),
  // how many open pairs use each id, and the free ids for reuse.
  std::deque<std::string> key_text_;
  std::vector<std::uint32_t> key_uses_;
  std::vector<std::uint32_t> free_key_ids_;
  boost::unordered_flat_map<std::string_view, std::uint32_t, TextHash> keys_;

  std::deque<FieldType> types_;
  boost::unordered_flat_map<std::string, std::uint32_t, TextHash> type_ids_;  // by type_name()
  std::vector<std::uint32_t> unsaved_types_;

  std::vector<std::pair<TimeMs, std::uint32_t>> unsaved_pairs_;
  std::vector<TimeMs> dropped_windows_;

  TimeMs watermark_;
  TimeMs newest_event_;
  std::optional<TimeMs> last_line_at_;  // wall time of the latest line (or of the start)
  TimeMs last_start_ = 0;

  std::string key_scratch_;
  std::vector<Selected> selected_scratch_;
  KeyedCounters counters_;
};

}  // namespace tumbled::window
