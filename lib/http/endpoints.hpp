// The pure halves of the HTTP endpoints: the /metrics text and the /ready rule.
//
// prometheus_text() renders pipeline snapshots in the Prometheus text exposition format,
// version 0.0.4: every metric is named `tumbled_…`, has one HELP and one TYPE line, and carries a
// `pipeline` label (escaped per the format: backslash, double quote and newline); counters end in
// `_total`; the write latency is a histogram with cumulative `le` buckets. readiness() says
// whether one pipeline is ready, not ready (and why), or needs a ping to InfluxDB to tell (it
// has not attempted a write since the start). Pure code (tumbled_core): no Asio, no I/O; the
// server in http_server.hpp does the talking.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "pipeline/pipeline_stats.hpp"

namespace tumbled::http {

// A label value as the exposition format writes it between its double quotes.
std::string escape_label_value(std::string_view value);

// Numbers as the exposition format writes them: shortest round-trip form, "+Inf", "-Inf", "NaN".
std::string format_value(double value);

// The HTTP server's own counters (http_server.hpp).
struct HttpServerStats {
  std::uint64_t connections_open = 0;
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_evicted = 0;    // the idlest, closed to admit a newcomer at the cap
  std::uint64_t connections_refused = 0;    // at the cap with every connection busy
  std::uint64_t connections_timed_out = 0;  // headers or a request not received in time
  std::uint64_t connection_failures = 0;    // an exception on a connection's path (a bug)
  std::uint64_t requests = 0;               // answered, refused ones included
  std::uint64_t requests_refused = 0;       // malformed, too large, unsupported: 4xx/5xx, closed
};

// The whole /metrics body for these pipelines, in this order within each metric, then the HTTP
// server's own families when `server` is given.
std::string prometheus_text(std::span<const pipeline::PipelineStats> pipelines,
                            const HttpServerStats* server = nullptr);

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

struct Readiness {
  enum class State { ready, not_ready, needs_ping };
  State state = State::not_ready;
  std::string reason;  // why not ready; empty otherwise
};

// Ready when the listener accepts and the last write to InfluxDB succeeded; a pipeline that has
// not attempted a write yet needs a successful GET /ping instead (needs_ping).
Readiness readiness(const pipeline::PipelineStats& stats);

}  // namespace tumbled::http
