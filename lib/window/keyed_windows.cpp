#include "window/keyed_windows.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "sink/line_protocol.hpp"

namespace tumbled::window {

namespace {

using source::ParsedField;
using source::Rejection;
__extension__ using Int128 = __int128;  // g++ and clang both have it; -Wpedantic needs telling
__extension__ using UInt128 = unsigned __int128;

constexpr TimeMs kMinTime = std::numeric_limits<TimeMs>::min();
constexpr TimeMs kMaxTime = std::numeric_limits<TimeMs>::max();
// InfluxDB stores times in int64 nanoseconds, [-2^63 + 2, 2^63 - 2]: in whole milliseconds,
// this. A point outside it would be refused, so a line whose window is not inside is rejected.
constexpr TimeMs kInfluxMaxMs = (std::numeric_limits<std::int64_t>::max() - 2) / 1'000'000;

// a + b for b >= 0, clamped at the largest time instead of overflowing.
TimeMs later(TimeMs a, TimeMs b) {
  return a > kMaxTime - b ? kMaxTime : a + b;
}
// a - b for b >= 0, clamped at the smallest time.
TimeMs earlier(TimeMs a, TimeMs b) {
  return a < kMinTime + b ? kMinTime : a - b;
}

// A timestamp of `ms_per_unit` milliseconds per unit in milliseconds, clamped to the time range.
TimeMs scaled(std::int64_t t, std::int64_t ms_per_unit) {
  if (t > kMaxTime / ms_per_unit) return kMaxTime;
  if (t < kMinTime / ms_per_unit) return kMinTime;
  return t * ms_per_unit;
}

TimeMs floor_div(std::int64_t value, std::int64_t divisor) {
  TimeMs q = value / divisor;
  if (q * divisor > value) --q;  // truncation went towards zero for negative values
  return q;
}

template <class Number>
void append_number(std::string& out, Number value) {
  char buffer[40];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

// The store's encoding of a pair: little-endian fixed-width numbers, names with their length.
void put64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_text(std::string& out, std::string_view text) {
  put64(out, text.size());
  out.append(text);
}
struct Reader {
  std::string_view rest;
  bool ok = true;
  std::uint64_t u64() {
    if (rest.size() < 8) {
      ok = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(rest[i]);
    rest.remove_prefix(8);
    return v;
  }
  std::string_view text() {
    const std::uint64_t n = u64();
    if (!ok || n > rest.size()) {
      ok = false;
      return {};
    }
    const std::string_view t = rest.substr(0, n);
    rest.remove_prefix(n);
    return t;
  }
};

// The name of a field type: the measurement's length first, as both names may hold any byte.
void type_name(std::string& out, std::string_view measurement, std::string_view field) {
  out.clear();
  put64(out, measurement.size());
  out.append(measurement);
  out.append(field);
}

Int128 sum_of(std::uint64_t low, std::int64_t high) {
  return static_cast<Int128>((static_cast<UInt128>(static_cast<std::uint64_t>(high)) << 64) | low);
}

}  // namespace

KeyedSettings KeyedSettings::from(const config::PipelineConfig& p) {
  KeyedSettings s;
  s.size_ms = p.window_size.count();
  s.event_time = p.window_time == "event";
  s.precision = p.precision == "s"    ? Precision::s
                : p.precision == "ms" ? Precision::ms
                : p.precision == "us" ? Precision::us
                                      : Precision::ns;
  s.max_out_of_orderness_ms = p.max_out_of_orderness.count();
  s.allowed_lateness_ms = p.allowed_lateness.count();
  s.idle_timeout_ms = p.watermark_idle_timeout.count();
  s.max_future_ms = p.max_future.count();
  s.group_by = p.group_by;
  s.fields = p.fields;
  s.aggregates = p.aggregates;
  s.measurement = p.measurement;
  s.tags = p.tags;
  s.max_keys = p.max_keys;
  return s;
}

KeyedWindows::KeyedWindows(KeyedSettings settings)
    : settings_(std::move(settings)), watermark_(kMinTime), newest_event_(kMinTime) {
  if (settings_.size_ms <= 0) throw std::invalid_argument("window size must be positive");
  group_by_sorted_ = settings_.group_by;
  std::sort(group_by_sorted_.begin(), group_by_sorted_.end());
  for (const auto& [name, value] : settings_.tags) {  // a std::map: sorted already
    std::string escaped;
    sink::append_escaped(escaped, name, sink::NameRole::tag_key);
    escaped.push_back('=');
    sink::append_escaped(escaped, value, sink::NameRole::tag_value);
    static_tags_.emplace_back(name, std::move(escaped));
  }
}

TimeMs KeyedWindows::start_of(TimeMs t) const {
  return floor_div(t, settings_.size_ms) * settings_.size_ms;
}

TimeMs KeyedWindows::event_time_of(const source::ParsedLine& line, TimeMs now,
                                   Precision precision) const {
  if (!settings_.event_time || !line.timestamp) return now;
  const std::int64_t t = *line.timestamp;
  switch (precision) {
    case Precision::ns: return floor_div(t, 1'000'000);
    case Precision::us: return floor_div(t, 1'000);
    case Precision::ms: return t;
    case Precision::s: return scaled(t, 1'000);
    case Precision::m: return scaled(t, 60'000);
    case Precision::h: return scaled(t, 3'600'000);
  }
  return now;
}

std::optional<std::uint32_t> KeyedWindows::find_or_add_type(std::string_view measurement,
                                                            std::string_view field, bool is_float,
                                                            bool& added) {
  std::string name;
  type_name(name, measurement, field);
  added = false;
  if (const auto it = type_ids_.find(name); it != type_ids_.end()) return it->second;
  if (types_.size() >= settings_.max_keys) return std::nullopt;
  const auto id = static_cast<std::uint32_t>(types_.size());
  std::string output_name;
  sink::append_escaped(output_name, field, sink::NameRole::field_key);
  output_name.push_back('_');
  types_.push_back(
      {std::string(measurement), std::string(field), std::move(output_name), is_float});
  type_ids_.emplace(std::move(name), id);
  unsaved_types_.push_back(id);
  added = true;
  return id;
}

void KeyedWindows::build_key(std::string_view measurement, const source::ParsedLine& line) {
  key_scratch_.clear();
  sink::append_escaped(key_scratch_, measurement, sink::NameRole::measurement);
  // Merge the line's group_by tags with the static tags, both in key order.
  auto next_static = static_tags_.begin();
  const auto flush_static_before = [&](std::string_view name) {
    for (; next_static != static_tags_.end() && next_static->first < name; ++next_static) {
      key_scratch_.push_back(',');
      key_scratch_.append(next_static->second);
    }
  };
  for (const auto& group : group_by_sorted_) {
    const auto tag = std::find_if(line.tags.begin(), line.tags.end(),
                                  [&](const auto& t) { return t.first == group; });
    if (tag == line.tags.end()) continue;
    flush_static_before(group);
    key_scratch_.push_back(',');
    sink::append_escaped(key_scratch_, group, sink::NameRole::tag_key);
    key_scratch_.push_back('=');
    sink::append_escaped(key_scratch_, tag->second, sink::NameRole::tag_value);
  }
  for (; next_static != static_tags_.end(); ++next_static) {
    key_scratch_.push_back(',');
    key_scratch_.append(next_static->second);
  }
}

std::uint32_t KeyedWindows::intern_key(std::string_view text) {
  if (const auto it = keys_.find(text); it != keys_.end()) {
    ++key_uses_[it->second];
    return it->second;
  }
  std::uint32_t id;
  if (!free_key_ids_.empty()) {
    id = free_key_ids_.back();
    free_key_ids_.pop_back();
    key_text_[id].assign(text);
    key_uses_[id] = 1;
  } else {
    id = static_cast<std::uint32_t>(key_text_.size());
    key_text_.emplace_back(text);
    key_uses_.push_back(1);
  }
  keys_.emplace(std::string_view(key_text_[id]), id);
  return id;
}

void KeyedWindows::release_key(std::uint32_t id) {
  if (--key_uses_[id] > 0) return;
  keys_.erase(std::string_view(key_text_[id]));
  key_text_[id].clear();
  key_text_[id].shrink_to_fit();
  free_key_ids_.push_back(id);
}

Rejection KeyedWindows::add(const source::ParsedLine& line, TimeMs now) {
  return add(line, now, settings_.precision);
}

Rejection KeyedWindows::add(const source::ParsedLine& line, TimeMs now, Precision precision) {
  TimeMs t = event_time_of(line, now, precision);
  if (settings_.event_time) {
    if (t > later(now, settings_.max_future_ms)) return Rejection::too_far_in_future;
  } else {
    t = std::max(t, watermark_);  // the clock stepped back: the oldest window still open
  }
  // Also keeps start_of() and the window end from overflowing.
  if (t < -kInfluxMaxMs + settings_.size_ms || t > kInfluxMaxMs - settings_.size_ms) {
    return Rejection::out_of_range;
  }
  const TimeMs start = start_of(t);
  const TimeMs end = start + settings_.size_ms;
  if (later(end, settings_.allowed_lateness_ms) <= watermark_) return Rejection::too_late;

  const std::string_view measurement =
      settings_.measurement.empty() ? line.measurement : std::string_view(settings_.measurement);

  // Check everything before changing anything: a rejected line leaves no trace.
  selected_scratch_.clear();
  std::size_t new_types = 0;
  type_name(key_scratch_, measurement, {});
  const std::size_t prefix = key_scratch_.size();
  for (const ParsedField& field : line.fields) {
    bool is_float = false;
    switch (field.type) {
      case ParsedField::Type::integer: break;
      case ParsedField::Type::unsigned_integer:
        if (field.u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          return Rejection::out_of_range;
        }
        break;
      case ParsedField::Type::floating: is_float = true; break;
      case ParsedField::Type::boolean:
      case ParsedField::Type::string: continue;
    }
    if (!settings_.fields.empty() && std::find(settings_.fields.begin(), settings_.fields.end(),
                                               field.key) == settings_.fields.end()) {
      continue;
    }
    key_scratch_.resize(prefix);
    key_scratch_.append(field.key);
    const auto known = type_ids_.find(key_scratch_);
    if (known != type_ids_.end()) {
      if (types_[known->second].is_float != is_float) return Rejection::type_conflict;
      selected_scratch_.push_back({known->second, &field});
    } else {
      ++new_types;
      selected_scratch_.push_back({std::numeric_limits<std::uint32_t>::max(), &field});
    }
  }
  if (selected_scratch_.empty()) return Rejection::no_numeric_field;
  if (new_types > 0 && types_.size() + new_types > settings_.max_keys) {
    return Rejection::too_many_keys;
  }

  build_key(measurement, line);
  const auto key = keys_.find(std::string_view(key_scratch_));
  auto window = windows_.find(start);
  PairState* existing = nullptr;
  if (key != keys_.end() && window != windows_.end()) {
    const auto found = window->second.pairs.find(key->second);
    if (found != window->second.pairs.end()) existing = &found->second;
  }
  // New aggregates this line opens: its fields the pair does not have yet (all, for a new pair).
  std::size_t new_fields = selected_scratch_.size();
  if (existing != nullptr) {
    for (const Selected& sel : selected_scratch_) {
      new_fields -= std::any_of(existing->fields.begin(), existing->fields.end(),
                                [&](const FieldState& f) { return f.type == sel.type; });
    }
  }
  if ((existing == nullptr && open_pairs_ >= settings_.max_keys) ||
      open_fields_ + new_fields > settings_.max_keys * kFieldsPerPair) {
    // Its time still moves the watermark: otherwise, with window.idle_timeout 0, pairs of
    // windows not due yet could fill max_keys and hold back the very lines that close them.
    see(t, now);
    return Rejection::too_many_keys;
  }
  open_fields_ += new_fields;

  // Accepted: from here on the state changes.
  for (Selected& s : selected_scratch_) {
    if (s.type != std::numeric_limits<std::uint32_t>::max()) continue;
    bool added = false;
    s.type = *find_or_add_type(measurement, s.value->key,
                               s.value->type == ParsedField::Type::floating, added);
  }
  if (window == windows_.end()) window = windows_.try_emplace(start).first;
  Window& w = window->second;
  PairState* pair = existing;
  if (pair == nullptr) {
    const std::uint32_t id = intern_key(key_scratch_);
    pair = &w.pairs.try_emplace(id).first->second;
    ++open_pairs_;
    ++w.pending;
    unsaved_pairs_.emplace_back(start, id);
  }
  if (!pair->pending) {
    pair->pending = true;
    ++w.pending;
  }
  if (!pair->unsaved) {
    pair->unsaved = true;
    unsaved_pairs_.emplace_back(start, key->second);
  }
  for (const Selected& s : selected_scratch_) {
    auto state = std::find_if(pair->fields.begin(), pair->fields.end(),
                              [&](const FieldState& f) { return f.type == s.type; });
    if (state == pair->fields.end()) {
      pair->fields.push_back(FieldState{s.type});
      state = pair->fields.end() - 1;
    }
    const ParsedField& v = *s.value;
    if (v.type == ParsedField::Type::floating) {
      const double sum = std::bit_cast<double>(state->sum_low) + v.f;
      state->sum_low = std::bit_cast<std::uint64_t>(sum);
      const double min = state->count == 0 ? v.f : std::min(std::bit_cast<double>(state->min), v.f);
      const double max = state->count == 0 ? v.f : std::max(std::bit_cast<double>(state->max), v.f);
      state->min = std::bit_cast<std::int64_t>(min);
      state->max = std::bit_cast<std::int64_t>(max);
    } else {
      const std::int64_t value =
          v.type == ParsedField::Type::integer ? v.i : static_cast<std::int64_t>(v.u);
      const Int128 sum = sum_of(state->sum_low, state->sum_high) + value;
      state->sum_low = static_cast<std::uint64_t>(sum);
      state->sum_high = static_cast<std::int64_t>(sum >> 64);
      state->min = state->count == 0 ? value : std::min(state->min, value);
      state->max = state->count == 0 ? value : std::max(state->max, value);
    }
    ++state->count;
  }

  see(t, now);
  last_start_ = start;
  return Rejection::none;
}

void KeyedWindows::see(TimeMs t, TimeMs now) {
  last_line_at_ = now;
  if (settings_.event_time) {
    newest_event_ = std::max(newest_event_, t);
    watermark_ = std::max(watermark_, earlier(newest_event_, settings_.max_out_of_orderness_ms));
  } else {
    watermark_ = std::max(watermark_, now);
  }
}

void KeyedWindows::advance(TimeMs now) {
  if (!settings_.event_time) {
    watermark_ = std::max(watermark_, now);
    return;
  }
  if (!last_line_at_) last_line_at_ = now;  // idle counts from the start, not from the epoch
  if (settings_.idle_timeout_ms > 0 && now - *last_line_at_ >= settings_.idle_timeout_ms) {
    watermark_ = std::max(watermark_, earlier(now, settings_.max_out_of_orderness_ms));
  }
}

void KeyedWindows::emit_pair(std::string& out, std::uint32_t key, PairState& pair, TimeMs end) {
  constexpr auto int64_max = std::numeric_limits<std::int64_t>::max();
  constexpr auto int64_min = std::numeric_limits<std::int64_t>::min();
  constexpr double double_max = std::numeric_limits<double>::max();
  out.append(key_text_[key]);
  char separator = ' ';
  bool saturated_any = false;
  for (const FieldState& f : pair.fields) {
    const FieldType& type = types_[f.type];
    bool saturated = false;
    for (const config::Aggregate aggregate : settings_.aggregates) {
      out.push_back(separator);
      separator = ',';
      out.append(type.output_name);
      out.append(config::to_string(aggregate));
      out.push_back('=');
      if (type.is_float) {
        const double sum = std::bit_cast<double>(f.sum_low);
        // Line protocol has no infinity: an overflowing float sum is clamped and flagged.
        const double clamped = std::isfinite(sum) ? sum : std::copysign(double_max, sum);
        switch (aggregate) {
          case config::Aggregate::sum:
            saturated = saturated || clamped != sum;
            append_number(out, clamped);
            break;
          case config::Aggregate::count:
            append_number(out, f.count);
            out.push_back('i');
            break;
          case config::Aggregate::min: append_number(out, std::bit_cast<double>(f.min)); break;
          case config::Aggregate::max: append_number(out, std::bit_cast<double>(f.max)); break;
          case config::Aggregate::mean: {
            double mean = sum / static_cast<double>(f.count);
            if (!std::isfinite(mean)) mean = std::copysign(double_max, mean);
            append_number(out, mean);
            break;
          }
        }
      } else {
        const Int128 sum = sum_of(f.sum_low, f.sum_high);
        switch (aggregate) {
          case config::Aggregate::sum: {
            saturated = saturated || sum > int64_max || sum < int64_min;
            append_number(out, sum > int64_max   ? int64_max
                               : sum < int64_min ? int64_min
                                                 : static_cast<std::int64_t>(sum));
            out.push_back('i');
            break;
          }
          case config::Aggregate::count:
            append_number(out, f.count);
            out.push_back('i');
            break;
          case config::Aggregate::min:
            append_number(out, f.min);
            out.push_back('i');
            break;
          case config::Aggregate::max:
            append_number(out, f.max);
            out.push_back('i');
            break;
          case config::Aggregate::mean:
            append_number(out, static_cast<double>(static_cast<long double>(sum) /
                                                   static_cast<long double>(f.count)));
            break;
        }
      }
    }
    if (saturated) {
      out.push_back(',');
      out.append(type.output_name);
      out.append("sum_saturated=true");
      saturated_any = true;
    }
  }
  out.push_back(' ');
  append_number(out, end);
  out.push_back('\n');
  if (saturated_any) ++counters_.sums_saturated;
}

std::size_t KeyedWindows::emit_by_window(
    const std::function<void(TimeMs start, std::string&& point)>& on_point) {
  std::size_t points = 0;
  for (auto it = windows_.begin();
       it != windows_.end() && later(it->first, settings_.size_ms) <= watermark_;) {
    const TimeMs end = later(it->first, settings_.size_ms);
    Window& w = it->second;
    if (w.pending > 0) {
      for (auto& [key, pair] : w.pairs) {
        if (!pair.pending) continue;
        std::string point;
        emit_pair(point, key, pair, end);
        on_point(it->first, std::move(point));
        pair.pending = false;
        ++points;
        ++(pair.emitted ? counters_.points_updated : counters_.points_emitted);
        pair.emitted = true;
      }
      w.pending = 0;
    }
    if (later(end, settings_.allowed_lateness_ms) > watermark_) {
      ++it;
      continue;
    }
    for (const auto& entry : w.pairs) {
      release_key(entry.first);
      open_fields_ -= entry.second.fields.size();
    }
    open_pairs_ -= w.pairs.size();
    dropped_windows_.push_back(it->first);
    ++counters_.windows_dropped;
    it = windows_.erase(it);
  }
  return points;
}

KeyedChanges KeyedWindows::changes() const {
  KeyedChanges changes{{}, dropped_windows_, {}, watermark_, newest_event_};
  for (const auto& [start, key] : unsaved_pairs_) {
    const auto window = windows_.find(start);
    if (window == windows_.end()) continue;  // dropped: the whole window goes
    const auto pair = window->second.pairs.find(key);
    if (pair == window->second.pairs.end() || !pair->second.unsaved) continue;
    std::string value;
    const auto& fields = pair->second.fields;
    put_text(value, types_[fields.front().type].measurement);
    put64(value, fields.size());
    for (const FieldState& f : fields) {
      const FieldType& type = types_[f.type];
      put_text(value, type.field);
      put64(value, type.is_float ? 1 : 0);
      put64(value, static_cast<std::uint64_t>(f.count));
      put64(value, f.sum_low);
      put64(value, static_cast<std::uint64_t>(f.sum_high));
      put64(value, static_cast<std::uint64_t>(f.min));
      put64(value, static_cast<std::uint64_t>(f.max));
    }
    changes.pairs.push_back({start, key_text_[key], std::move(value)});
  }
  // In the store's key order: RocksDB's memtable inserts keys in ascending order several times
  // faster than in random order (measured: a checkpoint of 1 M new pairs took over 5 s unsorted).
  std::sort(changes.pairs.begin(), changes.pairs.end(), [](const auto& a, const auto& b) {
    return a.start != b.start ? a.start < b.start : a.key < b.key;
  });
  for (const std::uint32_t id : unsaved_types_) {
    changes.field_types.push_back({types_[id].measurement, types_[id].field, types_[id].is_float});
  }
  return changes;
}

void KeyedWindows::saved() {
  for (const auto& [start, key] : unsaved_pairs_) {
    const auto window = windows_.find(start);
    if (window == windows_.end()) continue;
    const auto pair = window->second.pairs.find(key);
    if (pair != window->second.pairs.end()) pair->second.unsaved = false;
  }
  unsaved_pairs_.clear();
  dropped_windows_.clear();
  unsaved_types_.clear();
}

void KeyedWindows::restore_time(TimeMs watermark, TimeMs newest_event) {
  watermark_ = std::max(watermark_, watermark);
  newest_event_ = std::max(newest_event_, newest_event);
}

void KeyedWindows::restore_field_type(std::string_view measurement, std::string_view field,
                                      bool is_float) {
  bool added = false;
  find_or_add_type(measurement, field, is_float, added);
  if (added) unsaved_types_.pop_back();  // it is in the store already
}

bool KeyedWindows::restore_pair(TimeMs start, std::string_view key, std::string_view value) {
  if (start < -kInfluxMaxMs || start > kInfluxMaxMs || start_of(start) != start || key.empty()) {
    return false;
  }
  Reader in{value};
  const std::string_view measurement = in.text();
  const std::uint64_t count = in.u64();
  if (!in.ok || count == 0 || count > value.size()) return false;
  PairState pair;
  pair.unsaved = false;
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::string_view field = in.text();
    const bool is_float = in.u64() != 0;
    FieldState f;
    f.count = static_cast<std::int64_t>(in.u64());
    f.sum_low = in.u64();
    f.sum_high = static_cast<std::int64_t>(in.u64());
    f.min = static_cast<std::int64_t>(in.u64());
    f.max = static_cast<std::int64_t>(in.u64());
    if (!in.ok || f.count <= 0) return false;
    bool added = false;
    const auto type = find_or_add_type(measurement, field, is_float, added);
    if (!type || types_[*type].is_float != is_float) return false;
    if (added) unsaved_types_.pop_back();
    f.type = *type;
    const bool repeated =
        std::any_of(pair.fields.begin(), pair.fields.end(),
                    [&](const FieldState& other) { return other.type == f.type; });
    if (repeated) return false;
    pair.fields.push_back(f);
  }
  if (!in.rest.empty()) return false;
  Window& w = windows_[start];
  const std::uint32_t id = intern_key(key);
  const std::size_t fields = pair.fields.size();
  const auto [slot, created] = w.pairs.try_emplace(id, std::move(pair));
  if (!created) {
    release_key(id);
    return false;
  }
  open_fields_ += fields;
  // Pending: emitted (again) if its window is due, the point is the same and InfluxDB overwrites
  // it. Not `emitted`: the counters are this run's, and this run has not emitted it yet.
  ++w.pending;
  ++open_pairs_;
  return true;
}

}  // namespace tumbled::window
