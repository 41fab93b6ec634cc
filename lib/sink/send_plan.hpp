// SendPlan: every decision of the InfluxDB writer, apart from the I/O that carries them out.
//
// BatchWriter (influx_writer.hpp) asks next_send() what to send and when, writes the batch, and
// reports the outcome to on_write(); the Step it gets back says what to do with the batch.
// A batch is due when batch_size points wait or the oldest has waited batch_interval. While more
// than batch_size points wait (a backlog, e.g. after an outage) it takes up to max_batch_size of
// them, growing past batch_size only while its body stays within max_batch_bytes (kMaxBatchBytes
// by default): InfluxDB takes several times more points per second in large batches, and fresh
// points, which never wait behind a backlog, still go out at batch_size or batch_interval. A
// max_batch_size below batch_size (the config refuses it) counts as batch_size.
// The outcomes:
//   ack          InfluxDB took it: remove its points from the queue.
//   split        refused with 400 or 413 (retry_policy.hpp): send it again at once in halves;
//                next_send() hands out pieces of half the size until the refused points stand
//                alone, then full batches again once the refused batch's last point is settled.
//                What InfluxDB accepted of a partial write is simply written again (same series
//                and timestamp: it overwrites itself).
//   retry        it may succeed later: send the same batch again after `delay`, the backoff
//                delay jittered into [d/2, d] by the caller's random number, or what Retry-After
//                asks if that is longer. Holding the queue behind it keeps the order.
//   dead_letter  InfluxDB will never take it (a reject status, a single point refused with 400 or
//                413, or retry.max_retries used up): hand it to the dead-letter store with
//                `reason`, then report the store's answer to on_dead_letter(), which answers
//                drop (stored: remove its points) or keep (the store failed: keep the batch and
//                try it again after max_backoff), so a bad point never blocks the pipeline and a
//                failing store never loses one.
// A Step also says what the operator should hear about (the writer words it): a retry episode
// once when it starts, then as a reminder at most every 30 s, then when it recovers; a dead
// letter at most once per 30 s; a split when it starts and ends. The plan keeps the counters
// (SinkCounters) too, since each one counts a decision. Time and randomness come from the
// caller, so every rule is tested without sockets, timers or sleeping (tests/sink/
// send_plan_test.cpp). Pure code, not thread-safe: one writer drives it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "sink/latency_histogram.hpp"
#include "sink/point_queue.hpp"
#include "sink/retry_policy.hpp"

namespace tumbled::sink {

// A batch grows past batch_size only while its line protocol stays within this many bytes, well
// under InfluxDB's default max-body-size (25 MB) and a reverse proxy's usual 1 MiB; batches of
// batch_size points or fewer are never cut. (The reference of sink.influxdb.max_batch_size in
// config.cpp says "1 MB".)
inline constexpr std::size_t kMaxBatchBytes = 1'000'000;

// How one write ended (InfluxClient::write).
struct WriteResult {
  int status = 0;     // HTTP status, 0 if no response arrived
  std::string error;  // transport error, or the start of InfluxDB's error body
  std::optional<std::chrono::milliseconds> retry_after = std::nullopt;  // server's Retry-After
  bool timed_out = false;  // no answer within request_timeout
};

struct SinkCounters {
  std::uint64_t batches_written = 0;
  std::uint64_t points_written = 0;
  std::uint64_t failed_attempts = 0;
  std::uint64_t batches_dead_lettered = 0;
  std::uint64_t points_dead_lettered = 0;
  std::uint64_t batches_split = 0;  // halvings to isolate points InfluxDB refused (400, 413)
  LatencyHistogram write_seconds;   // duration of every write request, whatever its outcome
  TimeMs last_success_ms = 0;       // `now` at the last acknowledged write; 0: none yet
  std::string last_failure;         // why the last write failed; "" once one succeeds again
};

class SendPlan {
 public:
  // The answer to "what now?": send the queue's front_batch(limit) now, or wait.
  struct Next {
    std::size_t limit = 0;         // > 0: send a batch of at most this many points now
    std::optional<TimeMs> due_at;  // limit == 0: when a batch becomes due; nullopt: none waits
  };

  // Whether the operator hears about a failed attempt that will be retried.
  enum class Failing {
    quiet,    // the episode has been reported less than 30 s ago
    started,  // the first failure of a retry episode
    still,    // a reminder: still failing, 30 s or more after the last line
  };

  // What to do with a batch after an attempt, and what to tell the operator about it.
  struct Step {
    enum class Action { ack, split, retry, dead_letter, drop, keep };
    Action action = Action::ack;
    std::chrono::milliseconds delay{0};  // retry, keep: wait this long before the next attempt
    std::string reason;          // dead_letter, drop, keep: why the batch is given up, with a hint
    std::string failure;         // what went wrong: "HTTP 500: {...}" or the transport error
    std::uint64_t failures = 0;  // failed attempts in the retry episode so far, this one included
    // To be logged, in this order (action keep: always log that the store failed, first):
    bool log_dead_letter = false;          // drop: the first dead letter in 30 s
    std::uint64_t recovered_after = 0;     // ack: > 0 when a retry episode of this many ended
    Failing log_failing = Failing::quiet;  // retry, keep after max_retries
    bool log_split_started = false;        // split: the first halving of a refused batch
    bool log_split_done = false;           // ack, drop: the refused batch is settled
  };

  // `settings` must outlive the plan, which reads it at each call (as the writer's client does);
  // only the backoff schedule (Backoff) is copied here.
  explicit SendPlan(const config::InfluxSinkConfig& settings,
                    std::size_t max_batch_bytes = kMaxBatchBytes);

  // Whether a batch is due at `now`, and how large it may be: up to batch_size points, up to
  // max_batch_size while more than batch_size wait (within max_batch_bytes), or the piece size
  // while a refused batch is split. While splitting or flushing, one sendable point is due at
  // once.
  Next next_send(const PointQueue& queue, TimeMs now) const;
  // From now on every sendable point is due at once (shutdown).
  void flush_all() { flushing_ = true; }

  // The outcome of writing `batch` (its points and last_seq; the body is not read). `jitter` is a
  // uniform random number in [0, 1), used only for a retry's delay.
  Step on_write(const PointQueue::Batch& batch, const WriteResult& result, TimeMs now,
                double jitter);
  // After Step::dead_letter for `batch`: whether the dead-letter store took it. Answers drop or
  // keep.
  Step on_dead_letter(const PointQueue::Batch& batch, bool stored, TimeMs now);
  // The duration of a write request, whatever its outcome (counters().write_seconds).
  void observe_write_seconds(double seconds) { counters_.write_seconds.observe(seconds); }

  bool in_retry_episode() const { return backoff_.failures() > 0; }
  const SinkCounters& counters() const { return counters_; }

 private:
  Failing failing_note(TimeMs now);
  bool end_split_if_done(std::uint64_t last_seq);

  const config::InfluxSinkConfig& settings_;
  std::size_t max_batch_bytes_;
  Backoff backoff_;
  bool flushing_ = false;
  std::size_t split_limit_ = 0;          // > 0 while a refused batch is sent in pieces of this size
  std::uint64_t split_through_seq_ = 0;  // last point of the refused batch
  // The dead letter on_write asked for, until on_dead_letter: why, what failed, and whether its
  // retries ran out (else InfluxDB refused it).
  std::string pending_reason_;
  std::string pending_failure_;
  bool pending_after_retries_ = false;
  TimeMs last_reminder_ = 0;
  TimeMs last_dead_letter_log_ = std::numeric_limits<TimeMs>::min() / 2;
  SinkCounters counters_;
};

}  // namespace tumbled::sink
