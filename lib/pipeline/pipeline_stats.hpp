// PipelineStats: a snapshot of one pipeline's counters and gauges, taken by Pipeline::stats() for
// the HTTP endpoints (/metrics, /ready).
//
// A plain value: copying it detaches it from the pipeline, and it has no Asio or RocksDB in it,
// so the exposition formatter and the readiness rule that read it stay pure code (tumbled_core).
// Counters only grow while the daemon runs and start from zero at each start.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "sink/latency_histogram.hpp"
#include "source/line_framer.hpp"
#include "source/source_counters.hpp"

namespace tumbled::pipeline {

struct PipelineStats {
  std::string name;

  // Source
  bool listening = false;      // started, not stopping: the listener accepts
  bool source_paused = false;  // backpressure: reading from clients stopped
  std::uint64_t connections_open = 0;
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;      // at max_connections, none silent for long
  std::uint64_t connections_evicted = 0;      // silent longest, closed for a newcomer at the cap
  std::uint64_t connections_idle_closed = 0;  // silent for source.tcp.idle_timeout
  std::uint64_t connection_failures = 0;      // ended by an unexpected error (logged)
  source::LineCounters lines;
  bool reads_http = false;           // source.http: the request metrics apply
  source::RequestCounters requests;  // source.http only
  std::uint64_t log_syncs = 0;       // source.http: fsyncs of the accepted writes' log
  bool reads_kafka = false;          // source.kafka: the consumer metrics apply
  source::KafkaCounters kafka;       // source.kafka only
  std::map<std::int32_t, source::KafkaCounters::PartitionState> partitions;  // assigned now
  std::string kafka_trouble;  // the consumer's unresolved error, "" when fine

  // Windows
  std::uint64_t open_keys = 0;       // open (key, window) pairs (line_protocol)
  double watermark_lag_seconds = 0;  // event time: wall clock - watermark
  std::uint64_t points_updated = 0;  // emitted again after a late value
  std::uint64_t windows_emitted = 0;
  std::uint64_t sums_saturated = 0;

  // Sink
  std::uint64_t points_written = 0;
  std::uint64_t batches_sent = 0;  // acknowledged write requests
  std::uint64_t batch_failed_attempts = 0;
  std::uint64_t batches_dead_lettered = 0;
  std::uint64_t batches_split = 0;
  std::uint64_t points_dead_lettered = 0;
  std::uint64_t points_dropped = 0;  // buffer full with when_full: drop_oldest
  std::uint64_t points_waiting = 0;
  double oldest_waiting_age_seconds = 0;   // 0 when nothing waits
  sink::LatencyHistogram write_seconds;    // every write request, whatever its outcome
  std::int64_t last_write_success_ms = 0;  // Unix epoch ms; 0: none since the start
  std::string last_write_failure;          // why the last write failed; "" if it succeeded

  // State store
  std::uint64_t checkpoints = 0;
  std::uint64_t checkpoints_failed = 0;
  double last_checkpoint_seconds = 0;
  std::uint64_t last_checkpoint_bytes = 0;  // size of its RocksDB WriteBatch
};

}  // namespace tumbled::pipeline
