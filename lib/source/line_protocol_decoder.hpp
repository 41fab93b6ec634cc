// LineProtocolDecoder: the `line_protocol` format. Frames lines (LineSplitter), parses each with
// LineProtocolParser and hands the parsed line to `on_line`, which answers whether the pipeline
// took it (Rejection::none) or why not; a line that does not parse is counted as bad_line with
// its column, a blank or `#` comment line as empty.
#pragma once

#include <functional>
#include <string>

#include "source/decoder.hpp"
#include "source/line_protocol_parser.hpp"

namespace tumbled::source {

class LineProtocolDecoder final : public Decoder {
 public:
  using OnLine = std::function<Rejection(const ParsedLine&)>;

  // `on_chunk`, if given, is called before the lines of each chunk (feed or finish): the pipeline
  // reads the wall clock there, once per chunk rather than once per line, as for integers.
  LineProtocolDecoder(std::size_t max_line_bytes, OnLine on_line,
                      std::function<void()> on_chunk = {})
      : splitter_(max_line_bytes), on_line_(std::move(on_line)), on_chunk_(std::move(on_chunk)) {}

  void feed(std::string_view bytes) override;
  void finish() override;
  const LineCounters& counters() const override { return counters_; }
  std::string last_rejection() const override { return last_rejection_; }

 private:
  void decode(std::string_view line);
  void rejected(std::string why);

  LineSplitter splitter_;
  LineProtocolParser parser_;
  ParsedLine parsed_;  // reused: parsing allocates nothing once it has seen the longest line
  OnLine on_line_;
  std::function<void()> on_chunk_;
  LineCounters counters_;
  std::uint64_t lines_ = 0;     // of the stream so far, for "line N:" in rejections
  std::string last_rejection_;  // the first rejection of the latest chunk
  bool rejected_in_chunk_ = false;
};

}  // namespace tumbled::source
