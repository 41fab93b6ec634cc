// tumbled-bench checkpoint: the cost of store::CheckpointStore::save() for one new point while
// 0, 10 000 or 1 000 000 points wait unacknowledged, in process, on a fresh store each. The cost
// should follow what changed (one point, one open window), not the backlog. Bytes written are the
// growth of RocksDB's write-ahead log (*.log files) and the process's write() bytes
// (/proc/self/io wchar, which would also include any flush or compaction RocksDB ran meanwhile).
#include <algorithm>
#include <deque>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include "bench_common.hpp"
#include "sink/line_protocol.hpp"
#include "store/checkpoint_store.hpp"
#include "subcommands.hpp"

namespace tumbled::bench {

namespace {

std::uint64_t wal_bytes(const std::filesystem::path& dir) {
  std::uint64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".log") total += entry.file_size();
  }
  return total;
}

std::uint64_t wchar() {
  std::istringstream io(test::read_file("/proc/self/io"));
  for (std::string line; std::getline(io, line);) {
    if (line.starts_with("wchar:")) return std::stoull(line.substr(6));
  }
  return 0;
}

// Waits until RocksDB's background work (flushing a big memtable) stops writing.
void settle() {
  auto last = wchar();
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(milliseconds(200));
    const auto now = wchar();
    if (now == last) return;
    last = now;
  }
}

struct Stats {
  double median_us = 0, p90_us = 0;
  double wal_bytes = 0, wchar_bytes = 0;
};

Stats summarise(std::vector<double> us, const std::vector<double>& wal,
                const std::vector<double>& written) {
  Stats s;
  std::sort(us.begin(), us.end());
  s.median_us = us[us.size() / 2];
  s.p90_us = us[us.size() * 9 / 10];
  std::vector<double> w = wal, c = written;
  std::sort(w.begin(), w.end());
  std::sort(c.begin(), c.end());
  s.wal_bytes = w[w.size() / 2];
  s.wchar_bytes = c[c.size() / 2];
  return s;
}

std::string make_line(std::uint64_t seq) {
  std::string line;
  sink::append_point(line, "records", {{"window", "1s"}},
                     {{"sum", std::int64_t(seq) * 1'234'567}, {"count", std::int64_t(seq % 977)}},
                     1'700'000'000'000 + std::int64_t(seq) * 1000);
  return line;
}

}  // namespace

int run_checkpoint(const Options& options) {
  const auto sizes_text = options.get("backlogs", "0,10000,1000000");
  const auto rounds = static_cast<std::size_t>(options.get_int("rounds", 50));
  options.check_all_used();
  std::vector<std::size_t> sizes;
  {
    std::istringstream in(sizes_text);
    for (std::string item; std::getline(in, item, ',');) sizes.push_back(std::stoull(item));
  }

  bool proportional = true;
  double first_median = 0;
  for (const std::size_t backlog : sizes) {
    test::TempDir dir("tumbled-bench-checkpoint-");
    const auto state = dir.path() / "state";
    const auto store = store::CheckpointStore::open(state.string());
    std::deque<sink::QueuedPoint> points;
    for (std::size_t i = 1; i <= backlog; ++i) points.push_back({i, 0, make_line(i)});
    std::map<window::TimeMs, window::WindowAccumulator> windows;
    windows[1'700'000'000'000].add(42);

    // Set-up: one checkpoint holding the whole backlog (cost grows with it, for contrast).
    const auto setup_wal = wal_bytes(state);
    const auto t0 = Clock::now();
    if (const auto error = store->save("bench", {.open_windows = windows,
                                                 .points = points,
                                                 .saved_below = 1,
                                                 .next_seq = backlog + 1})) {
      throw std::runtime_error(*error);
    }
    const double setup_s = seconds_since(t0);
    const auto setup_written = wal_bytes(state) - setup_wal;
    settle();

    std::uint64_t next = backlog + 1;
    const auto measure = [&](std::size_t acks) {
      std::vector<double> us, wal, written;
      for (std::size_t r = 0; r < rounds; ++r) {
        for (std::size_t a = 0; a < acks && !points.empty(); ++a) points.pop_front();
        points.push_back({next, 0, make_line(next)});
        windows.begin()->second.add(static_cast<std::int64_t>(r));
        const auto wal0 = wal_bytes(state);
        const auto w0 = wchar();
        const auto t = Clock::now();
        const auto error = store->save(
            "bench",
            {.open_windows = windows, .points = points, .saved_below = next, .next_seq = next + 1});
        us.push_back(seconds_since(t) * 1e6);
        written.push_back(double(wchar() - w0));
        wal.push_back(double(wal_bytes(state)) - double(wal0));
        if (error) throw std::runtime_error(*error);
        ++next;
      }
      return summarise(us, wal, written);
    };
    const Stats one = measure(0);
    std::optional<Stats> acked;
    if (backlog >= 100 * rounds) acked = measure(100);

    std::cout << fmt(
        "%zu points waiting: full checkpoint of them %.3f s, %.1f MB WAL; then per "
        "checkpoint of 1 new point: median %.0f us, p90 %.0f us, WAL +%.0f B, "
        "write() %.0f B",
        backlog, setup_s, double(setup_written) / 1e6, one.median_us, one.p90_us, one.wal_bytes,
        one.wchar_bytes);
    if (acked) {
      std::cout << fmt("; with 100 acknowledged points deleted too: median %.0f us, WAL +%.0f B",
                       acked->median_us, acked->wal_bytes);
    }
    std::cout << "\n";
    const std::string label = fmt("checkpoint, %zu points waiting", backlog);
    result_row(
        label, "save() of 1 new point", fmt("%.0f us (p90 %.0f)", one.median_us, one.p90_us),
        fmt("WAL +%.0f B, write() %.0f B%s", one.wal_bytes, one.wchar_bytes,
            acked ? fmt("; +100 acks: %.0f us, WAL +%.0f B", acked->median_us, acked->wal_bytes)
                        .c_str()
                  : ""));
    result_row(label, "for contrast: checkpoint of the whole backlog",
               fmt("%.1f ms", setup_s * 1e3), fmt("WAL +%.1f MB", double(setup_written) / 1e6));
    if (first_median == 0) first_median = one.median_us;
    // Generous: a shared machine jitters, but an O(backlog) save would be 100x slower at 1M.
    if (one.median_us > 10 * first_median + 200) proportional = false;
  }
  result_row("checkpoint", "cost independent of backlog", proportional ? "yes" : "NO");
  print_result_rows();
  return 0;
}

}  // namespace tumbled::bench
