// libFuzzer target for source/line_framer: arbitrary bytes, split at fuzzer-chosen points, with a
// fuzzer-chosen max_line_bytes. Invariants checked (any violation aborts, which libFuzzer reports):
//   - pending_bytes() <= max_line_bytes after every feed(), and 0 after finish();
//   - feeding the stream in one piece or split gives the same values and the same counters;
//   - both agree with a line-by-line reference model of the framing rules in line_framer.hpp;
//   - parse_line agrees with an independent reference classifier on every line;
//   - every emitted value re-parses via parse_line from its decimal form to the same value.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "source/line_framer.hpp"

using tumbled::source::LineCounters;
using tumbled::source::LineFramer;
using tumbled::source::LineKind;
using tumbled::source::parse_line;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_line_framer: invariant violated: %s\n", what);
  std::abort();
}

#define CHECK(cond)           \
  do {                        \
    if (!(cond)) fail(#cond); \
  } while (0)

bool same(const LineCounters& a, const LineCounters& b) {
  return a.accepted == b.accepted && a.empty == b.empty && a.not_integer == b.not_integer &&
         a.out_of_range == b.out_of_range && a.too_long == b.too_long;
}

// Independent classifier: trim ' ' \t \r \v \f, then [+-]?[0-9]+ accumulated in __int128.
LineKind reference_kind(std::string_view line, std::int64_t& out) {
  const auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
  };
  std::size_t b = 0, e = line.size();
  while (b < e && space(line[b])) ++b;
  while (e > b && space(line[e - 1])) --e;
  if (b == e) return LineKind::empty;
  bool negative = false;
  if (line[b] == '+' || line[b] == '-') negative = line[b++] == '-';
  if (b == e) return LineKind::not_integer;
  __int128 value = 0;
  bool overflow = false;
  for (std::size_t i = b; i < e; ++i) {
    if (line[i] < '0' || line[i] > '9') return LineKind::not_integer;
    if (!overflow) {
      value = value * 10 + (line[i] - '0');
      if (value > (static_cast<__int128>(1) << 64)) overflow = true;  // far past int64 either way
    }
  }
  if (negative) value = -value;
  if (overflow || value > std::numeric_limits<std::int64_t>::max() ||
      value < std::numeric_limits<std::int64_t>::min()) {
    return LineKind::out_of_range;
  }
  out = static_cast<std::int64_t>(value);
  return LineKind::value;
}

void count(LineCounters& c, LineKind kind) {
  switch (kind) {
    case LineKind::value: ++c.accepted; break;
    case LineKind::empty: ++c.empty; break;
    case LineKind::not_integer: ++c.not_integer; break;
    case LineKind::out_of_range: ++c.out_of_range; break;
  }
}

// The framing rules of line_framer.hpp applied to the whole stream at once.
void reference_frame(std::string_view stream, std::size_t max_line_bytes,
                     std::vector<std::int64_t>& values, LineCounters& counters) {
  const auto line = [&](std::string_view l) {
    if (l.size() > max_line_bytes) {
      ++counters.too_long;
      return;
    }
    std::int64_t v = 0;
    const LineKind kind = reference_kind(l, v);
    std::int64_t got = 0;
    CHECK(parse_line(l, got) == kind);
    if (kind == LineKind::value) {
      CHECK(got == v);
      values.push_back(v);
    }
    count(counters, kind);
  };
  std::size_t start = 0;
  for (std::size_t nl; (nl = stream.find('\n', start)) != std::string_view::npos; start = nl + 1) {
    line(stream.substr(start, nl - start));
  }
  if (start < stream.size()) line(stream.substr(start));  // the last line, ended by finish()
}

struct Run {
  std::vector<std::int64_t> values;
  LineCounters counters;
};

Run frame(std::string_view stream, std::size_t max_line_bytes,
          const std::vector<std::size_t>& cuts) {
  Run run;
  LineFramer framer(max_line_bytes);
  const auto on_value = [&](std::int64_t v) { run.values.push_back(v); };
  std::size_t at = 0;
  for (std::size_t cut : cuts) {
    framer.feed(stream.substr(at, cut - at), on_value);
    CHECK(framer.pending_bytes() <= max_line_bytes);
    at = cut;
  }
  framer.feed(stream.substr(at), on_value);
  CHECK(framer.pending_bytes() <= max_line_bytes);
  framer.finish(on_value);
  CHECK(framer.pending_bytes() == 0);
  run.counters = framer.counters();
  CHECK(run.counters.accepted == run.values.size());
  return run;
}

std::size_t pick_max_line_bytes(FuzzedDataProvider& fdp) {
  // Mostly small limits, so the fuzzer reaches the too-long paths; 19 and 20 are the lengths of
  // INT64_MAX and INT64_MIN in decimal. 0 is not a valid configuration but the framer must cope.
  static constexpr std::size_t kSpecial[] = {0, 19, 20, 21, 1024, 1u << 20};
  const auto choice = fdp.ConsumeIntegralInRange<std::size_t>(0, 40);
  if (choice < std::size(kSpecial)) return kSpecial[choice];
  return choice - std::size(kSpecial) + 1;  // 1..35
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  const std::size_t max_line_bytes = pick_max_line_bytes(fdp);
  std::vector<std::uint16_t> raw_cuts(fdp.ConsumeIntegralInRange<std::size_t>(0, 32));
  for (auto& c : raw_cuts) c = fdp.ConsumeIntegral<std::uint16_t>();
  const std::string stream = fdp.ConsumeRemainingBytesAsString();

  std::vector<std::size_t> cuts;
  for (auto c : raw_cuts) cuts.push_back(c % (stream.size() + 1));
  std::sort(cuts.begin(), cuts.end());

  Run expected;
  reference_frame(stream, max_line_bytes, expected.values, expected.counters);

  const Run whole = frame(stream, max_line_bytes, {});
  const Run split = frame(stream, max_line_bytes, cuts);
  CHECK(whole.values == expected.values);
  CHECK(same(whole.counters, expected.counters));
  CHECK(split.values == whole.values);
  CHECK(same(split.counters, whole.counters));

  for (std::int64_t v : whole.values) {
    std::int64_t back = 0;
    const std::string text = std::to_string(v);
    CHECK(parse_line(text, back) == LineKind::value);
    CHECK(back == v);
  }
  return 0;
}
