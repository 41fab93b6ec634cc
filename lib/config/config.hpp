// Daemon configuration: typed structs and the YAML loader that fills them.
//
// YAML stops here: the rest of the daemon sees only these structs, with std::chrono durations and
// parsed endpoints. Every key is declared once in config.cpp's table (path, type, default, doc);
// that table drives parsing, validation, defaults and the reference printed by
// `config_reference()`. Loading throws ConfigError, whose message names the key and its 1-based
// line, for anything wrong: unknown keys, bad types, bad durations, duplicate names or listen
// addresses. Pure code: no I/O beyond reading the file, and the environment for `${VAR}`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace tumbled::config {

using Millis = std::chrono::milliseconds;

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// host:port, host may be a name or an IPv4/IPv6 literal ("[::1]:9000").
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;
  bool operator==(const Endpoint&) const = default;
};

enum class Aggregate { sum, count, min, max, mean };
const char* to_string(Aggregate a);

struct RetryConfig {
  Millis initial_backoff{100};
  Millis max_backoff{30'000};
  std::int64_t max_retries = -1;  // < 0: retry forever
  bool operator==(const RetryConfig&) const = default;
};

// When request bodies are gzip-compressed: `automatic` compresses those large enough to gain
// (sink::kGzipAutoMinBytes), and only when InfluxDB is not on a loopback address (sink/gzip.hpp).
enum class GzipMode { never, always, automatic };

struct InfluxSinkConfig {
  std::string scheme = "http";  // http or https
  Endpoint endpoint{"127.0.0.1", 8086};
  std::string path_prefix;  // e.g. "/influx" behind a proxy; "" by default
  std::string api = "v1";   // v1: POST /write (database...); v2: POST /api/v2/write (org...)
  std::string database = "telemetry";     // v1 only
  std::string retention_policy;           // v1 only; "" = the database's default
  std::string username;                   // v1 only; "" = no authentication
  std::string password;                   // v1 only
  std::string org;                        // v2 only, required there
  std::string bucket;                     // v2 only, required there
  std::string token;                      // v2 only; "" = no Authorization header
  std::string tls_ca_file;                // https only; "" = the system's CAs
  bool tls_insecure_skip_verify = false;  // https only; no certificate or host name check
  GzipMode gzip = GzipMode::automatic;
  std::size_t batch_size = 100;
  // While more than batch_size points wait, batches of up to this many (sink::kMaxBatchBytes
  // bounds their body); >= batch_size. Left out of a config: 5000, or batch_size if larger.
  std::size_t max_batch_size = 5000;
  Millis batch_interval{1000};
  Millis request_timeout{5000};
  RetryConfig retry;
  bool operator==(const InfluxSinkConfig&) const = default;
};

// source.http: an InfluxDB-compatible write endpoint instead of the TCP source.
struct HttpSourceConfig {
  std::optional<Endpoint> listen;  // nullopt: the pipeline reads TCP (source.tcp)
  std::size_t max_body_bytes = 25 << 20;
  std::size_t max_connections = 256;
  std::string token;          // auth.token; "" = no authentication
  std::string tls_cert_file;  // tls.cert_file; "" = plain HTTP
  std::string tls_key_file;
  bool operator==(const HttpSourceConfig&) const = default;
};

// source.kafka: a member of a Kafka consumer group instead of the TCP source.
struct KafkaSourceConfig {
  std::string brokers;  // bootstrap servers; "": the pipeline does not read Kafka
  std::string topic;
  std::string group = "tumbled";
  std::string partition_tag = "partition";        // "": points carry no partition
  std::map<std::string, std::string> properties;  // librdkafka settings, as they are
  bool operator==(const KafkaSourceConfig&) const = default;
};

struct PipelineConfig {
  std::string name;
  HttpSourceConfig http;
  KafkaSourceConfig kafka;
  Endpoint listen{"127.0.0.1", 9000};
  std::size_t max_line_bytes = 1024;
  std::size_t max_connections = 1024;
  Millis idle_timeout{300'000};     // 0 = never close silent connections
  std::size_t tcp_threads = 1;      // threads reading connections, the event loop's included
  std::string format = "integers";  // integers | line_protocol
  std::string precision = "ns";     // line-protocol timestamps: ns | us | ms | s
  Millis window_size{10'000};
  std::string window_time = "processing";  // processing | event (line_protocol only)
  // Event time only: watermark = newest event time - max_out_of_orderness; a window is kept
  // for allowed_lateness after the watermark passes its end; with no input for
  // watermark_idle_timeout (window.idle_timeout, 0 = never) the watermark follows the wall clock;
  // an event time beyond the wall clock + max_future is rejected.
  Millis max_out_of_orderness{5'000};
  Millis allowed_lateness{0};
  Millis watermark_idle_timeout{30'000};
  Millis max_future{60'000};
  std::vector<std::string> group_by;  // tag keys; empty: one group per measurement
  std::vector<std::string> fields;    // numeric fields aggregated; empty: every one
  std::size_t max_keys = 1'000'000;   // open (key, window) pairs at most
  std::vector<Aggregate> aggregates{Aggregate::sum};
  // "" (line_protocol's default): each line's own measurement.
  std::string measurement = "records";
  std::map<std::string, std::string> tags{{"window", "10-sec"}};  // line_protocol: {} by default
  InfluxSinkConfig influx;
  // Points waiting for InfluxDB, at most; then `block` stops reading this pipeline's sockets
  // (TCP backpressure) until there is room, `drop_oldest` drops the oldest and counts them.
  std::size_t buffer_max_points = 100'000;
  std::string buffer_when_full = "block";  // block | drop_oldest
  bool operator==(const PipelineConfig&) const = default;

  bool reads_http() const { return http.listen.has_value(); }
  bool reads_kafka() const { return !kafka.brokers.empty(); }
  // Where the pipeline's source listens: source.http.listen or source.tcp.listen.
  const Endpoint& source_listen() const { return http.listen ? *http.listen : listen; }
};

struct Config {
  std::string log_level = "info";   // trace|debug|info|warn|error
  std::string log_format = "text";  // text | json (one JSON object per line)
  std::string state_dir = "./var/tumbled";
  Millis checkpoint_interval{1000};
  Millis shutdown_timeout{5000};  // bound on the final flush at SIGTERM
  // /metrics, /health and /ready; nullopt (`http.listen: ""`) turns them off.
  std::optional<Endpoint> http_listen = Endpoint{"127.0.0.1", 9100};
  std::vector<PipelineConfig> pipelines;
  bool operator==(const Config&) const = default;
};

// 127.0.0.0/8, ::1 or "localhost" (any case): an address only this machine reaches.
bool is_loopback_host(const std::string& host);

// Reads `${NAME}` from the environment; returns nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_environment();

// Parse YAML text. `source_name` prefixes messages ("tumbled.yaml:12: ...").
Config parse(const std::string& yaml_text, const std::string& source_name,
             const EnvLookup& env = process_environment());
// Read and parse a file; unreadable files raise ConfigError too.
Config load_file(const std::string& path, const EnvLookup& env = process_environment());

// "250ms", "10s", "5m", "1h" -> milliseconds; throws std::invalid_argument otherwise.
Millis parse_duration(const std::string& text);
std::string format_duration(Millis d);

// The effective configuration as YAML, with passwords masked.
std::string to_yaml(const Config& config);
// Settings that are valid but weaken a guarantee (e.g. TLS without certificate verification),
// one sentence each naming the pipeline and key; main logs them at startup and --check-config
// prints them.
std::vector<std::string> warnings(const Config& config);
// A Markdown table of every key: path, type, default, description.
std::string config_reference();

}  // namespace tumbled::config
