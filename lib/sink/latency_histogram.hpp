// LatencyHistogram: how long InfluxDB requests took, in fixed buckets, as Prometheus histograms
// count them.
//
// observe() files one duration in the first bucket whose upper bound is >= it, or only in the
// total count when it exceeds every bound (Prometheus' `+Inf` bucket); counts are per bucket,
// not cumulative: the exposition adds them up. The bounds cover a fast local write (1 ms) to
// a request near the default request_timeout (5 s) and beyond. Pure code, no I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace tumbled::sink {

struct LatencyHistogram {
  static constexpr std::array<double, 12> kBoundsSeconds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                         0.1,   0.25,   0.5,   1.0,  2.5,   5.0};
  std::array<std::uint64_t, kBoundsSeconds.size()> counts{};  // per bucket, not cumulative
  std::uint64_t count = 0;                                    // every observation, `+Inf`
  double sum_seconds = 0;

  void observe(double seconds) {
    for (std::size_t i = 0; i < kBoundsSeconds.size(); ++i) {
      if (seconds <= kBoundsSeconds[i]) {
        ++counts[i];
        break;
      }
    }
    ++count;
    sum_seconds += seconds;
  }
};

}  // namespace tumbled::sink
