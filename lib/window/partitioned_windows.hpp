// PartitionedWindows: keyed windows per Kafka partition, and the offset from which a partition's
// results can be recomputed exactly (its resume point). Pure code, no I/O; table-tested on
// simulated offsets and acknowledgements (tests/window/partitioned_windows_test.cpp).
//
// Why per partition. Each assigned partition has a KeyedWindows of its own (own watermark), and
// every point it emits carries `partition_tag=<partition>` (unless the tag is ""), so a point is
// a pure function of one partition's records. Whichever instance reads a partition from the same
// resume point computes the same points, which overwrite their twins in InfluxDB.
//
// Resume point. The offset committed to Kafka for a partition is the first offset of the oldest
// window whose points InfluxDB has not acknowledged yet (open windows included), so re-reading
// from it rebuilds every such window whole. It travels with what re-reading needs to decide
// exactly as the first reading did: the watermark and newest event time just before that offset
// (so late lines are late again, and the same windows close at the same records), and `emit_from`,
// the start of the oldest window not known to be complete in InfluxDB: windows before it are
// re-aggregated from the records re-read but never emitted again, since a partial version of a
// written window would replace the whole one. A window is known complete once it has been dropped
// (its lateness passed) and its last point acknowledged, and only in window order, so that every
// window from emit_from on is still tracked with its first offset.
//
// What breaks determinism and is documented rather than prevented: processing time;
// window.idle_timeout (it moves a watermark by the wall clock); window.max_future (compared
// with the wall clock); max_keys overflow; a field whose type differs between records.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "window/keyed_windows.hpp"

namespace tumbled::window {

using Partition = std::int32_t;
using Offset = std::int64_t;

struct ResumePoint {
  Offset offset = 0;  // the next offset to read
  TimeMs watermark;
  TimeMs newest_event;
  TimeMs emit_from;  // windows starting before this are complete in InfluxDB
  bool operator==(const ResumePoint&) const = default;

  // The commit's metadata string ("tumbled/1 <watermark> <newest> <emit_from>"); the offset is
  // the commit's own.
  std::string metadata() const;
  // nullopt for metadata this format did not write (another consumer's commit, or none).
  static std::optional<ResumePoint> from(Offset offset, std::string_view metadata);
};

struct PartitionedCounters {
  std::uint64_t points_suppressed = 0;  // re-aggregated windows already complete in InfluxDB
};

class PartitionedWindows {
 public:
  // `partition_tag` "": points carry no partition tag (each key lives in one partition).
  PartitionedWindows(KeyedSettings settings, std::string partition_tag);

  // The partition is now read from `offset`; `resume` is the committed resume point (nullopt: a
  // fresh start at `offset`, e.g. no commit yet).
  void assign(Partition partition, Offset offset, const std::optional<ResumePoint>& resume);
  // Forgets the partition: its windows and the points it emitted that wait unacknowledged (their
  // sequence numbers are returned, so that the caller can drop them: the next owner recomputes
  // them).
  std::vector<std::uint64_t> revoke(Partition partition);
  bool assigned(Partition partition) const { return partitions_.count(partition) > 0; }
  std::vector<Partition> partitions() const;

  // One parsed line of the record at `offset` of `partition`, read at wall time `now`.
  source::Rejection add(Partition partition, Offset offset, const source::ParsedLine& line,
                        TimeMs now);
  // The record at `offset` has been handled whole (its lines added, or it had none): the
  // partition's position moves past it.
  void consumed(Partition partition, Offset offset);

  void advance(TimeMs now);
  void not_idle(TimeMs now);
  // Hands each due point to `on_point`, which queues it and returns its sequence number.
  std::size_t emit(const std::function<std::uint64_t(std::string&& point)>& on_point);
  // Every point with a sequence number below `seq` has been acknowledged by InfluxDB.
  void acknowledged_below(std::uint64_t seq);

  // Where each assigned partition may be resumed now.
  std::map<Partition, ResumePoint> resume_points() const;
  std::optional<ResumePoint> resume_point(Partition partition) const;

  std::size_t open_pairs() const;
  std::size_t open_windows() const;
  // The lowest watermark over assigned partitions (nullopt: none assigned).
  std::optional<TimeMs> watermark() const;
  KeyedCounters counters() const;  // over every partition this instance has held
  const PartitionedCounters& partitioned_counters() const { return counters_; }

 private:
  // A window of one partition not known to be complete in InfluxDB.
  struct Tracked {
    Offset first_offset;
    TimeMs watermark_before;
    TimeMs newest_before;
    std::uint64_t last_seq = 0;  // of its latest point; 0: none emitted yet
  };
  struct State {
    KeyedWindows windows;
    Offset position;  // the next offset to read (< 0: unknown until the first record)
    TimeMs emit_from;
    std::map<TimeMs, Tracked> tracked;  // by window start
    std::deque<std::uint64_t> unacked;  // sequence numbers of its points not acknowledged
    // The record whose lines are being added, and the time as it stood before its first line.
    Offset record_offset = -1;
    TimeMs record_watermark = 0;
    TimeMs record_newest = 0;
  };

  void release_complete(State& state);
  KeyedSettings settings_for(Partition partition) const;

  KeyedSettings settings_;
  std::string partition_tag_;
  std::map<Partition, State> partitions_;
  std::uint64_t acked_below_ = 0;
  KeyedCounters retired_;  // counters of partitions revoked
  PartitionedCounters counters_;
};

}  // namespace tumbled::window
