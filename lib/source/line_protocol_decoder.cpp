#include "source/line_protocol_decoder.hpp"

namespace tumbled::source {

void LineProtocolDecoder::feed(std::string_view bytes) {
  rejected_in_chunk_ = false;
  if (on_chunk_) on_chunk_();
  // Line by line, so that an over-long line is noted in order with the others.
  while (!bytes.empty()) {
    bytes.remove_prefix(
        splitter_.feed_line(bytes, [this](std::string_view line) { decode(line); }));
    if (splitter_.too_long() > counters_.too_long) {
      counters_.too_long = splitter_.too_long();
      ++lines_;
      rejected(describe(Rejection::too_long));
    }
  }
}

void LineProtocolDecoder::finish() {
  rejected_in_chunk_ = false;
  if (on_chunk_) on_chunk_();
  splitter_.finish([this](std::string_view line) { decode(line); });
}

void LineProtocolDecoder::rejected(std::string why) {
  if (rejected_in_chunk_) return;
  rejected_in_chunk_ = true;
  last_rejection_ = "line " + std::to_string(lines_) + ": " + why;
}

void LineProtocolDecoder::decode(std::string_view line) {
  ++lines_;
  const ParseResult parsed = parser_.parse(line, parsed_);
  if (parsed.status == ParseStatus::skip) {
    ++counters_.empty;
    return;
  }
  if (parsed.status == ParseStatus::error) {
    ++counters_.bad_line;
    rejected(std::string(describe(Rejection::bad_line)) + ": column " +
             std::to_string(parsed.column) + ": " + std::string(parsed.message));
    return;
  }
  const Rejection verdict = on_line_(parsed_);
  ++counters_[verdict];
  if (verdict != Rejection::none) rejected(describe(verdict));
}

}  // namespace tumbled::source
