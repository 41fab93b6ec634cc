// CheckpointStore: each pipeline's open windows and unacknowledged points in one RocksDB.
//
// A checkpoint of one pipeline is one atomic WriteBatch: it replaces the open windows, adds the
// points emitted since the previous checkpoint and deletes those InfluxDB has acknowledged, so
// its cost follows what changed, not the size of the backlog. Writes go through RocksDB's WAL
// without fsync: they survive the process being killed (the OS holds the pages), not a power cut;
// a checkpoint with `sync` (acknowledged HTTP input) fsyncs the WAL and survives that too.
// Batches InfluxDB refuses for good are kept in the `dead_letters` column family with the error.
// open() throws on failure (startup); later calls return an error message instead. Not
// thread-safe: call from one strand.
//
// Versioned: a format-version record says which layout the store holds. open() refuses a store
// of a newer version than kFormatVersion with a message saying so (nothing is touched), and
// migrates an older one (read_write only); a store without the record has the layout of
// version 1, which the releases before the record wrote.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sink/point_queue.hpp"
#include "source/line_protocol_parser.hpp"
#include "window/keyed_windows.hpp"
#include "window/tumbling_windows.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace tumbled::store {

using Error = std::optional<std::string>;  // nullopt on success

// One acknowledged write request (source.http), logged as it was taken so that a restart can
// decode it again on top of the checkpoint before it: its body and everything its decoding
// depended on. Deleted by the next checkpoint, which holds its effect.
struct AcceptedInput {
  std::uint64_t seq = 0;
  window::TimeMs read_at = 0;    // the wall clock it was decoded at
  window::TimeMs watermark = 0;  // the keyed windows' watermark and newest event time then
  window::TimeMs newest_event = 0;
  source::Precision precision = source::Precision::ns;
  std::string body;  // line protocol, decompressed, ending in '\n'
};

struct PipelineCheckpoint {
  const std::map<window::TimeMs, window::WindowAccumulator>& open_windows;
  const std::deque<sink::QueuedPoint>& points;  // every point not yet acknowledged, oldest first
  std::uint64_t saved_below;   // points with seq below this were written by an earlier checkpoint
  std::uint64_t next_seq = 0;  // the queue's next sequence number, kept so seqs never repeat
  // Keyed windows (line protocol): what changed since the last checkpoint; nullptr for integers.
  const window::KeyedChanges* keyed = nullptr;
  // fsync the WAL before returning: the checkpoint then survives a power cut, not only the
  // process being killed. For acknowledged input (the HTTP source's 204).
  bool sync = false;
  // Accepted inputs with seq below this are held by this checkpoint: their records go.
  std::uint64_t inputs_below = 0;
};

struct RestoredKeyedPair {
  window::TimeMs start = 0;
  std::string key;
  std::string value;  // as KeyedWindows::changes() encoded it
};
struct RestoredFieldType {
  std::string measurement;
  std::string field;
  bool is_float = false;
};

struct RestoredPipeline {
  std::map<window::TimeMs, window::WindowAccumulator> open_windows;
  std::vector<sink::QueuedPoint> points;  // oldest first
  std::uint64_t next_seq = 1;             // first sequence number not used yet
  std::vector<RestoredKeyedPair> keyed_pairs;
  std::vector<RestoredFieldType> field_types;
  std::optional<std::pair<window::TimeMs, window::TimeMs>> watermark;  // and newest event time
  std::vector<AcceptedInput> inputs;  // logged after the checkpoint above, by seq
};

struct DeadLetter {
  std::string pipeline;
  std::uint64_t first_seq = 0;
  std::int64_t failed_at_ms = 0;
  std::string error;
  std::string body;  // line protocol, as it was sent
};

// 1: open windows, unsent points, next sequence number. 2: adds keyed windows, field types and
// the watermark (a release reading only version 1 would ignore them and lose keyed state).
// 3: adds the log of accepted inputs (an older release would ignore acknowledged writes).
inline constexpr std::uint64_t kFormatVersion = 3;

class CheckpointStore {
 public:
  enum class Access { read_write, read_only };
  // read_only works beside a running daemon (RocksDB locks only writers); read_write fails
  // with a message saying the store is in use.
  static std::unique_ptr<CheckpointStore> open(const std::string& dir,
                                               Access access = Access::read_write);
  ~CheckpointStore();
  CheckpointStore(const CheckpointStore&) = delete;
  CheckpointStore& operator=(const CheckpointStore&) = delete;

  // The format version recorded in the store; 0 if there is no record (read-only, old store).
  std::uint64_t format_version() const;
  RestoredPipeline load(const std::string& pipeline) const;
  Error save(const std::string& pipeline, const PipelineCheckpoint& checkpoint);
  // Logs accepted inputs (one atomic write, not synced: sync_wal() does that for many at once).
  Error append_inputs(const std::string& pipeline, const std::vector<AcceptedInput>& inputs);
  // fsyncs the log of every save() that returned before it: those then survive a power cut.
  // The one call that may run on another thread, beside the others (RocksDB allows it).
  Error sync_wal();
  // Size of the WriteBatch of the latest save() (whatever its outcome), in bytes: what a
  // checkpoint costs, for the metrics.
  std::size_t last_save_bytes() const { return last_save_bytes_; }
  Error add_dead_letter(const DeadLetter& letter);
  std::vector<DeadLetter> dead_letters() const;
  Error remove_dead_letter(const std::string& pipeline, std::uint64_t first_seq);
  // Moves a dead letter's points back to the end of its pipeline's unsent points (one atomic
  // write), so the daemon sends them again at its next start. Call with the daemon stopped.
  Error requeue_dead_letter(const DeadLetter& letter);

 private:
  CheckpointStore(std::unique_ptr<rocksdb::DB> db,
                  std::vector<rocksdb::ColumnFamilyHandle*> handles);
  void check_format_version(const std::string& dir, Access access);

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // [default, dead_letters]
  std::size_t last_save_bytes_ = 0;
};

}  // namespace tumbled::store
