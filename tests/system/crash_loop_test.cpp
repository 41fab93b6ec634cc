// A crash loop: SIGKILL the daemon at varied points of ingest, checkpoint and flush, six times in a
// row, restarting it each time, with InfluxDB coming and going. The verdict rests on events, never
// on how fast the machine is:
//
// - The feeder sends two values at a time on one connection per run of the daemon and waits until
//   /metrics (tumbled_lines_accepted_total) shows them read. The daemon puts a value in the window
//   of the moment it reads it, and that moment lies between the feeder's clock reading before the
//   send and its clock reading after the confirming answer (after the kill, for values never
//   confirmed). A send whose interval lies within one window is certainly in that window; any
//   other is possibly in each window its interval touches. A slow machine only widens intervals:
//   fewer windows are known for certain, none is judged wrongly.
// - Before each kill the test reads tumbled_lines_accepted_total, then waits until
//   tumbled_checkpoints_total grows: that many first lines of the run are durable.
//
// Afterwards, for every window W in InfluxDB or fed:
// - nothing invented: at most the values possibly read into W, nothing in a window nobody fed;
// - loss bounded by the last checkpoint: at least the durable values certainly read into W;
// - hence a window the kills did not touch (every value possibly in it certainly in it, and
//   durable) is in InfluxDB exactly, once. The test waits for at least one such window before the
//   first kill and two after the last, so there are always some;
// and over all windows together: at least every durable value, at most every value sent.
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "support/fault_proxy.hpp"
#include "support/http_client.hpp"
#include "support/influxd.hpp"
#include "support/tcp_feed.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t kWindowMs = 1000;
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t window_start(std::int64_t t) {
  return t / kWindowMs * kWindowMs;
}

// A counter of pipeline "records" on the daemon's /metrics. Throws rather than using Catch's
// macros: the feeder thread calls it too.
double metric(std::uint16_t port, const std::string& name) {
  return pipeline_metric(scrape_metrics(port), name);
}

// Two values sent on the feeder's connection to one run of the daemon.
struct Send {
  std::size_t run;
  std::size_t first_line;  // among the lines sent to this run
  std::array<std::int64_t, 2> values;
  std::int64_t sent_ms;                // clock before the send
  std::int64_t confirmed_ms = kNever;  // clock after /metrics showed them read; kNever: not seen
  std::int64_t sum() const { return values[0] + values[1]; }
};

// One run of the daemon, from a start to a SIGKILL (or, for the last one, to the end).
struct Run {
  std::int64_t killed_ms = kNever;  // clock after the SIGKILL was reaped
  std::size_t durable_lines = 0;    // accepted before a checkpoint that completed before the kill
  // False if the feeder's connection broke while this run lived and it had to open another:
  // then the line counter no longer tells which sends were read, and nothing of this run is
  // taken as confirmed or durable.
  bool one_connection = true;
};

struct WindowBounds {
  std::int64_t lower = 0;    // durable values certainly read into it: must land
  std::int64_t certain = 0;  // values certainly read into it
  std::int64_t upper = 0;    // values possibly read into it: never more may land
  std::size_t first_run = std::numeric_limits<std::size_t>::max();  // of the sends possibly in it
  bool known() const { return upper > 0 && certain == upper; }
  bool exact() const { return upper > 0 && lower == upper; }
};

struct Expectations {
  std::map<std::int64_t, WindowBounds> windows;  // by window end, InfluxDB's timestamp
  std::int64_t durable = 0, sent = 0;
};

// What the sends and runs say about the daemon's windows, as of `now` (no read after it).
Expectations expectations(const std::vector<Send>& sends, const std::vector<Run>& runs,
                          std::int64_t now) {
  Expectations e;
  for (const auto& s : sends) {
    const Run& run = runs.at(s.run);
    const bool confirmed = run.one_connection && s.confirmed_ms != kNever;
    const std::int64_t read_by = std::min(confirmed ? s.confirmed_ms : run.killed_ms, now);
    std::int64_t durable = 0;
    for (std::size_t i = 0; i < s.values.size(); ++i) {
      if (run.one_connection && s.first_line + i < run.durable_lines) durable += s.values[i];
    }
    e.sent += s.sum();
    e.durable += durable;
    const bool certain = confirmed && window_start(s.sent_ms) == window_start(read_by);
    for (std::int64_t start = window_start(s.sent_ms); start <= read_by; start += kWindowMs) {
      auto& w = e.windows[start + kWindowMs];
      w.upper += s.sum();
      w.first_run = std::min(w.first_run, s.run);
      if (certain) {
        w.certain += s.sum();
        w.lower += durable;
      }
    }
  }
  return e;
}

}  // namespace

TEST_CASE("repeated SIGKILLs: untouched windows exact, the rest within the loss bound",
          "[system][crash]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  FaultProxy proxy(influx.port());
  PipelineSpec spec;
  spec.influx_port = proxy.port();
  spec.window = "1s";
  Daemon daemon({spec}, "200ms");
  const std::uint16_t http_port = daemon.enable_http();
  daemon.start();

  // Held to kill and restart the daemon, and by the feeder to connect and to read /metrics, so
  // that it knows which run it talks to.
  std::mutex lifecycle;
  std::size_t current_run = 0;  // guarded by lifecycle
  std::mutex mutex;             // guards sends and runs
  std::vector<Send> sends;
  std::vector<Run> runs(1);
  std::atomic<bool> feeding{true}, abandon{false};
  std::thread feeder_thread([&] {
    std::int64_t value = 1;
    while (feeding) {
      std::size_t run = 0;
      std::size_t lines = 0;  // sent on this connection
      try {
        std::optional<TcpFeeder> feeder;
        {
          std::lock_guard hold(lifecycle);
          run = current_run;
          feeder.emplace(spec.listen_port);
        }
        while (feeding) {
          // Sends only in the first part of each window, leaving the rest for the confirmation.
          const auto phase = wall_ms() % kWindowMs;
          if (phase < 200 || phase >= 600) {
            std::this_thread::sleep_for(5ms);
            continue;
          }
          std::size_t index = 0;
          {
            std::lock_guard lock(mutex);
            index = sends.size();
            sends.push_back({run, lines, {value, value + 1}, wall_ms()});
          }
          lines += 2;
          feeder->send(std::to_string(value) + "\n" + std::to_string(value + 1) + "\n");
          value = value % 1000 + 1;
          // Until the daemon has read them, or is gone.
          for (bool read = false; !read && !abandon;) {
            {
              std::lock_guard hold(lifecycle);
              if (current_run != run) throw std::runtime_error("the daemon was killed");
              if (metric(http_port, "tumbled_lines_accepted_total") >= static_cast<double>(lines)) {
                const auto now = wall_ms();
                std::lock_guard lock(mutex);
                sends[index].confirmed_ms = now;
                read = true;
              }
            }
            if (!read) std::this_thread::sleep_for(2ms);
          }
          std::this_thread::sleep_for(3ms);
        }
        feeder->close();
      } catch (const std::exception&) {
        // Normally the daemon was killed under this connection; if it still runs, the connection
        // broke otherwise and the line counter cannot be matched to this run's sends any more.
        std::lock_guard hold(lifecycle);
        if (current_run == run && lines > 0) {
          std::lock_guard lock(mutex);
          runs[run].one_connection = false;
        }
      }
      if (feeding) std::this_thread::sleep_for(20ms);
    }
  });
  struct Joiner {
    std::atomic<bool>& feeding;
    std::atomic<bool>& abandon;
    std::thread& thread;
    ~Joiner() {
      feeding = false;
      abandon = true;  // a failed REQUIRE: do not wait for a daemon that may be gone
      if (thread.joinable()) thread.join();
    }
  } joiner{feeding, abandon, feeder_thread};

  // Windows that have ended and whose content is known for certain (so far), all of whose sends
  // went to run `from_run` or later.
  const auto known_windows = [&](std::size_t from_run) {
    const auto now = wall_ms();
    std::lock_guard lock(mutex);
    std::size_t known = 0;
    for (const auto& [end, w] : expectations(sends, runs, now).windows) {
      if (end <= now && w.known() && w.first_run >= from_run) ++known;
    }
    return known;
  };
  // For a failure message: how far the feeder got.
  const auto progress = [&] {
    std::lock_guard lock(mutex);
    std::size_t confirmed = 0;
    for (const auto& s : sends) confirmed += s.confirmed_ms != kNever ? 1 : 0;
    std::ostringstream out;
    out << sends.size() << " sends, " << confirmed << " confirmed, in " << runs.size()
        << " runs; log:\n"
        << daemon.log_text();
    return out.str();
  };

  // A window before the first kill that must come through all six of them exactly.
  if (!wait_until([&] { return known_windows(0) >= 1; }, hang_guard(), 50ms)) FAIL(progress());
  std::mt19937 random(Catch::rngSeed());
  for (int round = 0; round < 6; ++round) {
    // (These pauses only vary where the kill falls; no verdict depends on them.)
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + random() % 1300));
    // InfluxDB away in some rounds, so that points wait in the store when the kill comes.
    proxy.set_mode(random() % 2 ? FaultProxy::Mode::refuse : FaultProxy::Mode::pass);
    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 700));
    // Every line accepted so far is durable once a checkpoint has completed after this reading.
    const auto accepted =
        static_cast<std::size_t>(metric(http_port, "tumbled_lines_accepted_total"));
    const double checkpoints = metric(http_port, "tumbled_checkpoints_total");
    REQUIRE(wait_until([&] { return metric(http_port, "tumbled_checkpoints_total") > checkpoints; },
                       hang_guard(), 10ms));
    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 200));
    std::lock_guard hold(lifecycle);
    daemon.kill();
    const auto killed_ms = wall_ms();
    {
      std::lock_guard lock(mutex);
      runs[current_run].killed_ms = killed_ms;
      runs[current_run].durable_lines = accepted;
      runs.emplace_back();
    }
    daemon.start();
    ++current_run;
  }
  proxy.set_mode(FaultProxy::Mode::pass);
  const std::size_t last_run = current_run;
  // Two windows after the last restart that must land exactly.
  if (!wait_until([&] { return known_windows(last_run) >= 2; }, hang_guard(), 50ms)) {
    FAIL(progress());
  }
  feeding = false;
  feeder_thread.join();  // after confirming what it sent last
  // The last run is not killed: all it accepted must land.
  const auto accepted = static_cast<std::size_t>(metric(http_port, "tumbled_lines_accepted_total"));
  Expectations expected;
  {
    std::lock_guard lock(mutex);
    runs.back().durable_lines = accepted;
    expected = expectations(sends, runs, wall_ms());
  }

  const auto landed = [&] {
    std::map<std::int64_t, std::int64_t> sums;
    for (const auto& row : influx.series_values("telemetry", "SELECT sum FROM records")) {
      sums[row.at(0).to_number<std::int64_t>()] = row.at(1).to_number<std::int64_t>();
    }
    return sums;
  };
  // Waits (the window open last has to close, points waiting through a refusing InfluxDB have to
  // be replayed) until everything that must land has.
  const bool arrived = wait_until(
      [&] {
        const auto got = landed();
        std::int64_t total = 0;
        for (const auto& [end, sum] : got) total += sum;
        for (const auto& [end, w] : expected.windows) {
          if (w.lower > 0 && (got.count(end) == 0 || got.at(end) < w.lower)) return false;
        }
        return total >= expected.durable;
      },
      hang_guard(), 200ms);
  CHECK(daemon.stop() == 0);

  const auto got = landed();
  std::int64_t total = 0;
  for (const auto& [end, sum] : got) total += sum;
  INFO("sent " << expected.sent << ", durable " << expected.durable << ", landed " << total
               << " in " << got.size() << " windows");
  CHECK(arrived);
  CHECK(total <= expected.sent);
  CHECK(total >= expected.durable);
  std::size_t exact = 0, exact_through_kills = 0;
  for (const auto& [end, sum] : got) {
    INFO("landed window ending " << end << " with " << sum);
    CHECK(expected.windows.count(end) == 1);  // nothing in a window nobody fed
  }
  for (const auto& [end, w] : expected.windows) {
    const std::int64_t sum = got.count(end) ? got.at(end) : 0;
    INFO("window ending " << end << ": landed " << sum << ", must be in [" << w.lower << ", "
                          << w.upper << "], certainly read " << w.certain << ", runs from "
                          << w.first_run);
    CHECK(sum <= w.upper);
    CHECK(sum >= w.lower);
    if (w.exact()) {
      ++exact;
      if (w.first_run < last_run) ++exact_through_kills;
    }
  }
  INFO(exact << " exact windows, " << exact_through_kills << " of them before a kill");
  CHECK(exact >= 3);
  CHECK(exact_through_kills >= 1);
}
