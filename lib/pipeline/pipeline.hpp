// Pipeline: one configured job, source -> window -> sink, with the state store beside them.
//
// The source (TCP, or InfluxDB write requests over HTTP) hands bytes to decoders of the
// configured format: `integers` go to processing-time TumblingWindows, `line_protocol` records to
// KeyedWindows (event or processing time); both emit line-protocol points into the same queue,
// store and writer.
//
// start() restores open windows and unsent points from the store, binds the listener and starts
// four coroutines on the daemon's io_context: the accept loop, the window clock (closes windows
// as the wall clock passes their end, emits their points and checkpoints at once, so a point is
// durable before InfluxDB can see it), the periodic checkpoint, and the batch writer; with
// source.http a fifth, the commit loop: a request is answered once its body is logged in the
// store (AcceptedInput: with the clock, watermark and precision it was decoded with) and the log
// fsynced (commit()); requests decoded together share one write and fsync (group commit). start()
// decodes logged requests again on top of the checkpoint; the next checkpoint deletes them.
// shutdown() stops accepting, checkpoints, tries to flush every waiting point for at most
// `flush_timeout`, checkpoints again and returns; open windows stay in the store for the next
// start. When shutdown() returns, every coroutine of the pipeline has ended (connections too), so
// the pipeline may be destroyed while the daemon goes on: a reload replaces pipelines this way.
// The pipeline keeps its own copy of its settings, independent of the Config it came from.
// Backpressure: while `buffer.max_points` points wait (when_full: block) or while
// checkpoints fail, the source stops reading its sockets (HTTP: answers 503), so senders are
// slowed and nothing accepted is lost; with when_full: drop_oldest the oldest point is dropped and
// counted instead. Everything runs on one thread, no locks, but for the fsync of a source.http
// pipeline's group commit (commit_loop), made on a thread of its own so that the event loop
// decodes the next requests meanwhile; the store's sync_wal() is the one call made there; and
// with source.tcp.threads > 1 the TCP source's reader threads, whose integer decoders count into
// a ReaderShare each, handed over (source::ReaderHandOver) when the source synchronizes: before
// the window clock closes windows (with the time read before it) and before each checkpoint.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <span>

#include "config/config.hpp"
#include "pipeline/pipeline_stats.hpp"
#include "sink/influx_writer.hpp"
#include "sink/point_queue.hpp"
#include "source/decoder.hpp"
#include "source/kafka_source.hpp"
#include "source/line_protocol_decoder.hpp"
#include "source/source.hpp"
#include "store/checkpoint_store.hpp"
#include "window/keyed_windows.hpp"
#include "window/partitioned_windows.hpp"
#include "window/tumbling_windows.hpp"

namespace spdlog {
class logger;
}

namespace tumbled::pipeline {

struct Loggers {
  std::shared_ptr<spdlog::logger> tcp, window, influx, store;
};

struct WindowCounters {
  std::uint64_t windows_emitted = 0;
  std::uint64_t sums_saturated = 0;
  std::uint64_t checkpoints = 0;
  std::uint64_t checkpoint_failures = 0;
  std::uint64_t points_dropped = 0;  // buffer full with when_full: drop_oldest
  std::uint64_t log_syncs = 0;       // source.http: fsyncs of the accepted writes' log
};

class Pipeline : private source::PartitionOwner {
 public:
  Pipeline(boost::asio::io_context& io, const config::PipelineConfig& settings,
           std::chrono::milliseconds checkpoint_interval, store::CheckpointStore& store,
           Loggers loggers, sink::Clock clock);
  ~Pipeline() override;

  // Throws (cannot bind, corrupt state) before any coroutine starts: the pipeline may then be
  // destroyed at once.
  void start();
  // Call at most once, after start().
  boost::asio::awaitable<void> shutdown(std::chrono::milliseconds flush_timeout);
  // Takes effect at once (the next checkpoint is due after `interval` from now).
  void set_checkpoint_interval(std::chrono::milliseconds interval);

  const config::PipelineConfig& settings() const { return settings_; }
  std::size_t open_windows() const {
    return partitioned_ ? partitioned_->open_windows()
           : keyed_     ? keyed_->open_windows()
                        : windows_.open_windows().size();
  }
  config::Endpoint listening_on() const { return source_->local_endpoint(); }
  std::size_t points_waiting() const { return queue_.size(); }
  // Counters and gauges of this moment, for /metrics and /ready.
  PipelineStats stats() const;

 private:
  std::unique_ptr<source::Source> make_source();
  // source.kafka (source::PartitionOwner): partitions come and go; offsets are committed once
  // InfluxDB acknowledged the points before them (commit_offsets).
  void assigned(std::int32_t partition, std::int64_t offset, const std::string& metadata) override;
  std::vector<source::KafkaCommit> revoked(const std::vector<std::int32_t>& partitions) override;
  void reading(std::int32_t, std::int64_t offset) override { reading_offset_ = offset; }
  void consumed(std::int32_t partition, std::int64_t offset) override {
    partitioned_->consumed(partition, offset);
  }
  void commit_offsets();
  source::DecoderFactory decoders();
  source::LineProtocolDecoder::OnLine keyed_lines(source::Precision precision);
  void replay_inputs(const std::vector<store::AcceptedInput>& inputs);
  boost::asio::awaitable<bool> commit(std::string body);
  void log_inputs();
  void store_failed(const std::string& error);
  boost::asio::awaitable<void> commit_loop();
  void accept_values(std::span<const std::int64_t> values);
  void restore_keyed(store::RestoredPipeline& restored);
  // Closes the windows whose end is at or before `now`, read before the source synchronized.
  void close_windows(sink::TimeMs now);
  void enqueue(std::string line, sink::TimeMs now);
  // sync: fsync the state store's log too (shutdown's last checkpoint with requests waiting).
  void checkpoint(bool sync = false);
  bool store_dead_letter(const sink::PointQueue::Batch& batch, const std::string& error);
  boost::asio::awaitable<void> window_clock();
  boost::asio::awaitable<void> checkpoint_loop();
  void spawn(boost::asio::awaitable<void> task, const char* what);
  void report_rejections();
  void apply_backpressure();

  boost::asio::io_context& io_;
  const config::PipelineConfig settings_;  // a copy: a reload replaces the daemon's Config
  std::chrono::milliseconds checkpoint_interval_;
  store::CheckpointStore& store_;
  Loggers log_;
  sink::Clock clock_;

  window::TumblingWindows windows_;            // format: integers
  std::optional<window::KeyedWindows> keyed_;  // format: line_protocol
  // source.kafka: keyed windows per partition, and where each partition can be resumed
  std::optional<window::PartitionedWindows> partitioned_;
  source::KafkaSource* kafka_ = nullptr;                   // source_, when it reads Kafka
  std::int64_t reading_offset_ = -1;                       // of the record being decoded
  std::map<std::int32_t, window::ResumePoint> committed_;  // the latest commit asked for
  sink::PointQueue queue_;
  std::uint64_t saved_below_ = 1;     // points below this seq are in the store
  std::vector<std::int64_t> values_;  // the values of one read, shared by integer decoders
  // source.tcp.threads > 1: what the decoders of reader thread r (>= 1) count, in shares_[r - 1],
  // touched only by that thread; handed over and merged into windows_ when the source
  // synchronizes, before windows close and before checkpoints.
  struct ReaderShare {
    explicit ReaderShare(sink::TimeMs window_size) : windows(window_size) {}
    window::TumblingWindows windows;
    std::vector<std::int64_t> values;
  };
  std::vector<std::unique_ptr<ReaderShare>> shares_;
  sink::TimeMs chunk_now_ = 0;  // the wall clock when the chunk being decoded was read
  std::unique_ptr<source::Source> source_;
  sink::BatchWriter writer_;
  boost::asio::steady_timer window_timer_;
  boost::asio::steady_timer checkpoint_timer_;
  bool started_ = false;
  bool stopping_ = false;
  std::size_t tasks_running_ = 0;  // coroutines started by spawn() that have not ended
  sink::TimeMs started_at_ = 0;
  WindowCounters counters_;
  double last_checkpoint_seconds_ = 0;
  std::uint64_t last_checkpoint_bytes_ = 0;
  std::uint64_t reported_rejections_ = 0;
  sink::TimeMs last_rejection_report_ = 0;
  std::string last_checkpoint_error_;
  bool checkpoint_failing_ = false;
  // Group commit (HTTP): each request decoded takes a ticket (commits_wanted_); a checkpoint
  // writes every ticket decoded before it (commits_written_), then the commit loop fsyncs the
  // store's log on wal_syncer_'s thread (commits_synced_) while this thread decodes more.
  // The input log: what each decoded request body depends on, noted by decoders() and logged
  // by the commit loop (log_inputs) until a checkpoint holds it.
  store::AcceptedInput stream_input_;
  std::vector<store::AcceptedInput> pending_inputs_;
  std::uint64_t next_input_seq_ = 1;
  std::uint64_t commits_wanted_ = 0;
  std::uint64_t commits_written_ = 0;
  std::uint64_t commits_synced_ = 0;
  bool commits_final_ = false;  // shutdown's last checkpoint is done: stop waiting
  std::unique_ptr<boost::asio::thread_pool> wal_syncer_;  // source.http only; fsync blocks
  boost::asio::steady_timer commit_signal_;  // cancelled after each sync: waiters look again
  boost::asio::steady_timer commit_work_;    // cancelled by each new ticket: wakes commit_loop
};

}  // namespace tumbled::pipeline
