#include "http/endpoints.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <system_error>

namespace tumbled::http {

using pipeline::PipelineStats;

namespace {

std::string text_of(std::uint64_t v) {
  return std::to_string(v);
}
std::string text_of(bool v) {
  return v ? "1" : "0";
}
std::string text_of(double v) {
  return format_value(v);
}

// Writes the families of one scrape; each family is its HELP and TYPE lines, then one sample
// per pipeline.
class Exposition {
 public:
  explicit Exposition(std::span<const PipelineStats> pipelines) : pipelines_(pipelines) {}

  template <class Get>
  void family(std::string_view name, std::string_view type, std::string_view help, Get get) {
    header(name, type, help);
    for (const auto& p : pipelines_) sample(name, p, "", text_of(get(p)));
  }

  void rejected_lines() {
    constexpr std::string_view name = "tumbled_lines_rejected_total";
    header(name, "counter", "Input lines rejected and skipped, by reason.");
    for (const auto& p : pipelines_) {
      for (const auto reason : source::kRejections) {
        sample(name, p, ",reason=\"" + std::string(source::name(reason)) + "\"",
               text_of(p.lines[reason]));
      }
    }
  }

  // The source.http families, with samples of the pipelines that read HTTP; none if no
  // pipeline does.
  void http_source() {
    const auto http = [](const PipelineStats& p) { return p.reads_http; };
    if (std::none_of(pipelines_.begin(), pipelines_.end(), http)) return;
    constexpr std::string_view requests = "tumbled_source_http_requests_total";
    header(requests, "counter", "InfluxDB write API requests answered, by HTTP status code.");
    for (const auto& p : pipelines_) {
      for (const auto& [code, count] : p.requests.by_status) {
        sample(requests, p, ",code=\"" + std::to_string(code) + "\"", text_of(count));
      }
    }
    histogram("tumbled_source_http_request_duration_seconds",
              "From a write request's headers in to its answer sent (body, decoding and the "
              "synced commit included), in seconds.",
              &PipelineStats::requests, http);
    family(
        "tumbled_source_http_received_bytes_total", "counter",
        "Bytes of the write requests' bodies read (gzip bodies as sent; not those refused).",
        [](const PipelineStats& p) { return p.requests.body_bytes; }, http);
    family(
        "tumbled_source_http_log_syncs_total", "counter",
        "fsyncs of the log of accepted writes: requests answered 204 (or 400 partial) over "
        "this is how many shared one (group commit).",
        [](const PipelineStats& p) { return p.log_syncs; }, http);
    family(
        "tumbled_source_http_timeouts_total", "counter",
        "Requests not received in time (10 s for headers, 60 s in all); their connection "
        "closed, nothing of them taken.",
        [](const PipelineStats& p) { return p.requests.timed_out; }, http);
    family(
        "tumbled_source_http_tls_handshake_failures_total", "counter",
        "Connections to an HTTPS source closed because the TLS handshake failed (plain HTTP "
        "included).",
        [](const PipelineStats& p) { return p.requests.tls_handshake_failures; }, http);
  }

  // The source.kafka families, with samples of the pipelines that read Kafka; none if no
  // pipeline does. Per-partition samples only for the partitions assigned now.
  void kafka_source() {
    const auto kafka = [](const PipelineStats& p) { return p.reads_kafka; };
    if (std::none_of(pipelines_.begin(), pipelines_.end(), kafka)) return;
    family(
        "tumbled_source_kafka_assigned_partitions", "gauge",
        "Partitions of the topic this instance reads now.",
        [](const PipelineStats& p) { return p.partitions.size(); }, kafka);
    family(
        "tumbled_source_kafka_rebalances_total", "counter",
        "Partition assignments received from the consumer group.",
        [](const PipelineStats& p) { return p.kafka.rebalances; }, kafka);
    family(
        "tumbled_source_kafka_records_total", "counter", "Kafka records read.",
        [](const PipelineStats& p) { return p.kafka.records; }, kafka);
    family(
        "tumbled_source_kafka_commits_total", "counter",
        "Offset commits that succeeded (after InfluxDB acknowledged, and on revoke).",
        [](const PipelineStats& p) { return p.kafka.commits; }, kafka);
    family(
        "tumbled_source_kafka_commit_failures_total", "counter",
        "Offset commits that failed; the next commit carries the same offsets or later ones.",
        [](const PipelineStats& p) { return p.kafka.commit_failures; }, kafka);
    family(
        "tumbled_source_kafka_errors_total", "counter",
        "Consumer errors, e.g. brokers unreachable (librdkafka retries them).",
        [](const PipelineStats& p) { return p.kafka.errors; }, kafka);
    partition_family("tumbled_source_kafka_consumer_lag",
                     "Records of an assigned partition not read yet (its high watermark minus "
                     "the next offset to read).",
                     &source::KafkaCounters::PartitionState::lag);
    partition_family("tumbled_source_kafka_committed_offset",
                     "The latest offset this instance committed for an assigned partition: the "
                     "first record of its oldest window InfluxDB does not hold yet.",
                     &source::KafkaCounters::PartitionState::committed);
  }

  void write_latency() {
    histogram("tumbled_write_duration_seconds",
              "Duration of each write request to InfluxDB, whatever its outcome, in seconds.",
              nullptr, [](const PipelineStats&) { return true; });
  }

  std::string take() { return std::move(out_); }

 private:
  template <class Get, class Filter>
  void family(std::string_view name, std::string_view type, std::string_view help, Get get,
              Filter only) {
    header(name, type, help);
    for (const auto& p : pipelines_) {
      if (only(p)) sample(name, p, "", text_of(get(p)));
    }
  }

  // A gauge per assigned partition; a partition whose value is unknown (-1) has no sample.
  void partition_family(std::string_view name, std::string_view help,
                        std::int64_t source::KafkaCounters::PartitionState::*value) {
    header(name, "gauge", help);
    for (const auto& p : pipelines_) {
      for (const auto& [partition, state] : p.partitions) {
        if (state.*value < 0) continue;
        sample(name, p, ",partition=\"" + std::to_string(partition) + "\"",
               text_of(static_cast<std::uint64_t>(state.*value)));
      }
    }
  }

  // `requests`: the source's request histogram; nullptr: the InfluxDB writes'.
  template <class Filter>
  void histogram(const std::string& name, std::string_view help,
                 source::RequestCounters PipelineStats::*requests, Filter only) {
    header(name, "histogram", help);
    const auto& bounds = sink::LatencyHistogram::kBoundsSeconds;
    for (const auto& p : pipelines_) {
      if (!only(p)) continue;
      const auto& h = requests ? (p.*requests).seconds : p.write_seconds;
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < bounds.size(); ++i) {
        cumulative += h.counts[i];
        sample(name + "_bucket", p, ",le=\"" + format_value(bounds[i]) + "\"", text_of(cumulative));
      }
      sample(name + "_bucket", p, ",le=\"+Inf\"", text_of(h.count));
      sample(name + "_sum", p, "", format_value(h.sum_seconds));
      sample(name + "_count", p, "", text_of(h.count));
    }
  }

  void header(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }

  void sample(std::string_view name, const PipelineStats& p, std::string_view more_labels,
              const std::string& value) {
    out_.append(name)
        .append("{pipeline=\"")
        .append(escape_label_value(p.name))
        .append("\"")
        .append(more_labels)
        .append("} ")
        .append(value)
        .append("\n");
  }

  std::span<const PipelineStats> pipelines_;
  std::string out_;
};

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[64];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, value);
  if (ec != std::errc{}) return "NaN";  // cannot happen: 64 bytes hold any double
  return std::string(text, end);
}

std::string prometheus_text(std::span<const PipelineStats> pipelines,
                            const HttpServerStats* server) {
  using P = PipelineStats;
  Exposition e(pipelines);
  e.family("tumbled_connections_open", "gauge", "TCP connections open now.",
           [](const P& p) { return p.connections_open; });
  e.family("tumbled_connections_accepted_total", "counter", "TCP connections accepted.",
           [](const P& p) { return p.connections_accepted; });
  e.family("tumbled_connections_refused_total", "counter",
           "TCP connections closed at once: max_connections were open, none silent for 10 s.",
           [](const P& p) { return p.connections_refused; });
  e.family("tumbled_connections_evicted_total", "counter",
           "TCP connections closed at max_connections because they had been silent longest and a "
           "new one came.",
           [](const P& p) { return p.connections_evicted; });
  e.family("tumbled_connections_idle_closed_total", "counter",
           "TCP connections closed after sending nothing for source.tcp.idle_timeout.",
           [](const P& p) { return p.connections_idle_closed; });
  e.family("tumbled_connection_failures_total", "counter",
           "TCP connections ended by an unexpected error in the daemon (logged).",
           [](const P& p) { return p.connection_failures; });
  e.family("tumbled_lines_accepted_total", "counter",
           "Input lines accepted: integer values, or line-protocol records aggregated.",
           [](const P& p) { return p.lines.accepted; });
  e.rejected_lines();
  e.family("tumbled_source_paused", "gauge",
           "1 while reading from clients is paused (buffer full or checkpoints failing).",
           [](const P& p) { return p.source_paused; });
  e.family("tumbled_open_keys", "gauge",
           "Open (key, window) pairs of a line_protocol pipeline (bounded by window.max_keys).",
           [](const P& p) { return p.open_keys; });
  e.family("tumbled_watermark_lag_seconds", "gauge",
           "Event time: how far the watermark is behind the wall clock, in seconds (0 before "
           "the first line).",
           [](const P& p) { return p.watermark_lag_seconds; });
  e.family("tumbled_points_updated_total", "counter",
           "Points emitted again because a late value within window.allowed_lateness changed "
           "their window.",
           [](const P& p) { return p.points_updated; });
  e.family("tumbled_windows_emitted_total", "counter", "Windows closed and emitted as a point.",
           [](const P& p) { return p.windows_emitted; });
  e.family("tumbled_sums_saturated_total", "counter",
           "Points with a sum outside int64 (line protocol: or beyond a double), written clamped "
           "with sum_saturated=true (<field>_sum_saturated=true).",
           [](const P& p) { return p.sums_saturated; });
  e.family("tumbled_points_written_total", "counter", "Points acknowledged by InfluxDB.",
           [](const P& p) { return p.points_written; });
  e.family("tumbled_batches_sent_total", "counter", "Write requests acknowledged by InfluxDB.",
           [](const P& p) { return p.batches_sent; });
  e.family("tumbled_batches_failed_attempts_total", "counter",
           "Write requests that failed (network error, timeout or error status).",
           [](const P& p) { return p.batch_failed_attempts; });
  e.family("tumbled_batches_dead_lettered_total", "counter",
           "Batches moved to the dead letters of the state store.",
           [](const P& p) { return p.batches_dead_lettered; });
  e.family("tumbled_batches_split_total", "counter",
           "Halvings of batches InfluxDB refused with 400 or 413.",
           [](const P& p) { return p.batches_split; });
  e.family("tumbled_points_dead_lettered_total", "counter",
           "Points moved to the dead letters of the state store.",
           [](const P& p) { return p.points_dead_lettered; });
  e.family("tumbled_points_dropped_total", "counter",
           "Points dropped because the buffer was full (buffer.when_full: drop_oldest).",
           [](const P& p) { return p.points_dropped; });
  e.family("tumbled_points_waiting", "gauge", "Points waiting for InfluxDB.",
           [](const P& p) { return p.points_waiting; });
  e.family("tumbled_oldest_waiting_point_age_seconds", "gauge",
           "Age of the oldest point waiting for InfluxDB; 0 when none waits.",
           [](const P& p) { return p.oldest_waiting_age_seconds; });
  e.write_latency();
  e.http_source();
  e.kafka_source();
  e.family("tumbled_last_successful_write_timestamp_seconds", "gauge",
           "Unix time of the last write InfluxDB acknowledged; 0 if none since the start.",
           [](const P& p) { return static_cast<double>(p.last_write_success_ms) / 1000.0; });
  e.family("tumbled_checkpoints_total", "counter", "Checkpoints written to the state store.",
           [](const P& p) { return p.checkpoints; });
  e.family("tumbled_checkpoints_failed_total", "counter", "Checkpoints that failed.",
           [](const P& p) { return p.checkpoints_failed; });
  e.family("tumbled_last_checkpoint_duration_seconds", "gauge",
           "How long the last checkpoint took.",
           [](const P& p) { return p.last_checkpoint_seconds; });
  e.family("tumbled_last_checkpoint_bytes", "gauge",
           "Size of the last checkpoint's RocksDB write batch, in bytes.",
           [](const P& p) { return p.last_checkpoint_bytes; });
  std::string text = e.take();
  if (!server) return text;
  const auto add = [&text](std::string_view name, std::string_view type, std::string_view help,
                           std::uint64_t value) {
    text.append("# HELP ").append(name).append(" ").append(help).append("\n");
    text.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    text.append(name).append(" ").append(std::to_string(value)).append("\n");
  };
  add("tumbled_http_connections_open", "gauge", "Connections open to this HTTP server.",
      server->connections_open);
  add("tumbled_http_connections_accepted_total", "counter", "HTTP connections accepted.",
      server->connections_accepted);
  add("tumbled_http_connections_evicted_total", "counter",
      "HTTP connections closed because the server was at its connection limit and they were "
      "the idlest.",
      server->connections_evicted);
  add("tumbled_http_connections_refused_total", "counter",
      "HTTP connections closed at once: at the connection limit with every connection busy.",
      server->connections_refused);
  add("tumbled_http_connections_timed_out_total", "counter",
      "HTTP connections closed because a request's headers or the request did not arrive in time.",
      server->connections_timed_out);
  add("tumbled_http_connection_failures_total", "counter",
      "HTTP connections ended by an unexpected error in the server (logged).",
      server->connection_failures);
  add("tumbled_http_requests_total", "counter", "HTTP requests answered, refused ones included.",
      server->requests);
  add("tumbled_http_requests_refused_total", "counter",
      "HTTP requests refused as malformed, too large or unsupported (answered 4xx/5xx, then the "
      "connection closed).",
      server->requests_refused);
  return text;
}

Readiness readiness(const PipelineStats& stats) {
  using State = Readiness::State;
  if (!stats.listening) return {State::not_ready, "not accepting connections"};
  if (!stats.kafka_trouble.empty()) return {State::not_ready, "Kafka: " + stats.kafka_trouble};
  if (stats.write_seconds.count == 0) return {State::needs_ping, ""};
  if (!stats.last_write_failure.empty()) {
    return {State::not_ready, "last write to InfluxDB failed: " + stats.last_write_failure};
  }
  return {State::ready, ""};
}

}  // namespace tumbled::http
