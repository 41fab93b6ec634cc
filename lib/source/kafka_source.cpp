#include "source/kafka_source.hpp"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace tumbled::source {

namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Records handled before the loop lets other work run (the writer, the window clock).
constexpr int kRecordsPerTurn = 4096;
// A safety net beside the queue's wake-up pipe: polls also serve librdkafka's callbacks.
constexpr std::chrono::milliseconds kPollEvery{200};
constexpr int kCommittedTimeoutMs = 10'000;
constexpr int kCommittedAttempts = 3;

std::string partition_list(const rd_kafka_topic_partition_list_t& list) {
  std::string out;
  for (int i = 0; i < list.cnt; ++i) {
    out += (i ? "," : "") + std::to_string(list.elems[i].partition);
  }
  return out.empty() ? "none" : out;
}

}  // namespace

// librdkafka's callbacks. Every one is served from rd_kafka_consumer_poll() (the main queue is
// forwarded to the consumer's, and so are its logs), which only the source's loop calls.
struct KafkaCallbacks {
  static KafkaSource& of(void* opaque) { return *static_cast<KafkaSource*>(opaque); }

  static void rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t error,
                        rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    KafkaSource& self = of(opaque);
    if (error == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      self.assign(partitions);
    } else if (error == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      self.revoke(partitions);
    } else {
      self.log_->error("kafka: rebalance failed: {}; reading nothing until the next one",
                       rd_kafka_err2str(error));
      rd_kafka_assign(rk, nullptr);
    }
  }

  static void error(rd_kafka_t*, int error, const char* reason, void* opaque) {
    KafkaSource& self = of(opaque);
    ++self.kafka_counters_.errors;
    const auto code = static_cast<rd_kafka_resp_err_t>(error);
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
      self.log_->critical("kafka: fatal consumer error: {}", reason);
    } else if (self.trouble_.empty()) {
      self.log_->warn("kafka: {} ({}); librdkafka retries (logged once until it recovers)", reason,
                      rd_kafka_err2name(code));
    }
    self.trouble_ = reason;
  }

  static void committed(rd_kafka_t*, rd_kafka_resp_err_t error,
                        rd_kafka_topic_partition_list_t* offsets, void* opaque) {
    KafkaSource& self = of(opaque);
    if (error == RD_KAFKA_RESP_ERR__NO_OFFSET) return;  // nothing to commit
    bool failed = error != RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; offsets && i < offsets->cnt; ++i) {
      const auto& entry = offsets->elems[i];
      if (entry.err) {
        failed = true;
        error = entry.err;
      } else if (!failed) {
        self.committed_[entry.partition] = entry.offset;
      }
    }
    if (failed) {
      if (self.kafka_counters_.commit_failures++ == 0 || self.trouble_.empty()) {
        self.log_->warn("kafka: committing offsets failed: {}; retried with the next commit",
                        rd_kafka_err2str(error));
      }
      return;
    }
    ++self.kafka_counters_.commits;
    self.trouble_over();
  }

  static void log(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
    KafkaSource& self = of(rd_kafka_opaque(rk));
    const auto spd_level = level <= 3   ? spdlog::level::err
                           : level == 4 ? spdlog::level::warn
                           : level <= 6 ? spdlog::level::info
                                        : spdlog::level::debug;
    self.log_->log(spd_level, "kafka: {}: {}", facility, text);
  }
};

KafkaSource::KafkaSource(asio::any_io_executor executor, const config::KafkaSourceConfig& settings,
                         DecoderFactory decoders, PartitionOwner& owner,
                         std::shared_ptr<spdlog::logger> log)
    : executor_(executor),
      settings_(settings),
      make_decoder_(std::move(decoders)),
      owner_(owner),
      log_(std::move(log)),
      tick_(executor) {}

KafkaSource::~KafkaSource() {
  if (consumer_) {
    owner_gone_ = true;
    if (!closed_) rd_kafka_consumer_close(consumer_);
    if (queue_) rd_kafka_queue_destroy(queue_);
    rd_kafka_destroy(consumer_);
  }
  wake_.reset();  // closes the read end
  if (wake_pipe_[1] >= 0) ::close(wake_pipe_[1]);
}

void KafkaSource::listen() {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const auto set = [&](const std::string& name, const std::string& value) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("source.kafka: " + name + ": " + error);
    }
  };
  set("bootstrap.servers", settings_.brokers);
  set("group.id", settings_.group);
  // Offsets are committed by the pipeline, after InfluxDB acknowledged: never automatically.
  set("enable.auto.commit", "false");
  set("enable.auto.offset.store", "false");
  set("auto.offset.reset", "earliest");  // a new group reads what the topic holds
  set("log.queue", "true");              // logs are served on the loop, like every callback
  for (const auto& [name, value] : settings_.properties) set(name, value);
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_rebalance_cb(conf, &KafkaCallbacks::rebalance);
  rd_kafka_conf_set_error_cb(conf, &KafkaCallbacks::error);
  rd_kafka_conf_set_offset_commit_cb(conf, &KafkaCallbacks::committed);
  rd_kafka_conf_set_log_cb(conf, &KafkaCallbacks::log);

  consumer_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof error);
  if (!consumer_) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("source.kafka: cannot create the consumer: ") + error);
  }
  rd_kafka_poll_set_consumer(consumer_);
  rd_kafka_set_log_queue(consumer_, nullptr);  // to the main queue, forwarded to the consumer's
  queue_ = rd_kafka_queue_get_consumer(consumer_);

  if (::pipe2(wake_pipe_, O_NONBLOCK | O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("source.kafka: pipe: ") + std::strerror(errno));
  }
  wake_ = std::make_unique<asio::posix::stream_descriptor>(executor_, wake_pipe_[0]);
  rd_kafka_queue_io_event_enable(queue_, wake_pipe_[1], "1", 1);

  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, settings_.topic.c_str(), RD_KAFKA_PARTITION_UA);
  const rd_kafka_resp_err_t subscribed = rd_kafka_subscribe(consumer_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (subscribed) {
    throw std::runtime_error("source.kafka: cannot subscribe to topic " + settings_.topic + ": " +
                             rd_kafka_err2str(subscribed));
  }
  log_->info("kafka: consumer of topic {} in group {} (brokers {})", settings_.topic,
             settings_.group, settings_.brokers);
}

asio::awaitable<void> KafkaSource::run() {
  bool wake_armed = false;
  while (!stopped_) {
    if (poll_some()) {
      co_await asio::post(executor_, asio::use_awaitable);  // let the pipeline's other work run
      continue;
    }
    if (stopped_) break;
    if (!wake_armed) {
      wake_armed = true;
      wake_->async_wait(asio::posix::stream_descriptor::wait_read,
                        [this, &wake_armed](boost::system::error_code) {
                          wake_armed = false;
                          tick_.cancel();
                        });
    }
    tick_.expires_after(kPollEvery);
    co_await tick_.async_wait(use_tuple);
    char drain[64];
    while (::read(wake_pipe_[0], drain, sizeof drain) > 0) {
    }
  }
  if (wake_armed) {
    wake_->cancel();
    // The handler refers to wake_armed, on this frame: wait until it has run.
    while (wake_armed) {
      tick_.expires_after(std::chrono::milliseconds(1));
      co_await tick_.async_wait(use_tuple);
    }
  }
}

bool KafkaSource::poll_some() {
  for (int i = 0; i < kRecordsPerTurn && !stopped_; ++i) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer_, 0);
    if (!message) return false;
    handle(*message);
    rd_kafka_message_destroy(message);
  }
  return !stopped_;
}

void KafkaSource::handle(const rd_kafka_message_t& message) {
  if (message.err) {
    if (message.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
    KafkaCallbacks::error(consumer_, message.err, rd_kafka_message_errstr(&message), this);
    return;
  }
  const auto decoder = decoders_.find(message.partition);
  if (decoder == decoders_.end()) return;  // revoked meanwhile: the next owner reads it
  ++kafka_counters_.records;
  trouble_over();
  owner_.reading(message.partition, message.offset);
  const std::string_view value(static_cast<const char*>(message.payload), message.len);
  const std::uint64_t rejected_before = decoder->second->counters().rejected();
  decoder->second->feed(value);
  if (!value.empty() && value.back() != '\n') decoder->second->feed("\n");
  owner_.consumed(message.partition, message.offset);
  positions_[message.partition] = message.offset + 1;
  if (decoder->second->counters().rejected() > rejected_before && rejected_before == 0) {
    log_->warn("kafka: partition {} offset {}: {} (further rejections on it are only counted)",
               message.partition, message.offset, decoder->second->last_rejection());
  }
  flush_line_counters(message.partition);
}

void KafkaSource::flush_line_counters(std::int32_t partition) {
  const auto decoder = decoders_.find(partition);
  if (decoder == decoders_.end()) return;
  LineCounters& reported = reported_[partition];
  const LineCounters& now = decoder->second->counters();
  counters_.lines += now;
  counters_.lines -= reported;
  reported = now;
}

void KafkaSource::assign(rd_kafka_topic_partition_list_t* partitions) {
  ++kafka_counters_.rebalances;
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int attempt = 0; attempt < kCommittedAttempts; ++attempt) {
    error = rd_kafka_committed(consumer_, partitions, kCommittedTimeoutMs);
    if (!error) break;
  }
  if (error) {
    // Without the committed resume points, windows already complete in InfluxDB could be
    // emitted again from part of their records: read nothing rather than something wrong.
    log_->error(
        "kafka: cannot read the committed offsets of partitions {}: {}; they are not read "
        "until the next rebalance",
        partition_list(*partitions), rd_kafka_err2str(error));
    rd_kafka_assign(consumer_, nullptr);
    return;
  }
  std::string offsets;
  for (int i = 0; i < partitions->cnt; ++i) {
    auto& entry = partitions->elems[i];
    const std::string metadata(static_cast<const char*>(entry.metadata), entry.metadata_size);
    const std::int64_t offset = entry.offset >= 0 ? entry.offset : -1;
    owner_.assigned(entry.partition, offset, metadata);
    StreamFormat format;
    format.partition = entry.partition;
    decoders_[entry.partition] = make_decoder_(format);
    reported_[entry.partition] = LineCounters{};
    positions_[entry.partition] = offset;
    offsets += (i ? ", " : "") + std::to_string(entry.partition) + "@" +
               (offset >= 0 ? std::to_string(offset) : std::string("start"));
  }
  if (const auto assigned = rd_kafka_assign(consumer_, partitions)) {
    log_->error("kafka: cannot take partitions {}: {}", partition_list(*partitions),
                rd_kafka_err2str(assigned));
  }
  if (paused_) rd_kafka_pause_partitions(consumer_, partitions);
  trouble_over();
  log_->info("kafka: assigned partitions of {}: {}", settings_.topic,
             offsets.empty() ? "none" : offsets);
}

void KafkaSource::revoke(rd_kafka_topic_partition_list_t* partitions) {
  std::vector<std::int32_t> revoked;
  for (int i = 0; i < partitions->cnt; ++i) revoked.push_back(partitions->elems[i].partition);
  if (!owner_gone_) commit_now(owner_.revoked(revoked), /*wait=*/true);
  for (const std::int32_t p : revoked) {
    flush_line_counters(p);
    decoders_.erase(p);
    reported_.erase(p);
    positions_.erase(p);
    committed_.erase(p);
  }
  rd_kafka_assign(consumer_, nullptr);
  log_->info("kafka: partitions {} revoked", partition_list(*partitions));
}

void KafkaSource::commit(const std::vector<KafkaCommit>& commits) {
  if (consumer_ && !closed_) commit_now(commits, /*wait=*/false);
}

void KafkaSource::commit_now(const std::vector<KafkaCommit>& commits, bool wait) {
  if (commits.empty()) return;
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(commits.size()));
  for (const auto& c : commits) {
    auto* entry = rd_kafka_topic_partition_list_add(list, settings_.topic.c_str(), c.partition);
    entry->offset = c.offset;
    // The list frees it with free(): hand it a malloc'd copy.
    entry->metadata = std::malloc(c.metadata.size() + 1);
    std::memcpy(entry->metadata, c.metadata.data(), c.metadata.size());
    entry->metadata_size = c.metadata.size();
  }
  const rd_kafka_resp_err_t error = rd_kafka_commit(consumer_, list, wait ? 0 : 1);
  if (wait && error) {
    log_->warn(
        "kafka: committing offsets of revoked partitions failed: {}; their next owner "
        "starts from their previous commit",
        rd_kafka_err2str(error));
  }
  rd_kafka_topic_partition_list_destroy(list);
}

void KafkaSource::trouble_over() {
  if (trouble_.empty()) return;
  log_->info("kafka: the consumer works again (after: {})", trouble_);
  trouble_.clear();
}

void KafkaSource::stop() {
  stopped_ = true;
  tick_.cancel();
  if (wake_) wake_->cancel();
  if (consumer_ && !paused_) pause();  // stops fetching what nobody will read
}

void KafkaSource::close() {
  if (!consumer_ || closed_) return;
  closed_ = true;
  // Serves the revocation (the owner's commit included) before leaving the group.
  if (const auto error = rd_kafka_consumer_close(consumer_)) {
    log_->warn("kafka: leaving the group: {}", rd_kafka_err2str(error));
  } else {
    log_->info("kafka: left group {}", settings_.group);
  }
}

void KafkaSource::pause() {
  paused_ = true;
  ++counters_.pauses;
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (consumer_ && !rd_kafka_assignment(consumer_, &assignment)) {
    rd_kafka_pause_partitions(consumer_, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
  }
}

void KafkaSource::resume() {
  if (stopped_) return;  // stop() paused for good
  paused_ = false;
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (consumer_ && !rd_kafka_assignment(consumer_, &assignment)) {
    rd_kafka_resume_partitions(consumer_, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
  }
}

const SourceCounters& KafkaSource::counters() const {
  return counters_;
}

std::map<std::int32_t, KafkaCounters::PartitionState> KafkaSource::partition_states() const {
  std::map<std::int32_t, KafkaCounters::PartitionState> out;
  for (const auto& [partition, position] : positions_) {
    KafkaCounters::PartitionState& state = out[partition];
    state.position = position;
    if (const auto c = committed_.find(partition); c != committed_.end()) {
      state.committed = c->second;
    }
    std::int64_t low = -1, high = -1;
    if (position >= 0 &&
        rd_kafka_get_watermark_offsets(consumer_, settings_.topic.c_str(), partition, &low,
                                       &high) == 0 &&
        high >= 0) {
      state.lag = std::max<std::int64_t>(high - position, 0);
    }
  }
  return out;
}

}  // namespace tumbled::source
