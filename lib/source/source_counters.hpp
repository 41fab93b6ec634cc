// What a source counts: lines by outcome, connections, and the requests of a source that takes
// them (HTTP). Plain values, no I/O: the pipeline copies them into its stats for /metrics.
#pragma once

#include <cstdint>
#include <map>

#include "sink/latency_histogram.hpp"
#include "source/line_framer.hpp"

namespace tumbled::source {

// Requests of a source that takes them (HTTP).
struct RequestCounters {
  std::map<unsigned, std::uint64_t> by_status;  // answered requests by HTTP status
  sink::LatencyHistogram seconds;               // from its headers in to its answer sent
  std::uint64_t body_bytes = 0;                 // bodies of write requests taken (gzip: compressed)
  std::uint64_t timed_out = 0;                  // a request not received in time; closed
  std::uint64_t tls_handshake_failures = 0;     // plain HTTP on an HTTPS listener included
};

// The Kafka consumer (source.kafka).
struct KafkaCounters {
  std::uint64_t rebalances = 0;  // assignments received
  std::uint64_t commits = 0;     // offset commits that succeeded
  std::uint64_t commit_failures = 0;
  std::uint64_t errors = 0;  // consumer errors (brokers unreachable, ...)
  std::uint64_t records = 0;
  struct PartitionState {
    std::int64_t position = -1;   // next offset to read; -1 unknown
    std::int64_t committed = -1;  // last offset committed by this member
    std::int64_t lag = -1;        // high watermark - position; -1 unknown
  };
};

struct SourceCounters {
  LineCounters lines;
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_open = 0;
  std::uint64_t connections_refused = 0;      // at max_connections, none silent for long
  std::uint64_t connections_evicted = 0;      // silent longest, closed to admit a newcomer
  std::uint64_t connections_idle_closed = 0;  // silent for idle_timeout
  std::uint64_t connection_failures = 0;      // an exception ended a connection (a bug; logged)
  std::uint64_t pauses = 0;                   // times reading stopped for backpressure
  RequestCounters requests;                   // HTTP only
};

}  // namespace tumbled::source
