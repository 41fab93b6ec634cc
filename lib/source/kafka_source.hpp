// KafkaSource: reads one topic as a member of a Kafka consumer group (librdkafka's C API), so that
// several tumbled instances share its partitions.
//
// The consumer's queue wakes the event loop through a pipe (rd_kafka_queue_io_event_enable), and
// every librdkafka callback (rebalance, errors, commit results) is served by consumer polls made
// on the loop: the source needs no lock, and the pipeline sees partitions come and go between two
// records. Offsets are never committed automatically: the pipeline's PartitionOwner decides what
// to commit (its results' resume points, window/partitioned_windows.hpp) and the source commits
// it: commit() after InfluxDB acknowledged points, and synchronously on revoke, before the
// partitions are released. On assignment the committed offset and its metadata are fetched and
// handed to the owner; reading starts at that offset (auto.offset.reset: earliest without one).
// A record's value holds one or more lines of the pipeline's format, decoded by a decoder of the
// partition's own.
// Faults: brokers unreachable are retried by librdkafka; the first error of an episode is logged
// (the rest counted) and broker_trouble() says so until a record, an assignment or a commit
// succeeds. pause() pauses every assigned partition (librdkafka stops fetching), never drops.
// close() leaves the group (revoke and its commit included); the destructor closes without
// asking the owner. Runs on one executor; all members are called from it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "source/decoder.hpp"
#include "source/source.hpp"

struct rd_kafka_s;
struct rd_kafka_queue_s;
struct rd_kafka_topic_partition_list_s;
struct rd_kafka_message_s;

namespace spdlog {
class logger;
}

namespace tumbled::source {

struct KafkaCommit {
  std::int32_t partition;
  std::int64_t offset;
  std::string metadata;
};

// What the pipeline does as partitions come, go and are read.
class PartitionOwner {
 public:
  virtual ~PartitionOwner() = default;
  // The partition is ours, to be read from `offset` (< 0: no commit yet; the first record says
  // where reading starts) with the committed metadata.
  virtual void assigned(std::int32_t partition, std::int64_t offset,
                        const std::string& metadata) = 0;
  // The partitions go to another member: what to commit for them before they are released.
  virtual std::vector<KafkaCommit> revoked(const std::vector<std::int32_t>& partitions) = 0;
  // The record at `offset` is about to be decoded / has been decoded whole.
  virtual void reading(std::int32_t partition, std::int64_t offset) = 0;
  virtual void consumed(std::int32_t partition, std::int64_t offset) = 0;
};

class KafkaSource final : public Source {
 public:
  KafkaSource(boost::asio::any_io_executor executor, const config::KafkaSourceConfig& settings,
              DecoderFactory decoders, PartitionOwner& owner, std::shared_ptr<spdlog::logger> log);
  ~KafkaSource() override;

  void listen() override;  // creates the consumer and subscribes; throws with librdkafka's reason
  boost::asio::awaitable<void> run() override;
  void stop() override;  // stops reading; the group is left by close()
  void pause() override;
  void resume() override;
  bool paused() const override { return paused_; }
  const SourceCounters& counters() const override;
  config::Endpoint local_endpoint() const override { return {}; }

  // Commits these offsets (with metadata) without waiting; the outcome is logged and counted.
  void commit(const std::vector<KafkaCommit>& commits);
  // Leaves the group: the owner's revoked() commits synchronously first.
  void close();

  const KafkaCounters& kafka_counters() const { return kafka_counters_; }
  // Per assigned partition: position, last commit and lag (from the fetcher's cached high
  // watermark).
  std::map<std::int32_t, KafkaCounters::PartitionState> partition_states() const;
  // The latest consumer error of an unresolved episode ("" when fine), for /ready.
  const std::string& broker_trouble() const { return trouble_; }

 private:
  friend struct KafkaCallbacks;  // librdkafka's C callbacks, served on this executor
  void assign(rd_kafka_topic_partition_list_s* partitions);
  void revoke(rd_kafka_topic_partition_list_s* partitions);
  void handle(const rd_kafka_message_s& message);
  bool poll_some();  // true if more may wait
  void commit_now(const std::vector<KafkaCommit>& commits, bool wait);
  void trouble_over();
  void flush_line_counters(std::int32_t partition);

  boost::asio::any_io_executor executor_;
  config::KafkaSourceConfig settings_;
  DecoderFactory make_decoder_;
  PartitionOwner& owner_;
  std::shared_ptr<spdlog::logger> log_;

  rd_kafka_s* consumer_ = nullptr;
  rd_kafka_queue_s* queue_ = nullptr;
  int wake_pipe_[2] = {-1, -1};
  std::unique_ptr<boost::asio::posix::stream_descriptor> wake_;
  boost::asio::steady_timer tick_;
  std::map<std::int32_t, std::unique_ptr<Decoder>> decoders_;
  std::map<std::int32_t, LineCounters> reported_;  // of each decoder, already in counters_
  std::map<std::int32_t, std::int64_t> committed_;
  std::map<std::int32_t, std::int64_t> positions_;
  bool paused_ = false;
  bool stopped_ = false;
  bool closed_ = false;
  bool owner_gone_ = false;  // the destructor closes: revocations are not handed to the owner
  std::string trouble_;
  mutable SourceCounters counters_;
  KafkaCounters kafka_counters_;
};

}  // namespace tumbled::source
