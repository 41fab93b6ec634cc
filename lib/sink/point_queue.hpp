// PointQueue: encoded points waiting for InfluxDB, in emission order, and the batching decision.
//
// Each point gets a sequence number when pushed. A point may be sent only once it is durable
// (checkpointed: mark_durable_through), so a point that InfluxDB has seen can never be replaced
// after a crash by an older, smaller version of the same window. A batch is due when batch_size
// durable points wait, or when the oldest durable point has waited batch_interval, or always when
// flushing; how many points it takes is SendPlan's decision (batch_points() measures them).
// ack(n) removes the n oldest points after InfluxDB accepted them. Pure code.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace tumbled::sink {

using TimeMs =
    std::int64_t;  // a monotonic or wall clock in ms; the caller picks one and sticks to it

struct QueuedPoint {
  std::uint64_t seq = 0;
  TimeMs queued_at = 0;
  std::string line;  // one line-protocol point, '\n'-terminated
};

class PointQueue {
 public:
  // Appends a newly emitted point; returns its sequence number.
  std::uint64_t push(std::string line, TimeMs now);
  // Puts back a point replayed from the state store at startup. Replayed points count as long
  // overdue, so they go out at once; their sequence numbers must increase.
  void restore(std::uint64_t seq, std::string line);

  void mark_durable_through(std::uint64_t seq) { durable_through_ = seq; }
  // At startup: never hand out a sequence number below `seq` (numbers are never reused).
  void skip_to_seq(std::uint64_t seq) { next_seq_ = std::max(next_seq_, seq); }

  // When the next batch becomes due (possibly in the past), or nullopt if nothing sendable waits.
  std::optional<TimeMs> batch_due_at(std::size_t batch_size, TimeMs batch_interval) const;

  // The oldest sendable points, at most batch_size, concatenated as one request body.
  struct Batch {
    std::string body;
    std::size_t points = 0;
    std::uint64_t last_seq = 0;
  };
  Batch front_batch(std::size_t batch_size) const;
  // How many of the oldest sendable points one batch takes: as many as wait, at most `at_most`,
  // and beyond the first `at_least` only while their lines add up to at most `max_bytes`. The first
  // `at_least` are never cut, however long their lines.
  std::size_t batch_points(std::size_t at_least, std::size_t at_most, std::size_t max_bytes) const;
  void ack(std::size_t points);
  // Removes every point with seq <= last_seq: safe even if points were dropped meanwhile.
  void ack_through(std::uint64_t last_seq);
  // Removes the points with these sequence numbers (any order), wherever they wait; returns how
  // many were found. A batch being written may hold some: ack_through() still settles it.
  std::size_t remove(std::vector<std::uint64_t> seqs);
  // Drops the oldest point (buffer full, when_full: drop_oldest); the caller counts it.
  void drop_oldest() { points_.pop_front(); }

  std::size_t size() const { return points_.size(); }
  bool empty() const { return points_.empty(); }
  std::size_t sendable() const;
  std::uint64_t next_seq() const { return next_seq_; }
  // Every point with seq below this has been acknowledged by InfluxDB.
  std::uint64_t acked_below() const { return points_.empty() ? next_seq_ : points_.front().seq; }
  const std::deque<QueuedPoint>& points() const { return points_; }

 private:
  std::deque<QueuedPoint> points_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t durable_through_ = 0;
};

}  // namespace tumbled::sink
