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

#include <span>
#include <string>
#include <string_view>

#include "pipeline/pipeline_stats.hpp"

namespace tumbled::http {

// A label value as the exposition format writes it between its double quotes.
std::string escape_label_value(std::string_view value);

// Numbers as the exposition format writes them: shortest round-trip form, "+Inf", "-Inf", "NaN".
std::string format_value(double value);

// The whole /metrics body for these pipelines, in this order within each metric.
std::string prometheus_text(std::span<const pipeline::PipelineStats> pipelines);

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
