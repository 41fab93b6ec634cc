#include "store/checkpoint_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string_view>

namespace tumbled::store {

namespace {

// Keys: <pipeline> '\0' <kind> <8-byte big-endian number>, so each kind sorts by number.
// Window starts are signed: flipping the sign bit keeps them ordered as unsigned bytes.
constexpr char kWindowKind = 'w';
constexpr char kPointKind = 'p';
constexpr char kNextSeqKind = 'n';  // one key per pipeline: its next sequence number
// Version 2, keyed windows: <pipeline> '\0' 'k' <window number> <key text> -> encoded pair;
// <pipeline> '\0' 't' <measurement size> <measurement> <field> -> "f" or "i"; <pipeline> '\0' 'm'
// -> the watermark and the newest event time.
constexpr char kKeyedKind = 'k';
constexpr char kFieldTypeKind = 't';
constexpr char kWatermarkKind = 'm';
// Version 3: <pipeline> '\0' 'i' <seq> -> an accepted input: read_at, watermark, newest event
// time (8 bytes each), precision (1 byte), then the body.
constexpr char kInputKind = 'i';
constexpr std::size_t kInputHeaderBytes = 25;
// The layout's version, in a key no pipeline's can equal (pipeline names are never empty).
// 1: the layout above, also what stores written before the record existed hold.
const std::string kFormatVersionKey = std::string("\0format_version", 15);

void append_be64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}
std::uint64_t read_be64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
std::string prefix(const std::string& pipeline, char kind) {
  std::string key = pipeline;
  key.push_back('\0');
  key.push_back(kind);
  return key;
}
std::string key(const std::string& pipeline, char kind, std::uint64_t number) {
  std::string k = prefix(pipeline, kind);
  append_be64(k, number);
  return k;
}
std::uint64_t window_number(window::TimeMs start) {
  return static_cast<std::uint64_t>(start) ^ (std::uint64_t{1} << 63);
}

std::string encode(const window::WindowAccumulator& a) {
  std::string out;
  const auto sum = static_cast<window::UInt128>(a.sum);
  append_be64(out, static_cast<std::uint64_t>(sum >> 64));
  append_be64(out, static_cast<std::uint64_t>(sum));
  append_be64(out, static_cast<std::uint64_t>(a.count));
  append_be64(out, static_cast<std::uint64_t>(a.min));
  append_be64(out, static_cast<std::uint64_t>(a.max));
  return out;
}
window::WindowAccumulator decode_accumulator(const rocksdb::Slice& v) {
  if (v.size() != 40) throw std::runtime_error("corrupt window record in state store");
  window::WindowAccumulator a;
  const auto high = static_cast<window::UInt128>(read_be64(v.data()));
  a.sum = static_cast<window::Int128>((high << 64) | read_be64(v.data() + 8));
  a.count = static_cast<std::int64_t>(read_be64(v.data() + 16));
  a.min = static_cast<std::int64_t>(read_be64(v.data() + 24));
  a.max = static_cast<std::int64_t>(read_be64(v.data() + 32));
  return a;
}

Error to_error(const rocksdb::Status& status) {
  if (status.ok()) return std::nullopt;
  return status.ToString();
}

// Calls fn(key without the prefix, value) for every key starting with `start_prefix`, in order.
template <class Fn>
void scan_suffixes(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                   const std::string& start_prefix, Fn&& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), cf));
  for (it->Seek(start_prefix); it->Valid() && it->key().starts_with(start_prefix); it->Next()) {
    const rocksdb::Slice k = it->key();
    fn(std::string_view(k.data() + start_prefix.size(), k.size() - start_prefix.size()),
       it->value());
  }
  if (!it->status().ok())
    throw std::runtime_error("reading state store: " + it->status().ToString());
}

// Calls fn(number, value) for every key of one pipeline and kind, in order.
template <class Fn>
void scan(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf, const std::string& start_prefix,
          Fn&& fn) {
  scan_suffixes(db, cf, start_prefix, [&fn](std::string_view rest, const rocksdb::Slice& value) {
    if (rest.size() != 8) throw std::runtime_error("corrupt key in state store");
    fn(read_be64(rest.data()), value);
  });
}

}  // namespace

std::unique_ptr<CheckpointStore> CheckpointStore::open(const std::string& dir, Access access) {
  std::error_code ec;
  if (access == Access::read_write) std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create state directory " + dir + ": " + ec.message());
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.keep_log_file_num = 3;
  // Checkpoints write many keys and read them back only at startup (one scan per pipeline): an
  // unsorted vector takes writes several times cheaper than the default skip list, which spent
  // half of a synced HTTP commit's time finding where each key goes; it is sorted once, when
  // flushed or scanned.
  rocksdb::ColumnFamilyOptions checkpoints(options);
  checkpoints.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  options.allow_concurrent_memtable_write = false;  // the vector memtable does not support it
  std::vector<rocksdb::ColumnFamilyDescriptor> families{
      {rocksdb::kDefaultColumnFamilyName, checkpoints},
      {"dead_letters", rocksdb::ColumnFamilyOptions(options)}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const auto status =
      access == Access::read_only
          ? rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(options), dir, families, &handles, &raw)
          : rocksdb::DB::Open(rocksdb::DBOptions(options), dir, families, &handles, &raw);
  if (!status.ok()) {
    const bool locked = status.ToString().find("lock") != std::string::npos;
    throw std::runtime_error("cannot open state store in " + dir + ": " + status.ToString() +
                             (locked ? " (is a tumbled using this state.dir still running?)" : ""));
  }
  std::unique_ptr<CheckpointStore> store(
      new CheckpointStore(std::unique_ptr<rocksdb::DB>(raw), std::move(handles)));
  store->check_format_version(dir, access);
  return store;
}

void CheckpointStore::check_format_version(const std::string& dir, Access access) {
  std::string value;
  const auto status = db_->Get(rocksdb::ReadOptions(), handles_[0], kFormatVersionKey, &value);
  if (!status.ok() && !status.IsNotFound()) {
    throw std::runtime_error("cannot read the state store's format version in " + dir + ": " +
                             status.ToString());
  }
  if (status.ok()) {
    if (value.size() != 8) {
      throw std::runtime_error("corrupt format version record in the state store in " + dir);
    }
    const std::uint64_t version = read_be64(value.data());
    if (version > kFormatVersion) {
      throw std::runtime_error("the state store in " + dir + " has format version " +
                               std::to_string(version) +
                               ", written by a newer tumbled; this one "
                               "reads versions up to " +
                               std::to_string(kFormatVersion) +
                               ". Run the newer tumbled, or move the directory away to start "
                               "with an empty state (its open windows and unsent points would be "
                               "lost)");
    }
    if (version == kFormatVersion) return;
  }
  // No record (a new store, or one written before the record existed: the same layout as
  // version 1) or an older version: migrate by writing the record. Read-only users (deadletter
  // list) read such a store as it is.
  if (access == Access::read_only) return;
  std::string record;
  append_be64(record, kFormatVersion);
  const auto written = db_->Put(rocksdb::WriteOptions(), handles_[0], kFormatVersionKey, record);
  if (!written.ok()) {
    throw std::runtime_error("cannot write the state store's format version in " + dir + ": " +
                             written.ToString());
  }
}

std::uint64_t CheckpointStore::format_version() const {
  std::string value;
  const auto status = db_->Get(rocksdb::ReadOptions(), handles_[0], kFormatVersionKey, &value);
  return status.ok() && value.size() == 8 ? read_be64(value.data()) : 0;
}

CheckpointStore::CheckpointStore(std::unique_ptr<rocksdb::DB> db,
                                 std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : db_(std::move(db)), handles_(std::move(handles)) {}

CheckpointStore::~CheckpointStore() {
  for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
  db_->Close();
}

RestoredPipeline CheckpointStore::load(const std::string& pipeline) const {
  RestoredPipeline restored;
  scan(*db_, handles_[0], prefix(pipeline, kWindowKind), [&](std::uint64_t n, rocksdb::Slice v) {
    const auto start = static_cast<window::TimeMs>(n ^ (std::uint64_t{1} << 63));
    restored.open_windows[start] = decode_accumulator(v);
  });
  scan(*db_, handles_[0], prefix(pipeline, kPointKind), [&](std::uint64_t seq, rocksdb::Slice v) {
    restored.points.push_back({seq, 0, v.ToString()});
  });
  std::string next;
  const auto status =
      db_->Get(rocksdb::ReadOptions(), handles_[0], prefix(pipeline, kNextSeqKind), &next);
  if (status.ok() && next.size() == 8) restored.next_seq = read_be64(next.data());
  if (!restored.points.empty()) {
    restored.next_seq = std::max(restored.next_seq, restored.points.back().seq + 1);
  }
  scan_suffixes(*db_, handles_[0], prefix(pipeline, kFieldTypeKind),
                [&](std::string_view rest, const rocksdb::Slice& v) {
                  const std::uint64_t size = rest.size() >= 8 ? read_be64(rest.data()) : 0;
                  if (rest.size() < 8 || size > rest.size() - 8 || v.size() != 1) {
                    throw std::runtime_error("corrupt field type record in state store");
                  }
                  restored.field_types.push_back({std::string(rest.substr(8, size)),
                                                  std::string(rest.substr(8 + size)), v[0] == 'f'});
                });
  scan_suffixes(
      *db_, handles_[0], prefix(pipeline, kKeyedKind),
      [&](std::string_view rest, const rocksdb::Slice& v) {
        if (rest.size() <= 8) throw std::runtime_error("corrupt key in state store");
        const auto start =
            static_cast<window::TimeMs>(read_be64(rest.data()) ^ (std::uint64_t{1} << 63));
        restored.keyed_pairs.push_back({start, std::string(rest.substr(8)), v.ToString()});
      });
  scan(*db_, handles_[0], prefix(pipeline, kInputKind), [&](std::uint64_t seq, rocksdb::Slice v) {
    if (v.size() < kInputHeaderBytes || static_cast<unsigned char>(v[24]) > 5) {
      throw std::runtime_error("corrupt accepted input record in state store");
    }
    restored.inputs.push_back(
        {seq, static_cast<window::TimeMs>(read_be64(v.data())),
         static_cast<window::TimeMs>(read_be64(v.data() + 8)),
         static_cast<window::TimeMs>(read_be64(v.data() + 16)),
         static_cast<source::Precision>(v[24]),
         std::string(v.data() + kInputHeaderBytes, v.size() - kInputHeaderBytes)});
  });
  std::string marks;
  const auto marked =
      db_->Get(rocksdb::ReadOptions(), handles_[0], prefix(pipeline, kWatermarkKind), &marks);
  if (marked.ok()) {
    if (marks.size() != 16) throw std::runtime_error("corrupt watermark record in state store");
    restored.watermark.emplace(static_cast<window::TimeMs>(read_be64(marks.data())),
                               static_cast<window::TimeMs>(read_be64(marks.data() + 8)));
  }
  return restored;
}

Error CheckpointStore::save(const std::string& pipeline, const PipelineCheckpoint& checkpoint) {
  rocksdb::WriteBatch batch;
  auto* cf = handles_[0];
  // Open windows are few (usually one or two): replace them all. The range ends at the next
  // kind's prefix, not at number UINT64_MAX: the end is exclusive, and that number is a start.
  batch.DeleteRange(cf, prefix(pipeline, kWindowKind),
                    prefix(pipeline, static_cast<char>(kWindowKind + 1)));
  for (const auto& [start, totals] : checkpoint.open_windows) {
    if (!totals.empty())
      batch.Put(cf, key(pipeline, kWindowKind, window_number(start)), encode(totals));
  }
  // Points: delete what InfluxDB acknowledged, add only what is new since the last checkpoint.
  const std::uint64_t acked_below =
      checkpoint.points.empty() ? checkpoint.saved_below : checkpoint.points.front().seq;
  batch.DeleteRange(cf, key(pipeline, kPointKind, 0), key(pipeline, kPointKind, acked_below));
  for (auto it = checkpoint.points.rbegin(); it != checkpoint.points.rend(); ++it) {
    if (it->seq < checkpoint.saved_below) break;
    batch.Put(cf, key(pipeline, kPointKind, it->seq), it->line);
  }
  if (checkpoint.next_seq > 0) {
    std::string next;
    append_be64(next, checkpoint.next_seq);
    batch.Put(cf, prefix(pipeline, kNextSeqKind), next);
  }
  if (const window::KeyedChanges* keyed = checkpoint.keyed) {
    // Only what changed: a dropped window's pairs go in one range, written pairs one by one.
    for (const window::TimeMs start : keyed->dropped_windows) {
      const std::uint64_t n = window_number(start);
      batch.DeleteRange(cf, key(pipeline, kKeyedKind, n), key(pipeline, kKeyedKind, n + 1));
    }
    for (const auto& pair : keyed->pairs) {
      std::string k = key(pipeline, kKeyedKind, window_number(pair.start));
      k.append(pair.key);
      batch.Put(cf, k, pair.value);
    }
    for (const auto& type : keyed->field_types) {
      std::string k = prefix(pipeline, kFieldTypeKind);
      append_be64(k, type.measurement.size());  // names may hold any byte, NUL included
      k.append(type.measurement);
      k.append(type.field);
      batch.Put(cf, k, type.is_float ? "f" : "i");
    }
    std::string marks;
    append_be64(marks, static_cast<std::uint64_t>(keyed->watermark));
    append_be64(marks, static_cast<std::uint64_t>(keyed->newest_event));
    batch.Put(cf, prefix(pipeline, kWatermarkKind), marks);
  }
  batch.DeleteRange(cf, key(pipeline, kInputKind, 0),
                    key(pipeline, kInputKind, checkpoint.inputs_below));
  last_save_bytes_ = batch.GetDataSize();
  rocksdb::WriteOptions options;
  options.sync = checkpoint.sync;
  return to_error(db_->Write(options, &batch));
}

Error CheckpointStore::append_inputs(const std::string& pipeline,
                                     const std::vector<AcceptedInput>& inputs) {
  rocksdb::WriteBatch batch;
  std::string value;
  for (const auto& input : inputs) {
    value.clear();
    append_be64(value, static_cast<std::uint64_t>(input.read_at));
    append_be64(value, static_cast<std::uint64_t>(input.watermark));
    append_be64(value, static_cast<std::uint64_t>(input.newest_event));
    value.push_back(static_cast<char>(input.precision));
    value.append(input.body);
    batch.Put(handles_[0], key(pipeline, kInputKind, input.seq), value);
  }
  return to_error(db_->Write(rocksdb::WriteOptions(), &batch));
}

Error CheckpointStore::sync_wal() {
  return to_error(db_->SyncWAL());
}

Error CheckpointStore::requeue_dead_letter(const DeadLetter& letter) {
  std::uint64_t seq = load(letter.pipeline).next_seq;
  rocksdb::WriteBatch batch;
  std::string_view body = letter.body;
  while (!body.empty()) {
    const auto end = body.find('\n');
    const auto line = body.substr(0, end == std::string_view::npos ? body.size() : end + 1);
    body.remove_prefix(line.size());
    std::string point(line);
    if (point.back() != '\n') point.push_back('\n');
    batch.Put(handles_[0], key(letter.pipeline, kPointKind, seq++), point);
  }
  std::string next;
  append_be64(next, seq);
  batch.Put(handles_[0], prefix(letter.pipeline, kNextSeqKind), next);
  batch.Delete(handles_[1], key(letter.pipeline, 'd', letter.first_seq));
  return to_error(db_->Write(rocksdb::WriteOptions(), &batch));
}

Error CheckpointStore::add_dead_letter(const DeadLetter& letter) {
  std::string value;
  append_be64(value, static_cast<std::uint64_t>(letter.failed_at_ms));
  append_be64(value, letter.error.size());
  value += letter.error;
  value += letter.body;
  return to_error(db_->Put(rocksdb::WriteOptions(), handles_[1],
                           key(letter.pipeline, 'd', letter.first_seq), value));
}

std::vector<DeadLetter> CheckpointStore::dead_letters() const {
  std::vector<DeadLetter> letters;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[1]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const auto k = it->key();
    const auto v = it->value();
    const auto* zero = static_cast<const char*>(std::memchr(k.data(), '\0', k.size()));
    if (zero == nullptr || k.size() != static_cast<std::size_t>(zero - k.data()) + 10 ||
        v.size() < 16) {
      throw std::runtime_error("corrupt dead letter in state store");
    }
    DeadLetter letter;
    letter.pipeline.assign(k.data(), zero);
    letter.first_seq = read_be64(zero + 2);
    letter.failed_at_ms = static_cast<std::int64_t>(read_be64(v.data()));
    const std::uint64_t error_size = read_be64(v.data() + 8);
    if (error_size > v.size() - 16) throw std::runtime_error("corrupt dead letter in state store");
    letter.error.assign(v.data() + 16, error_size);
    letter.body.assign(v.data() + 16 + error_size, v.size() - 16 - error_size);
    letters.push_back(std::move(letter));
  }
  return letters;
}

Error CheckpointStore::remove_dead_letter(const std::string& pipeline, std::uint64_t first_seq) {
  return to_error(db_->Delete(rocksdb::WriteOptions(), handles_[1], key(pipeline, 'd', first_seq)));
}

}  // namespace tumbled::store
