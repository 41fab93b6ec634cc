#include "pipeline/pipeline.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <limits>

#include "sink/line_protocol.hpp"
#include "source/http_source.hpp"
#include "source/integer_decoder.hpp"
#include "source/kafka_source.hpp"
#include "source/line_protocol_decoder.hpp"
#include "source/tcp_source.hpp"

namespace tumbled::pipeline {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr sink::TimeMs kRejectionReportEveryMs = 10'000;
// Longest a write request waits for the state store while checkpoints fail.
constexpr milliseconds kCommitTimeout{10'000};
// Event time: how often the window clock looks whether the watermark has passed a window's end
// (data moves it between ticks) or the input has been idle for window.idle_timeout.
constexpr milliseconds kEventTimeTick{100};
}  // namespace

Pipeline::Pipeline(asio::io_context& io, const config::PipelineConfig& settings,
                   milliseconds checkpoint_interval, store::CheckpointStore& store, Loggers loggers,
                   sink::Clock clock)
    : io_(io),
      settings_(settings),
      checkpoint_interval_(checkpoint_interval),
      store_(store),
      log_(std::move(loggers)),
      clock_(std::move(clock)),
      windows_(settings.window_size.count()),
      source_(make_source()),
      writer_(
          io.get_executor(), settings_.influx, queue_,
          [this](const sink::PointQueue::Batch& batch, const std::string& error) {
            return store_dead_letter(batch, error);
          },
          log_.influx, clock_),
      window_timer_(io),
      checkpoint_timer_(io),
      commit_signal_(io, asio::steady_timer::time_point::max()),
      commit_work_(io, asio::steady_timer::time_point::max()) {}

Pipeline::~Pipeline() {
  if (wal_syncer_) wal_syncer_->join();  // a sync still running uses the store
}

std::unique_ptr<source::Source> Pipeline::make_source() {
  if (settings_.reads_kafka()) {
    auto kafka = std::make_unique<source::KafkaSource>(
        io_.get_executor(), settings_.kafka, decoders(),
        static_cast<source::PartitionOwner&>(*this), log_.tcp->clone("kafka"));
    kafka_ = kafka.get();
    return kafka;
  }
  if (settings_.reads_http()) {
    return std::make_unique<source::HttpSource>(
        io_.get_executor(), settings_.http, decoders(),
        [this](std::string body) { return commit(std::move(body)); }, log_.tcp->clone("http"));
  }
  for (std::size_t reader = 1; reader < settings_.tcp_threads; ++reader) {
    shares_.push_back(std::make_unique<ReaderShare>(settings_.window_size.count()));
  }
  // Called on reader thread r: its windows go to this thread, which merges them.
  const auto hand_over = [this](std::size_t reader) -> std::function<void()> {
    auto windows = shares_.at(reader - 1)->windows.take_open();
    if (windows.empty()) return {};
    return [this, windows = std::move(windows)] { windows_.merge(windows); };
  };
  return std::make_unique<source::TcpSource>(
      io_.get_executor(), settings_.listen, settings_.max_connections, settings_.idle_timeout,
      settings_.tcp_threads, decoders(), hand_over, log_.tcp);
}

asio::awaitable<bool> Pipeline::commit(std::string body) {
  // Called right after the body was decoded (decoders() noted what that depended on).
  stream_input_.seq = next_input_seq_++;
  stream_input_.body = std::move(body);
  pending_inputs_.push_back(std::move(stream_input_));
  const std::uint64_t ticket = ++commits_wanted_;
  commit_work_.cancel();  // wakes the commit loop
  // A failed checkpoint is retried by the checkpoint loop; the commit loop then syncs it.
  const auto give_up = std::chrono::steady_clock::now() + kCommitTimeout;
  while (commits_synced_ < ticket && !commits_final_ &&
         std::chrono::steady_clock::now() < give_up) {
    co_await commit_signal_.async_wait(use_tuple);
  }
  co_return commits_synced_ >= ticket;
}

asio::awaitable<void> Pipeline::commit_loop() {
  while (!stopping_) {
    const bool nothing_new = commits_wanted_ == commits_synced_;
    const bool write_failed = commits_written_ == commits_synced_ && checkpoint_failing_;
    if (nothing_new || write_failed) {
      commit_work_.expires_at(asio::steady_timer::time_point::max());
      co_await commit_work_.async_wait(use_tuple);
      continue;
    }
    // Yield once: requests whose bytes are already here are decoded first and share this write.
    co_await asio::post(io_, asio::use_awaitable);
    if (stopping_) break;
    if (commits_written_ < commits_wanted_) log_inputs();  // written, not yet synced
    if (commits_written_ == commits_synced_) continue;     // it failed: the loop above waits
    // fsync on the syncer's thread: meanwhile this one goes on reading and decoding requests,
    // which the next round writes and syncs together (group commit).
    const std::uint64_t written = commits_written_;
    const store::Error error = co_await asio::co_spawn(
        *wal_syncer_, [this]() -> asio::awaitable<store::Error> { co_return store_.sync_wal(); },
        asio::use_awaitable);
    if (error) {
      ++counters_.checkpoint_failures;
      log_.store->error("pipeline {}: syncing the state store's log failed: {}", settings_.name,
                        *error);
    } else {
      commits_synced_ = std::max(commits_synced_, written);
      ++counters_.log_syncs;
    }
    commit_signal_.cancel();
  }
}

source::LineProtocolDecoder::OnLine Pipeline::keyed_lines(source::Precision precision) {
  return [this, precision](const source::ParsedLine& line) {
    return keyed_->add(line, chunk_now_, precision);
  };
}

source::DecoderFactory Pipeline::decoders() {
  // An HTTP request's lines are all in memory: its body is their only bound.
  const std::size_t max_line_bytes =
      settings_.reads_http() ? settings_.http.max_body_bytes : settings_.max_line_bytes;
  if (settings_.reads_kafka()) {
    partitioned_.emplace(window::KeyedSettings::from(settings_), settings_.kafka.partition_tag);
    return [this, max_line_bytes](const source::StreamFormat& format) {
      return std::make_unique<source::LineProtocolDecoder>(
          max_line_bytes,
          [this, partition = format.partition.value_or(0)](const source::ParsedLine& line) {
            return partitioned_->add(partition, reading_offset_, line, chunk_now_);
          },
          [this] { chunk_now_ = clock_(); });
    };
  }
  if (settings_.format == "line_protocol") {
    keyed_.emplace(window::KeyedSettings::from(settings_));
    const source::Precision configured = keyed_->settings().precision;
    return [this, max_line_bytes,
            configured](const source::StreamFormat& format) -> std::unique_ptr<source::Decoder> {
      const source::Precision precision = format.precision.value_or(configured);
      if (!format.whole) {
        return std::make_unique<source::LineProtocolDecoder>(max_line_bytes, keyed_lines(precision),
                                                             [this] { chunk_now_ = clock_(); });
      }
      // One request body, decoded at once: one clock read for all of it, and a note of what
      // its decoding depends on, for the input log (commit()).
      chunk_now_ = clock_();
      stream_input_ = {0, chunk_now_, keyed_->watermark(), keyed_->newest_event(), precision, {}};
      return std::make_unique<source::LineProtocolDecoder>(max_line_bytes, keyed_lines(precision));
    };
  }
  return [this, max_line_bytes](const source::StreamFormat& format) {
    if (format.reader == 0) {
      return std::make_unique<source::IntegerDecoder>(
          max_line_bytes, values_,
          [this](std::span<const std::int64_t> values) { accept_values(values); });
    }
    // On reader thread format.reader: into that thread's own windows, no lock, no atomic.
    ReaderShare& share = *shares_.at(format.reader - 1);
    return std::make_unique<source::IntegerDecoder>(
        max_line_bytes, share.values, [this, &share](std::span<const std::int64_t> values) {
          auto& totals = share.windows.accumulator_at(clock_());
          for (const std::int64_t v : values) totals.add(v);
        });
  };
}

void Pipeline::assigned(std::int32_t partition, std::int64_t offset, const std::string& metadata) {
  const auto resume = window::ResumePoint::from(offset, metadata);
  if (offset >= 0 && !resume) {
    log_.window->warn(
        "pipeline {}: partition {}: the offset committed for the group ({}) carries no tumbled "
        "resume point (committed by another consumer?); reading from it with empty windows",
        settings_.name, partition, offset);
  }
  partitioned_->assign(partition, offset, resume);
  committed_.erase(partition);
}

std::vector<source::KafkaCommit> Pipeline::revoked(const std::vector<std::int32_t>& partitions) {
  std::vector<source::KafkaCommit> commits;
  std::vector<std::uint64_t> unsent;
  for (const std::int32_t partition : partitions) {
    if (!partitioned_->assigned(partition)) continue;
    if (const auto point = partitioned_->resume_point(partition)) {
      commits.push_back({partition, point->offset, point->metadata()});
    }
    // Its next owner recomputes these points from the commit, maybe with more late values:
    // sending ours after theirs could put an older version back.
    const auto seqs = partitioned_->revoke(partition);
    unsent.insert(unsent.end(), seqs.begin(), seqs.end());
    committed_.erase(partition);
  }
  const std::size_t dropped = queue_.remove(unsent);
  if (dropped > 0) {
    log_.window->info("pipeline {}: {} points of revoked partitions left to their next owner",
                      settings_.name, dropped);
  }
  return commits;
}

void Pipeline::commit_offsets() {
  if (!kafka_) return;
  partitioned_->acknowledged_below(queue_.acked_below());
  std::vector<source::KafkaCommit> commits;
  for (const auto& [partition, point] : partitioned_->resume_points()) {
    const auto last = committed_.find(partition);
    if (last != committed_.end() && last->second == point) continue;
    commits.push_back({partition, point.offset, point.metadata()});
    committed_[partition] = point;
  }
  kafka_->commit(commits);
}

void Pipeline::replay_inputs(const std::vector<store::AcceptedInput>& inputs) {
  if (inputs.empty()) return;
  if (!keyed_) {
    throw std::runtime_error("pipeline " + settings_.name +
                             ": the state store holds accepted line-protocol writes, but the "
                             "pipeline reads integers; restore the format, or give the pipeline "
                             "another name");
  }
  // Each as it was decoded the first time: same clock, watermark and precision, on top of the
  // checkpoint before it, so every line takes the same way (counted or refused) again.
  std::uint64_t lines = 0;
  for (const auto& input : inputs) {
    keyed_->restore_time(input.watermark, input.newest_event);
    chunk_now_ = input.read_at;
    source::LineProtocolDecoder decoder(input.body.size() + 1, keyed_lines(input.precision));
    decoder.feed(input.body);
    decoder.finish();
    lines += decoder.counters().accepted;
  }
  next_input_seq_ = inputs.back().seq + 1;
  log_.store->info(
      "pipeline {}: replayed {} acknowledged write requests ({} lines) logged after the last "
      "checkpoint",
      settings_.name, inputs.size(), lines);
}

void Pipeline::restore_keyed(store::RestoredPipeline& restored) {
  for (const auto& type : restored.field_types) {
    keyed_->restore_field_type(type.measurement, type.field, type.is_float);
  }
  for (const auto& pair : restored.keyed_pairs) {
    if (!keyed_->restore_pair(pair.start, pair.key, pair.value)) {
      throw std::runtime_error("pipeline " + settings_.name +
                               ": corrupt keyed window record in the state store (window " +
                               std::to_string(pair.start) + ", key " + pair.key + ")");
    }
  }
  if (restored.watermark)
    keyed_->restore_time(restored.watermark->first, restored.watermark->second);
}

void Pipeline::start() {
  started_at_ = clock_();
  auto restored = store_.load(settings_.name);
  if (partitioned_) {
    // Kafka holds this pipeline's state: each partition is recomputed from its committed resume
    // point. Points of an earlier run could be older versions of what another instance has
    // written since; windows of another format are no use.
    if (!restored.points.empty() || !restored.keyed_pairs.empty() ||
        !restored.open_windows.empty()) {
      log_.store->info(
          "pipeline {}: reads Kafka: {} unsent points and {} open windows of the last run are "
          "recomputed from the committed offsets instead of restored",
          settings_.name, restored.points.size(),
          restored.keyed_pairs.size() + restored.open_windows.size());
    }
    restored.points.clear();
    restored.keyed_pairs.clear();
    restored.open_windows.clear();
    restored.field_types.clear();
    restored.inputs.clear();
    restored.watermark.reset();
  }
  for (const auto& [start, totals] : restored.open_windows) windows_.restore(start, totals);
  if (keyed_) {
    restore_keyed(restored);
    replay_inputs(restored.inputs);
  } else if (!restored.keyed_pairs.empty() || !restored.inputs.empty()) {
    throw std::runtime_error("pipeline " + settings_.name +
                             ": the state store holds keyed windows of source.format: "
                             "line_protocol, but the pipeline reads integers; restore the "
                             "format, or give the pipeline another name");
  }
  for (auto& point : restored.points) queue_.restore(point.seq, std::move(point.line));
  queue_.skip_to_seq(restored.next_seq);
  saved_below_ = queue_.next_seq();
  if (keyed_ && !restored.open_windows.empty()) {
    throw std::runtime_error("pipeline " + settings_.name +
                             ": the state store holds integer windows, but the pipeline reads "
                             "source.format: line_protocol; restore the format, or give the "
                             "pipeline another name");
  }
  if (!restored.open_windows.empty() || !restored.points.empty() || !restored.keyed_pairs.empty()) {
    log_.store->info(
        "pipeline {}: restored {} open windows, {} open (key, window) pairs and {} "
        "unsent points",
        settings_.name, restored.open_windows.size(), restored.keyed_pairs.size(),
        restored.points.size());
  }
  writer_.on_progress([this] {
    apply_backpressure();
    commit_offsets();
  });
  apply_backpressure();
  source_->listen();
  started_ = true;
  spawn(source_->run(), "source");
  spawn(window_clock(), "window clock");
  spawn(checkpoint_loop(), "checkpoint loop");
  spawn(writer_.run(), "InfluxDB writer");
  if (settings_.reads_http()) {
    wal_syncer_ = std::make_unique<asio::thread_pool>(1);
    spawn(commit_loop(), "commit loop");
  }
}

void Pipeline::spawn(asio::awaitable<void> task, const char* what) {
  ++tasks_running_;
  // `this` is safe here: shutdown() waits for every task to end before the pipeline may go away.
  asio::co_spawn(io_, std::move(task), [this, what](std::exception_ptr error) {
    --tasks_running_;
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      log_.window->critical("pipeline {}: {} failed: {}", settings_.name, what, e.what());
    }
  });
}

void Pipeline::set_checkpoint_interval(milliseconds interval) {
  checkpoint_interval_ = interval;
  checkpoint_timer_.cancel();  // the loop checkpoints once and waits with the new interval
}

void Pipeline::accept_values(std::span<const std::int64_t> values) {
  // One clock read per chunk: all values of one read belong to the window of that moment.
  auto& totals = windows_.accumulator_at(clock_());
  for (const std::int64_t v : values) totals.add(v);
}

void Pipeline::enqueue(std::string line, sink::TimeMs now) {
  queue_.push(std::move(line), now);
  if (settings_.buffer_when_full == "drop_oldest" && queue_.size() > settings_.buffer_max_points) {
    if (counters_.points_dropped++ == 0) {
      log_.window->warn(
          "pipeline {}: {} points wait for InfluxDB (buffer.max_points); dropping "
          "the oldest (buffer.when_full: drop_oldest)",
          settings_.name, settings_.buffer_max_points);
    }
    queue_.drop_oldest();
  }
}

void Pipeline::close_windows(sink::TimeMs now) {
  std::size_t emitted = 0;
  if (partitioned_ || keyed_) {
    const auto queue_point = [&](std::string&& point) {
      enqueue(std::move(point), now);
      return queue_.next_seq() - 1;
    };
    std::uint64_t saturated = 0;
    if (partitioned_) {
      if (source_->paused()) partitioned_->not_idle(now);  // paused by us: unread lines may wait
      partitioned_->advance(now);
      emitted = partitioned_->emit(queue_point);
      saturated = partitioned_->counters().sums_saturated;
    } else {
      if (source_->paused()) keyed_->not_idle(now);
      keyed_->advance(now);
      emitted = keyed_->emit([&](std::string&& point) { queue_point(std::move(point)); });
      saturated = keyed_->counters().sums_saturated;
    }
    if (saturated > counters_.sums_saturated) {
      log_.window->warn(
          "pipeline {}: {} points had a sum outside int64 or double; written clamped with "
          "<field>_sum_saturated=true",
          settings_.name, saturated - counters_.sums_saturated);
      counters_.sums_saturated = saturated;
    }
  } else {
    for (const auto& window : windows_.close_due(now)) {
      bool saturated = false;
      const auto fields = window::window_fields(window.totals, settings_.aggregates, saturated);
      std::string line;
      sink::append_point(line, settings_.measurement, settings_.tags, fields, window.end);
      enqueue(std::move(line), now);
      ++emitted;
      if (saturated) {
        ++counters_.sums_saturated;
        log_.window->warn(
            "pipeline {}: the sum of window ending {} is outside int64; written "
            "clamped with sum_saturated=true",
            settings_.name, window.end);
      }
      log_.window->debug("pipeline {}: window [{}, {}) closed with {} values", settings_.name,
                         window.start, window.end, window.totals.count);
    }
  }
  if (emitted == 0) return;
  counters_.windows_emitted += emitted;
  // Make the new points durable before InfluxDB may see them (see point_queue.hpp).
  checkpoint();
  apply_backpressure();
}

void Pipeline::apply_backpressure() {
  const bool full =
      settings_.buffer_when_full == "block" && queue_.size() >= settings_.buffer_max_points;
  const bool pause = !stopping_ && (full || checkpoint_failing_);
  if (pause && !source_->paused()) {
    source_->pause();
    log_.tcp->warn("pipeline {}: reading from clients paused: {}", settings_.name,
                   full ? "buffer.max_points points wait for InfluxDB"
                        : "checkpoints to the state store fail");
  } else if (!pause && source_->paused()) {
    source_->resume();
    log_.tcp->info("pipeline {}: reading from clients resumed", settings_.name);
  }
}

void Pipeline::log_inputs() {
  if (const auto error = store_.append_inputs(settings_.name, pending_inputs_)) {
    store_failed("logging accepted writes failed: " + *error);
    return;  // the next checkpoint holds them instead
  }
  pending_inputs_.clear();
  commits_written_ = commits_wanted_;  // every ticket is one logged input
}

void Pipeline::store_failed(const std::string& error) {
  ++counters_.checkpoint_failures;
  checkpoint_failing_ = true;
  apply_backpressure();
  if (error != last_checkpoint_error_) {
    log_.store->error(
        "pipeline {}: {}; new points and writes are held back until a checkpoint succeeds",
        settings_.name, error);
    last_checkpoint_error_ = error;
  }
}

void Pipeline::checkpoint(bool sync) {
  const auto began = std::chrono::steady_clock::now();
  const std::optional<window::KeyedChanges> keyed =
      keyed_ ? std::optional(keyed_->changes()) : std::nullopt;
  const std::uint64_t commits = commits_wanted_;  // the decoded requests this checkpoint holds
  const auto error = store_.save(
      settings_.name, {windows_.open_windows(), queue_.points(), saved_below_, queue_.next_seq(),
                       keyed ? &*keyed : nullptr, sync, next_input_seq_});
  if (!error) {
    pending_inputs_.clear();  // their effect is in this checkpoint; their records are gone
    commits_written_ = commits;
    if (sync) commits_synced_ = commits;
    if (commits_written_ > commits_synced_) commit_work_.cancel();  // the commit loop syncs it
  }
  last_checkpoint_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  last_checkpoint_bytes_ = store_.last_save_bytes();
  if (error) {
    store_failed("checkpoint failed: " + *error);
    return;
  }
  if (!last_checkpoint_error_.empty()) {
    log_.store->info("pipeline {}: checkpoints succeed again", settings_.name);
    last_checkpoint_error_.clear();
  }
  if (checkpoint_failing_) {
    checkpoint_failing_ = false;
    apply_backpressure();
  }
  ++counters_.checkpoints;
  if (keyed_) keyed_->saved();
  const bool new_points = queue_.next_seq() > saved_below_;
  saved_below_ = queue_.next_seq();
  queue_.mark_durable_through(saved_below_ - 1);
  if (new_points) writer_.wake();
}

bool Pipeline::store_dead_letter(const sink::PointQueue::Batch& batch, const std::string& error) {
  store::DeadLetter letter{settings_.name, batch.last_seq + 1 - batch.points, clock_(), error,
                           batch.body};
  if (const auto failure = store_.add_dead_letter(letter)) {
    log_.store->error("pipeline {}: cannot store dead letter: {}", settings_.name, *failure);
    return false;
  }
  return true;
}

PipelineStats Pipeline::stats() const {
  PipelineStats s;
  s.name = settings_.name;
  s.listening = started_ && !stopping_;
  s.source_paused = source_->paused();
  const auto& source = source_->counters();
  s.connections_open = source.connections_open;
  s.connections_accepted = source.connections_accepted;
  s.connections_refused = source.connections_refused;
  s.connections_evicted = source.connections_evicted;
  s.connections_idle_closed = source.connections_idle_closed;
  s.connection_failures = source.connection_failures;
  s.reads_http = settings_.reads_http();
  s.requests = source.requests;
  s.log_syncs = counters_.log_syncs;
  if (kafka_) {
    s.reads_kafka = true;
    s.kafka = kafka_->kafka_counters();
    s.partitions = kafka_->partition_states();
    s.kafka_trouble = kafka_->broker_trouble();
  }
  s.lines = source.lines;
  s.windows_emitted = counters_.windows_emitted;
  if (keyed_ || partitioned_) {
    s.open_keys = keyed_ ? keyed_->open_pairs() : partitioned_->open_pairs();
    s.points_updated = (keyed_ ? keyed_->counters() : partitioned_->counters()).points_updated;
    const sink::TimeMs watermark =
        keyed_ ? keyed_->watermark()
               : partitioned_->watermark().value_or(std::numeric_limits<sink::TimeMs>::min());
    if (settings_.window_time == "event" && watermark > std::numeric_limits<sink::TimeMs>::min()) {
      s.watermark_lag_seconds =
          static_cast<double>(std::max<sink::TimeMs>(clock_() - watermark, 0)) / 1000.0;
    }
  }
  s.sums_saturated = counters_.sums_saturated;
  const auto& sink = writer_.counters();
  s.points_written = sink.points_written;
  s.batches_sent = sink.batches_written;
  s.batch_failed_attempts = sink.failed_attempts;
  s.batches_dead_lettered = sink.batches_dead_lettered;
  s.batches_split = sink.batches_split;
  s.points_dead_lettered = sink.points_dead_lettered;
  s.points_dropped = counters_.points_dropped;
  s.points_waiting = queue_.size();
  if (!queue_.empty()) {
    // Points restored from the store carry no queue time: they have waited at least since start.
    const sink::TimeMs since = std::max(queue_.points().front().queued_at, started_at_);
    const sink::TimeMs age = std::max<sink::TimeMs>(clock_() - since, 0);
    s.oldest_waiting_age_seconds = static_cast<double>(age) / 1000.0;
  }
  s.write_seconds = sink.write_seconds;
  s.last_write_success_ms = sink.last_success_ms;
  s.last_write_failure = sink.last_failure;
  s.checkpoints = counters_.checkpoints;
  s.checkpoints_failed = counters_.checkpoint_failures;
  s.last_checkpoint_seconds = last_checkpoint_seconds_;
  s.last_checkpoint_bytes = last_checkpoint_bytes_;
  return s;
}

asio::awaitable<void> Pipeline::window_clock() {
  while (!stopping_) {
    // The time is read before the source synchronizes: what a reader thread reads after that
    // belongs to a window that stays open.
    const sink::TimeMs now = clock_();
    co_await source_->synchronize();
    if (stopping_) break;
    close_windows(now);
    // Processing time: sleep until the next window boundary (a timer that fires early just
    // loops once more). Event time: data moves the watermark, so look again soon.
    const sink::TimeMs after = clock_();
    const sink::TimeMs next_boundary = windows_.start_of(after) + windows_.size();
    const bool event_time = keyed_ && settings_.window_time == "event";
    window_timer_.expires_after(event_time ? kEventTimeTick : milliseconds(next_boundary - after));
    co_await window_timer_.async_wait(use_tuple);
  }
}

asio::awaitable<void> Pipeline::checkpoint_loop() {
  while (!stopping_) {
    checkpoint_timer_.expires_after(checkpoint_interval_);
    co_await checkpoint_timer_.async_wait(use_tuple);
    co_await source_->synchronize();  // reader threads' values are in the checkpoint too
    if (stopping_) break;
    checkpoint();
    report_rejections();
    commit_offsets();  // windows may be complete without a point (a too-late record's only)
  }
}

void Pipeline::report_rejections() {
  const auto& lines = source_->counters().lines;
  const sink::TimeMs now = clock_();
  if (lines.rejected() == reported_rejections_ ||
      now - last_rejection_report_ < kRejectionReportEveryMs) {
    return;
  }
  std::string reasons;
  for (const auto reason : source::kRejections) {
    const std::uint64_t count = lines[reason];
    if (count > 0)
      reasons +=
          (reasons.empty() ? "" : ", ") + std::to_string(count) + " " + source::describe(reason);
  }
  log_.tcp->warn("pipeline {}: {} lines rejected so far ({})", settings_.name, lines.rejected(),
                 reasons);
  reported_rejections_ = lines.rejected();
  last_rejection_report_ = now;
}

asio::awaitable<void> Pipeline::shutdown(milliseconds flush_timeout) {
  stopping_ = true;
  commit_work_.cancel();
  source_->stop();
  window_timer_.cancel();
  checkpoint_timer_.cancel();
  // What reader threads read before they stopped, then the windows whose end has passed are due
  // now; open ones stay in the store.
  co_await source_->synchronize();
  close_windows(clock_());
  checkpoint();

  writer_.flush_all();
  const auto deadline = std::chrono::steady_clock::now() + flush_timeout;
  asio::steady_timer poll(io_);
  while (queue_.sendable() > 0 && std::chrono::steady_clock::now() < deadline) {
    poll.expires_after(milliseconds(10));
    co_await poll.async_wait(use_tuple);
  }
  writer_.stop();
  checkpoint(/*sync=*/commits_wanted_ > commits_synced_);
  if (kafka_) {
    commit_offsets();
    kafka_->close();  // leaves the group: the revocation commits what was acknowledged
  }
  // Requests still waiting for their commit get their answer now, whatever it is.
  commits_final_ = true;
  commit_signal_.cancel();

  // Wait until every coroutine of this pipeline has ended, so that the caller may destroy it
  // (a reload does). The writer's request ends when stop() closes its connection, the loops at
  // their cancelled timers; stop() is repeated for a connection whose handler had been queued
  // but had not registered itself yet when the source first stopped.
  while (tasks_running_ > 0 || source_->counters().connections_open > 0) {
    source_->stop();
    poll.expires_after(milliseconds(10));
    co_await poll.async_wait(use_tuple);
  }

  const auto& lines = source_->counters().lines;
  const auto& sink = writer_.counters();
  log_.window->info(
      "pipeline {} stopped: {} {} accepted, {} lines rejected, {} windows emitted, {} points "
      "written, {} dead-lettered, {} dropped, {} still waiting (kept for the next start), {} "
      "connections refused over max_connections",
      settings_.name, lines.accepted, keyed_ ? "lines" : "values", lines.rejected(),
      counters_.windows_emitted, sink.points_written, sink.points_dead_lettered,
      counters_.points_dropped, queue_.size(), source_->counters().connections_refused);
}

}  // namespace tumbled::pipeline
