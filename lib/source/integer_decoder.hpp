// IntegerDecoder: the `integers` format, one int64 per line (LineFramer), handed over as the
// span of the values of one chunk, so the window stage reads the clock once per chunk rather than
// once per value. The value buffer is shared by all decoders of a source (one thread, and each
// chunk is handed over before the next is read): an idle connection costs its framer only.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "source/decoder.hpp"

namespace tumbled::source {

class IntegerDecoder final : public Decoder {
 public:
  using OnValues = std::function<void(std::span<const std::int64_t>)>;

  IntegerDecoder(std::size_t max_line_bytes, std::vector<std::int64_t>& values, OnValues on_values)
      : framer_(max_line_bytes), values_(values), on_values_(std::move(on_values)) {}

  void feed(std::string_view bytes) override {
    framer_.forget_first_rejection();
    framer_.feed(bytes, [this](std::int64_t v) { values_.push_back(v); });
    hand_over();
  }
  void finish() override {
    framer_.forget_first_rejection();
    framer_.finish([this](std::int64_t v) { values_.push_back(v); });
    hand_over();
  }
  const LineCounters& counters() const override { return framer_.counters(); }
  std::string last_rejection() const override { return describe(framer_.first_rejection()); }

 private:
  void hand_over() {
    if (!values_.empty()) on_values_(values_);
    values_.clear();
  }

  LineFramer framer_;
  std::vector<std::int64_t>& values_;
  OnValues on_values_;
};

}  // namespace tumbled::source
