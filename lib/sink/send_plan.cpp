#include "sink/send_plan.hpp"

#include <algorithm>

namespace tumbled::sink {

namespace {

constexpr TimeMs kReminderEveryMs = 30'000;

std::string describe(const WriteResult& result) {
  if (result.status == 0) return result.error;
  std::string text = "HTTP " + std::to_string(result.status);
  if (!result.error.empty()) text += ": " + result.error;
  return text;
}

// What an operator should check when InfluxDB refuses a batch for good.
const char* hint_for(int status, const config::InfluxSinkConfig& settings) {
  const bool v2 = settings.api == "v2";
  switch (status) {
    case 401:
    case 403:
      return v2 ? "check sink.influxdb.token and its write permission on the bucket"
                : "check sink.influxdb.username and password";
    case 404:
      return v2 ? "check that sink.influxdb.org and bucket exist and the URL"
                : "check that sink.influxdb.database exists (CREATE DATABASE) and the URL";
    case 400: return "InfluxDB could not store these points (e.g. a field type conflict)";
    case 413: return "raise InfluxDB's max-body-size or lower sink.influxdb.batch_size";
    default: return "InfluxDB will not accept this batch as it is";
  }
}

}  // namespace

SendPlan::SendPlan(const config::InfluxSinkConfig& settings, std::size_t max_batch_bytes)
    : settings_(settings), max_batch_bytes_(max_batch_bytes), backoff_(settings.retry) {}

SendPlan::Next SendPlan::next_send(const PointQueue& queue, TimeMs now) const {
  // While a refused batch is being split, its pieces are due at once.
  const std::size_t due_size = flushing_ || split_limit_ > 0 ? 1 : settings_.batch_size;
  const auto due = queue.batch_due_at(due_size, settings_.batch_interval.count());
  if (!due || *due > now) return {0, due};
  if (split_limit_ > 0) return {split_limit_, std::nullopt};
  // With batch_size or fewer waiting this is all of them, as it always was; beyond that a backlog
  // drains in batches of up to max_batch_size, within max_batch_bytes.
  const std::size_t most = std::max(settings_.max_batch_size, settings_.batch_size);
  return {queue.batch_points(settings_.batch_size, most, max_batch_bytes_), std::nullopt};
}

bool SendPlan::end_split_if_done(std::uint64_t last_seq) {
  if (split_limit_ == 0 || last_seq < split_through_seq_) return false;
  split_limit_ = 0;
  return true;
}

SendPlan::Failing SendPlan::failing_note(TimeMs now) {
  if (backoff_.failures() == 1) {
    last_reminder_ = now;
    return Failing::started;
  }
  if (now - last_reminder_ >= kReminderEveryMs) {
    last_reminder_ = now;
    return Failing::still;
  }
  return Failing::quiet;
}

SendPlan::Step SendPlan::on_write(const PointQueue::Batch& batch, const WriteResult& result,
                                  TimeMs now, double jitter) {
  Step step;
  const Verdict verdict = classify(result.status);
  if (verdict == Verdict::success) {
    counters_.last_success_ms = now;
    counters_.last_failure.clear();
    step.recovered_after = backoff_.failures();
    backoff_.reset();
    ++counters_.batches_written;
    counters_.points_written += batch.points;
    step.log_split_done = end_split_if_done(batch.last_seq);
    return step;
  }

  step.failure = describe(result);
  ++counters_.failed_attempts;
  // 400 and 413 are about the points, not about InfluxDB being reachable and willing.
  if (verdict != Verdict::split) counters_.last_failure = step.failure;
  if (verdict == Verdict::split && batch.points > 1) {
    // Halve until the refused points stand alone.
    if (split_limit_ == 0) {
      split_through_seq_ = batch.last_seq;
      step.log_split_started = true;
    }
    ++counters_.batches_split;
    split_limit_ = batch.points / 2;
    step.action = Step::Action::split;
    return step;
  }
  if (verdict == Verdict::split || verdict == Verdict::reject) {
    step.action = Step::Action::dead_letter;
    step.reason = step.failure + " (" + hint_for(result.status, settings_) + ")";
    pending_after_retries_ = false;
  } else {
    step.delay = with_jitter(backoff_.next_delay(), jitter);
    if (result.retry_after) step.delay = std::max(step.delay, *result.retry_after);
    step.failures = backoff_.failures();
    if (!backoff_.exhausted()) {
      step.action = Step::Action::retry;
      step.log_failing = failing_note(now);
      return step;
    }
    step.action = Step::Action::dead_letter;
    step.delay = {};
    step.reason = step.failure + " (gave up after " + std::to_string(backoff_.failures()) +
                  " attempts: retry.max_retries)";
    pending_after_retries_ = true;
  }
  pending_reason_ = step.reason;
  pending_failure_ = step.failure;
  return step;
}

SendPlan::Step SendPlan::on_dead_letter(const PointQueue::Batch& batch, bool stored, TimeMs now) {
  Step step;
  step.reason = pending_reason_;
  step.failure = pending_failure_;
  if (!stored) {
    // Keep it and try again later; after max_retries, the retry episode goes on.
    step.action = Step::Action::keep;
    step.delay = settings_.retry.max_backoff;
    if (pending_after_retries_) {
      step.failures = backoff_.failures();
      step.log_failing = failing_note(now);
    }
    return step;
  }
  step.action = Step::Action::drop;
  // One line per episode, not per point: a schema conflict can refuse every point for hours.
  if (now - last_dead_letter_log_ >= kReminderEveryMs) {
    step.log_dead_letter = true;
    last_dead_letter_log_ = now;
  }
  ++counters_.batches_dead_lettered;
  counters_.points_dead_lettered += batch.points;
  if (pending_after_retries_) backoff_.reset();
  step.log_split_done = end_split_if_done(batch.last_seq);
  pending_reason_.clear();
  pending_failure_.clear();
  return step;
}

}  // namespace tumbled::sink
