// libFuzzer target for window/keyed_windows behind source/line_protocol_decoder: the fuzzer's
// bytes are a stream of line protocol, fed in chunks through a LineProtocolDecoder into a
// KeyedWindows on event time with a small max_keys and some lateness. The settings, the chunk
// sizes and the wall clock between chunks (which may step back) come from the input's tail
// (FuzzedDataProvider takes integers from the end), the lines from its head. After each chunk the
// clock is advanced, due points are emitted and a checkpoint is taken. Invariants checked (any
// violation aborts, which libFuzzer reports):
//   - open_pairs() <= max_keys after every line and every emit();
//   - the watermark never moves back;
//   - every emitted point parses with LineProtocolParser, carries a timestamp that is a window
//     end, tags sorted by key and only group_by and point.tags ones, the configured measurement,
//     and fields named <field>_<aggregate> (count an integer, <field>_sum_saturated=true);
//     emit() returns the number of points it appended, and a second emit() right after emits
//     nothing;
//   - the decoder counts as accepted exactly the lines KeyedWindows took;
//   - restoring every checkpoint so far (as the store holds them) into a fresh KeyedWindows gives
//     the same open pairs, keys and windows; every stored pair restores, and a fresh restore has
//     nothing unsaved.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "source/line_protocol_decoder.hpp"
#include "source/line_protocol_parser.hpp"
#include "window/keyed_windows.hpp"

using tumbled::config::Aggregate;
using tumbled::source::LineProtocolDecoder;
using tumbled::source::LineProtocolParser;
using tumbled::source::ParsedField;
using tumbled::source::ParsedLine;
using tumbled::source::ParseStatus;
using tumbled::source::Rejection;
using tumbled::window::KeyedChanges;
using tumbled::window::KeyedSettings;
using tumbled::window::KeyedWindows;
using tumbled::window::Precision;
using tumbled::window::TimeMs;

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz_keyed_windows: invariant violated: %s\n", what);
  if (!detail.empty()) {
    std::fputs("detail: ", stderr);
    for (unsigned char c : detail) {
      if (c >= 0x20 && c < 0x7f && c != '\\') {
        std::fputc(c, stderr);
      } else {
        std::fprintf(stderr, "\\x%02x", c);
      }
    }
    std::fputc('\n', stderr);
  }
  std::abort();
}

#define CHECK(cond, detail)             \
  do {                                  \
    if (!(cond)) fail(#cond, (detail)); \
  } while (0)

// The state store as the pipeline keeps it: every checkpoint's changes applied in turn.
struct Store {
  std::map<std::pair<TimeMs, std::string>, std::string> pairs;
  std::map<std::pair<std::string, std::string>, bool> field_types;
  TimeMs watermark = 0;
  TimeMs newest_event = 0;
  bool has_time = false;

  void checkpoint(KeyedWindows& w) {
    const KeyedChanges c = w.changes();
    for (const TimeMs start : c.dropped_windows) {
      std::erase_if(pairs, [start](const auto& entry) { return entry.first.first == start; });
    }
    for (const auto& p : c.pairs) pairs[{p.start, std::string(p.key)}] = p.value;
    for (const auto& t : c.field_types) {
      const bool added =
          field_types.try_emplace({std::string(t.measurement), std::string(t.field)}, t.is_float)
              .second;
      CHECK(added, t.field);
    }
    watermark = c.watermark;
    newest_event = c.newest_event;
    has_time = true;
    w.saved();
  }

  void restore(KeyedWindows& w) const {
    for (const auto& [name, is_float] : field_types) {
      w.restore_field_type(name.first, name.second, is_float);
    }
    for (const auto& [at, value] : pairs) {
      CHECK(w.restore_pair(at.first, at.second, value), at.second);
    }
    if (has_time) w.restore_time(watermark, newest_event);
  }
};

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// One emitted point, checked against the settings.
void check_point(LineProtocolParser& parser, ParsedLine& parsed, std::string_view point,
                 const KeyedSettings& s) {
  CHECK(parser.parse(point, parsed).status == ParseStatus::ok, point);
  CHECK(parsed.timestamp.has_value(), point);
  CHECK(*parsed.timestamp % s.size_ms == 0, point);
  if (!s.measurement.empty()) CHECK(parsed.measurement == s.measurement, point);
  for (std::size_t i = 0; i < parsed.tags.size(); ++i) {
    const std::string_view key = parsed.tags[i].first;
    if (i > 0) CHECK(parsed.tags[i - 1].first < key, point);
    const bool grouped = std::find(s.group_by.begin(), s.group_by.end(), key) != s.group_by.end();
    const auto fixed = s.tags.find(std::string(key));
    CHECK(grouped || (fixed != s.tags.end() && fixed->second == parsed.tags[i].second), point);
  }
  for (const auto& fixed : s.tags) {
    const bool present = std::any_of(parsed.tags.begin(), parsed.tags.end(),
                                     [&](const auto& tag) { return tag.first == fixed.first; });
    CHECK(present, point);
  }
  CHECK(!parsed.fields.empty(), point);
  for (const ParsedField& f : parsed.fields) {
    if (ends_with(f.key, "_sum_saturated")) {
      CHECK(f.type == ParsedField::Type::boolean && f.b, point);
    } else if (ends_with(f.key, "_count")) {
      CHECK(f.type == ParsedField::Type::integer && f.i > 0, point);
    } else if (ends_with(f.key, "_mean")) {
      CHECK(f.type == ParsedField::Type::floating, point);
    } else {
      CHECK(ends_with(f.key, "_sum") || ends_with(f.key, "_min") || ends_with(f.key, "_max"),
            point);
      CHECK(f.type == ParsedField::Type::integer || f.type == ParsedField::Type::floating, point);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  KeyedSettings s;
  s.event_time = true;
  s.size_ms = in.PickValueInArray<TimeMs>({1, 7, 1'000, 10'000});
  s.precision = in.PickValueInArray({Precision::ms, Precision::s, Precision::us, Precision::ns});
  s.max_out_of_orderness_ms = in.ConsumeIntegralInRange<TimeMs>(0, 5'000);
  s.allowed_lateness_ms = in.ConsumeIntegralInRange<TimeMs>(0, 20'000);
  s.idle_timeout_ms = in.ConsumeIntegralInRange<TimeMs>(0, 10'000);
  s.max_future_ms = in.ConsumeIntegralInRange<TimeMs>(0, 120'000);
  s.max_keys = in.ConsumeIntegralInRange<std::size_t>(1, 8);
  s.group_by = {"b", "a"};
  if (in.ConsumeBool()) s.fields = {"v", "w", "f"};
  s.aggregates = {Aggregate::sum, Aggregate::count, Aggregate::min, Aggregate::max,
                  Aggregate::mean};
  if (in.ConsumeBool()) s.measurement = "agg g";
  s.tags = {{"z", "1"}, {"0 c", "x,y"}};

  KeyedWindows keyed(s);
  TimeMs now = in.ConsumeIntegralInRange<TimeMs>(-100'000, 100'000);
  TimeMs watermark = keyed.watermark();
  std::uint64_t taken = 0;
  LineProtocolDecoder decoder(256, [&](const ParsedLine& line) {
    const Rejection verdict = keyed.add(line, now);
    if (verdict == Rejection::none) ++taken;
    CHECK(keyed.open_pairs() <= s.max_keys, line.measurement);
    CHECK(keyed.watermark() >= watermark, line.measurement);
    watermark = keyed.watermark();
    return verdict;
  });
  LineProtocolParser parser;
  ParsedLine parsed;
  Store store;

  const auto emit_and_check = [&] {
    std::string out = "x";
    const std::size_t points = keyed.emit(out);
    CHECK(out[0] == 'x', out);
    std::size_t lines = 0;
    for (std::size_t at = 1; at < out.size();) {
      const std::size_t end = out.find('\n', at);
      CHECK(end != std::string::npos, out);
      check_point(parser, parsed, std::string_view(out).substr(at, end - at), s);
      ++lines;
      at = end + 1;
    }
    CHECK(lines == points, out);
    CHECK(keyed.open_pairs() <= s.max_keys, out);
    std::string again;
    CHECK(keyed.emit(again) == 0 && again.empty(), again);
  };

  while (in.remaining_bytes() > 0) {
    const std::size_t length = in.ConsumeIntegralInRange<std::size_t>(0, 96);
    const std::string chunk = in.ConsumeBytesAsString(length);
    decoder.feed(chunk);
    now += in.ConsumeIntegralInRange<TimeMs>(-2'000, 15'000);
    keyed.advance(now);
    CHECK(keyed.watermark() >= watermark, chunk);
    watermark = keyed.watermark();
    emit_and_check();

    store.checkpoint(keyed);
    KeyedWindows fresh(s);
    store.restore(fresh);
    CHECK(fresh.open_pairs() == keyed.open_pairs(), chunk);
    CHECK(fresh.open_keys() == keyed.open_keys(), chunk);
    CHECK(fresh.open_windows() == keyed.open_windows(), chunk);
    CHECK(fresh.watermark() == keyed.watermark(), chunk);
    const KeyedChanges unsaved = fresh.changes();
    CHECK(unsaved.pairs.empty() && unsaved.field_types.empty(), chunk);
  }
  decoder.finish();
  keyed.advance(now + 1'000'000);
  emit_and_check();
  CHECK(decoder.counters().accepted == taken, "accepted");
  return 0;
}
