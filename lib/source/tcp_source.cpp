#include "source/tcp_source.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>

#include "net/listener.hpp"

namespace tumbled::source {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadChunkBytes = 256 * 1024;
// At max_connections, a connection silent this long may be closed for a newcomer.
constexpr auto kEvictableAfter = std::chrono::seconds(10);

// The counts of `from` (not its gauges) added to `into`.
void add_counts(SourceCounters& into, const SourceCounters& from) {
  into.lines += from.lines;
  into.connections_accepted += from.connections_accepted;
  into.connections_refused += from.connections_refused;
  into.connections_evicted += from.connections_evicted;
  into.connections_idle_closed += from.connections_idle_closed;
  into.connection_failures += from.connection_failures;
}

}  // namespace

// One reader's connections: everything here is touched from the reader's executor only.
class TcpSource::Reader {
 public:
  Reader(TcpSource& source, std::size_t index) : source_(source), index_(index) {
    if (index_ > 0) {
      context_ = std::make_unique<asio::io_context>(1);
      work_.emplace(context_->get_executor());
    }
    resume_signal_.emplace(executor());
  }

  ~Reader() {
    if (context_) {
      // Every connection has ended by now (Pipeline::shutdown waits for it); what is left are
      // handlers nobody waits for.
      work_.reset();
      context_->stop();
      if (thread_.joinable()) thread_.join();
      joined_ = true;
      resume_signal_.reset();
      context_.reset();  // destroys coroutines never resumed; they must not report to the source
    }
  }

  asio::any_io_executor executor() const {
    return context_ ? asio::any_io_executor(context_->get_executor()) : source_.executor_;
  }

  void start() {
    if (!context_) return;
    thread_ = std::thread([this] {
      const std::string name = "tcp-reader-" + std::to_string(index_);
      pthread_setname_np(pthread_self(), name.c_str());
      for (;;) {
        try {
          context_->run();
          return;
        } catch (const std::exception& e) {
          source_.log_->critical("TCP reader thread {} of {}: {}; it goes on", index_,
                                 source_.listen_.to_string(), e.what());
        }
      }
    });
  }

  // Reader 0's connections, on the pipeline's executor; `over_cap`: at max_connections.
  asio::awaitable<void> serve(tcp::socket socket, bool over_cap);

  // The other readers' connections, handed over as a native socket.
  asio::awaitable<void> adopt(tcp::socket::protocol_type protocol,
                              tcp::socket::native_handle_type handle, bool over_cap) {
    const EndReport end(*this);
    tcp::socket socket(executor());
    boost::system::error_code ec;
    socket.assign(protocol, handle, ec);
    if (ec) {
      ::close(handle);
      throw std::runtime_error("cannot take over an accepted socket: " + ec.message());
    }
    co_await serve(std::move(socket), over_cap);
  }

  void failed(std::exception_ptr error) {
    net::connection_failed(
        error, counters.connection_failures, failure_log_, *source_.log_,
        source_.listen_.to_string() + " (reader thread " + std::to_string(index_) + ")");
  }

  void pause() {
    if (paused_) return;
    paused_ = true;
    // Set once here, not by each waiter: changing the expiry would cancel the other waiters.
    resume_signal_->expires_at(asio::steady_timer::time_point::max());
  }

  void resume() {
    if (paused_) connections_.touch_all();  // nobody was read: the silence was ours
    paused_ = false;
    resume_signal_->cancel();
  }

  void stop() {
    stopped_ = true;
    resume_signal_->cancel();
    connections_.close_all();
  }

  void close_idle(config::Millis idle) {
    if (stopped_ || paused_) return;
    const std::size_t closed = connections_.close_idle(idle);
    if (closed == 0) return;
    if (counters.connections_idle_closed == 0) {
      source_.log_->info(
          "closed {} connections on {} silent for {} (source.tcp.idle_timeout); further ones "
          "are only counted",
          closed, source_.listen_.to_string(), config::format_duration(idle));
    }
    counters.connections_idle_closed += closed;
  }

  // This reader's, from its start; connections_open stays 0 (the source counts open connections).
  SourceCounters counters;

  // Tells the source that a connection given to this reader has ended, however its coroutine
  // ends: the accept loop's count of open connections depends on it.
  class EndReport {
   public:
    explicit EndReport(Reader& reader) : reader_(reader) {}
    EndReport(const EndReport&) = delete;
    EndReport& operator=(const EndReport&) = delete;
    ~EndReport() {
      if (reader_.index_ == 0) {
        reader_.source_.ended(0);
      } else if (!reader_.joined_) {
        asio::post(reader_.source_.executor_,
                   [&source = reader_.source_, index = reader_.index_] { source.ended(index); });
      }
    }

   private:
    Reader& reader_;
  };

 private:
  bool admit(bool over_cap);

  TcpSource& source_;
  const std::size_t index_;
  std::unique_ptr<asio::io_context> context_;  // reader threads only
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  bool joined_ = false;
  net::ConnectionTable connections_;
  std::optional<asio::steady_timer> resume_signal_;  // paused readers wait on it
  // Shared by this reader's connections (each read is decoded to the end before the next): an
  // idle connection costs its decoder, not a buffer.
  std::vector<char> buffer_ = std::vector<char>(kReadChunkBytes);
  net::LogThrottle failure_log_;
  bool paused_ = false;
  bool stopped_ = false;
};

bool TcpSource::Reader::admit(bool over_cap) {
  if (!over_cap) {
    ++counters.connections_accepted;
    return true;
  }
  // While paused nobody is read, so silence says nothing about a connection: refuse.
  if (!paused_ && connections_.evict_idlest(kEvictableAfter)) {
    ++counters.connections_accepted;
    if (counters.connections_evicted++ == 0) {
      source_.log_->warn(
          "{} connections open on {} (source.tcp.max_connections): closing the one silent "
          "longest to admit a new one; further evictions are only counted",
          source_.max_connections_, source_.listen_.to_string());
    }
    return true;
  }
  if (counters.connections_refused++ == 0) {
    source_.log_->warn(
        "{} connections open on {}, none silent for {} s: refusing more "
        "(source.tcp.max_connections); further refusals are only counted",
        source_.max_connections_, source_.listen_.to_string(),
        std::chrono::duration_cast<std::chrono::seconds>(kEvictableAfter).count());
  }
  return false;
}

asio::awaitable<void> TcpSource::Reader::serve(tcp::socket socket, bool over_cap) {
  // Accepted just before stop(): its handler ran after stop() closed the others and must not
  // read past the final checkpoint.
  if (stopped_ || !admit(over_cap)) co_return;
  const std::string peer = net::peer_of(socket);
  source_.log_->debug("connection from {}", peer);
  net::ConnectionTable::Entry& connection = connections_.add(socket);

  StreamFormat format;
  format.reader = index_;
  const std::unique_ptr<Decoder> decoder = source_.decoders_(format);
  bool logged_rejection = false;

  // Folds the decoder's counter changes into ours and logs the connection's first rejection.
  LineCounters reported;
  const auto publish = [&] {
    const LineCounters& now = decoder->counters();
    if (!logged_rejection && now.rejected() > reported.rejected()) {
      source_.log_->warn(
          "rejected a line from {}: {}; further rejections on this connection are only counted",
          peer, decoder->last_rejection());
      logged_rejection = true;
    }
    counters.lines += now;
    counters.lines -= reported;
    reported = now;
  };

  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  int full_reads = 0;  // reads in a row that filled the buffer: more data is likely waiting
  while (!ec) {
    while (paused_ && !stopped_ && socket.is_open()) {
      co_await resume_signal_->async_wait(use_tuple);
    }
    // Wait for readiness only when the last read drained the socket; after a few full reads in a
    // row, wait anyway so that one busy connection cannot starve the others.
    if (full_reads == 0 || full_reads >= 8) {
      full_reads = 0;
      std::tie(ec) = co_await socket.async_wait(tcp::socket::wait_read, use_tuple);
      if (ec) break;
    }
    const std::size_t n = socket.read_some(asio::buffer(buffer_), ec);
    full_reads = n == buffer_.size() ? full_reads + 1 : 0;
    if (n > 0) connection.last_active = net::ConnectionTable::Clock::now();
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      continue;
    }
    if (n > 0) {
      decoder->feed(std::string_view(buffer_.data(), n));
      publish();
    }
  }
  if (ec == asio::error::eof) {
    decoder->finish();  // a last line without '\n' counts
    publish();
  } else if (!stopped_) {
    source_.log_->debug("connection from {} ended: {}", peer, ec.message());
  }
  connections_.remove(socket);
  const auto& totals = decoder->counters();
  source_.log_->debug("connection from {} closed: {} values, {} rejected lines", peer,
                      totals.accepted, totals.rejected());
}

TcpSource::TcpSource(asio::any_io_executor executor, config::Endpoint listen,
                     std::size_t max_connections, config::Millis idle_timeout, std::size_t threads,
                     DecoderFactory decoders, ReaderHandOver hand_over,
                     std::shared_ptr<spdlog::logger> log)
    : executor_(executor),
      listen_(std::move(listen)),
      max_connections_(max_connections),
      idle_timeout_(idle_timeout),
      decoders_(std::move(decoders)),
      hand_over_(std::move(hand_over)),
      log_(std::move(log)),
      acceptor_(executor),
      idle_timer_(executor),
      open_(std::max<std::size_t>(threads, 1)),
      reported_(open_.size() - 1) {
  for (std::size_t i = 0; i < open_.size(); ++i) {
    readers_.push_back(std::make_unique<Reader>(*this, i));
  }
}

TcpSource::~TcpSource() = default;

void TcpSource::listen() {
  net::listen_on(acceptor_, listen_, "source.tcp.listen");
  for (auto& reader : readers_) reader->start();
}

config::Endpoint TcpSource::local_endpoint() const {
  const auto endpoint = acceptor_.local_endpoint();
  return {endpoint.address().to_string(), endpoint.port()};
}

const SourceCounters& TcpSource::counters() const {
  counters_ = readers_.front()->counters;  // live: reader 0 runs on this executor
  for (const SourceCounters& reported : reported_) add_counts(counters_, reported);
  counters_.connection_failures += hand_off_failures_;
  counters_.connections_open = open_total_;
  counters_.pauses = pauses_;
  return counters_;
}

template <class Action>
void TcpSource::on_each_reader(Action action) {
  // Reader 0 at once (this is its executor), the others when their thread gets to it.
  for (auto& reader : readers_) {
    asio::dispatch(reader->executor(), [&reader = *reader, action] { action(reader); });
  }
}

asio::awaitable<void> TcpSource::run() {
  // Both end after stop(); run() returns only then, so nothing of this source runs after it.
  co_await (net::accept_connections(
                acceptor_, stopped_, [] { return true; },
                [this](tcp::socket socket) { return hand_off(std::move(socket)); }, log_,
                listen_.to_string(), hand_off_failures_) &&
            close_idle_connections());
}

asio::awaitable<void> TcpSource::hand_off(tcp::socket socket) {
  if (stopped_) co_return;  // accepted just before stop()
  // A newcomer goes to the reader with the fewest connections; at the cap, to the one with the
  // most, whose table is the likeliest to hold a connection silent long enough to close. Ties go
  // round: short connections one after another take turns.
  const bool over_cap = open_total_ >= max_connections_;
  std::size_t chosen = next_reader_ % open_.size();
  for (std::size_t k = 1; k < open_.size(); ++k) {
    const std::size_t i = (next_reader_ + k) % open_.size();
    if (over_cap ? open_[i] > open_[chosen] : open_[i] < open_[chosen]) chosen = i;
  }
  next_reader_ = chosen + 1;
  ++open_[chosen];
  ++open_total_;
  Reader& reader = *readers_[chosen];
  if (chosen == 0) {
    const Reader::EndReport end(reader);
    co_await reader.serve(std::move(socket), over_cap);
    co_return;
  }
  // A socket belongs to the io_context it was made on: the reader takes over its descriptor.
  boost::system::error_code ec;
  const auto protocol = acceptor_.local_endpoint(ec).protocol();
  const auto handle = ec ? -1 : socket.release(ec);
  if (ec) {
    ended(chosen);
    throw std::runtime_error("cannot hand a connection to reader thread " + std::to_string(chosen) +
                             ": " + ec.message());
  }
  asio::co_spawn(reader.executor(), reader.adopt(protocol, handle, over_cap),
                 [&reader](std::exception_ptr error) { reader.failed(error); });
}

void TcpSource::ended(std::size_t reader) {
  --open_[reader];
  --open_total_;
}

asio::awaitable<void> TcpSource::synchronize() {
  for (std::size_t i = 1; i < readers_.size(); ++i) {
    Reader& reader = *readers_[i];
    auto [fold, counts] = co_await asio::co_spawn(
        reader.executor(),
        [this, &reader, i]() -> asio::awaitable<std::pair<std::function<void()>, SourceCounters>> {
          co_return std::pair(hand_over_ ? hand_over_(i) : std::function<void()>(),
                              reader.counters);
        },
        asio::use_awaitable);
    if (fold) fold();
    reported_[i - 1] = counts;
  }
}

asio::awaitable<void> TcpSource::close_idle_connections() {
  if (idle_timeout_.count() == 0) co_return;
  // A quarter of the timeout between checks: a silent connection closes within 1.25 of it.
  const auto every = std::max<config::Millis>(idle_timeout_ / 4, config::Millis(10));
  while (!stopped_) {
    idle_timer_.expires_after(every);
    co_await idle_timer_.async_wait(use_tuple);
    if (stopped_ || paused_) continue;
    on_each_reader([idle = idle_timeout_](Reader& reader) { reader.close_idle(idle); });
  }
}

void TcpSource::pause() {
  if (paused_) return;
  paused_ = true;
  ++pauses_;
  on_each_reader([](Reader& reader) { reader.pause(); });
}

void TcpSource::resume() {
  paused_ = false;
  on_each_reader([](Reader& reader) { reader.resume(); });
}

void TcpSource::stop() {
  stopped_ = true;
  idle_timer_.cancel();
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  on_each_reader([](Reader& reader) { reader.stop(); });
}

}  // namespace tumbled::source
