#include "support/fault_proxy.hpp"

#include "support/process.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <future>
#include <iostream>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/socket.h>

namespace tumbled::test {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// Asio opens sockets without SOCK_CLOEXEC. A listening socket inherited by a
// concurrently spawned child would keep accepting after we stop listening.
template <class Socket>
void set_cloexec(Socket& socket) {
  ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
}

struct Session {
  explicit Session(tcp::socket accepted)
      : client(std::move(accepted)), upstream(client.get_executor()) {}
  tcp::socket client;
  tcp::socket upstream;
  bool blackholed = false;  // accepted in blackhole mode: has no upstream
  bool closed = false;
  int directions_done = 0;  // closed once both directions saw EOF
};

}  // namespace

// Everything below except the atomics, `mode_snapshot` and `port` is touched
// only on the I/O thread; public methods hop there with call().
struct FaultProxy::Impl {
  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
      ioc.get_executor()};
  tcp::acceptor acceptor{ioc};
  std::uint16_t port = 0;
  std::uint16_t target_port = 0;
  Mode mode = Mode::pass;
  std::atomic<Mode> mode_snapshot{Mode::pass};
  bool listening = false;
  unsigned generation = 0;  // bumped when listening stops; stale accept loops exit
  std::set<std::shared_ptr<Session>> sessions;
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> forwarded{0};
  std::thread thread;

  template <class F>
  auto call(F f) -> decltype(f()) {
    if (ioc.get_executor().running_in_this_thread()) return f();
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(ioc, [&task] { task(); });
    return result.get();
  }

  void bind_listener() {
    // Bind to an explicit port, not 0: the kernel only pins a port that was
    // requested explicitly (SOCK_BINDPORT_LOCK). With port 0 it would release
    // the port when refuse() shuts the listener down, and pass() would come
    // back on a different one.
    for (int attempt = 0;; ++attempt) {
      const std::uint16_t candidate = port != 0 ? port : free_port();
      error_code ec;
      acceptor.open(tcp::v4());
      set_cloexec(acceptor);
      acceptor.set_option(tcp::acceptor::reuse_address(true));
      acceptor.bind({asio::ip::address_v4::loopback(), candidate}, ec);
      if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
      if (!ec) {
        if (port == 0) port = candidate;  // written once, before the I/O thread starts
        return;
      }
      acceptor.close();
      if (attempt >= 20) throw boost::system::system_error(ec, "FaultProxy bind");
      if (port != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void start_listening() {
    if (listening) return;
    error_code ec;
    // After stop_listening() the socket is bound but closed; listen() again
    // reuses the same port. Fall back to a fresh socket on the same port.
    if (acceptor.is_open()) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (!acceptor.is_open() || ec) {
      acceptor.close(ec);
      bind_listener();
    }
    listening = true;
    asio::co_spawn(ioc, accept_loop(generation), asio::detached);
  }

  void stop_listening() {
    if (!listening) return;
    listening = false;
    ++generation;
    error_code ignored;
    acceptor.cancel(ignored);
    // shutdown(SHUT_RD) on a listening socket makes Linux drop it back to
    // CLOSE state (pending handshakes are reset) while keeping the bind:
    // connects get RST -> ECONNREFUSED, and nobody else can take the port.
    ::shutdown(acceptor.native_handle(), SHUT_RD);
  }

  void close_session(const std::shared_ptr<Session>& s, bool rst) {
    if (s->closed) return;
    s->closed = true;
    for (tcp::socket* socket : {&s->client, &s->upstream}) {
      if (!socket->is_open()) continue;
      error_code ignored;
      if (rst) socket->set_option(asio::socket_base::linger(true, 0), ignored);
      socket->close(ignored);
    }
    sessions.erase(s);
  }

  void close_all(bool rst) {
    const std::vector<std::shared_ptr<Session>> current(sessions.begin(), sessions.end());
    for (const auto& s : current) close_session(s, rst);
  }

  void apply_mode(Mode m) {
    mode = m;
    mode_snapshot = m;
    switch (m) {
      case Mode::refuse:
        stop_listening();
        close_all(false);
        break;
      case Mode::reset:
        start_listening();
        close_all(true);
        break;
      case Mode::pass:
      case Mode::blackhole: start_listening(); break;
    }
  }

  bool dropping(const Session& s) const { return s.blackholed || mode == Mode::blackhole; }

  asio::awaitable<void> accept_loop(unsigned gen) {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(nothrow);
      if (gen != generation) co_return;  // listener stopped; `socket` closes
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        // e.g. EMFILE: back off instead of spinning.
        asio::steady_timer backoff(ioc, std::chrono::milliseconds(10));
        co_await backoff.async_wait(nothrow);
        if (gen != generation) co_return;
        continue;
      }
      set_cloexec(socket);
      ++accepted;
      auto s = std::make_shared<Session>(std::move(socket));
      sessions.insert(s);
      asio::co_spawn(ioc, run_session(s), asio::detached);
    }
  }

  asio::awaitable<void> run_session(std::shared_ptr<Session> s) {
    if (mode == Mode::reset) {
      close_session(s, true);
      co_return;
    }
    if (mode == Mode::blackhole) {
      s->blackholed = true;
      s->directions_done = 1;  // there is no upstream direction
      co_await pump(s, true);
      co_return;
    }
    auto [ec] = co_await s->upstream.async_connect({asio::ip::address_v4::loopback(), target_port},
                                                   nothrow);
    if (s->closed) co_return;
    if (ec) {
      // Target down: the client sees its connection accepted then closed.
      close_session(s, false);
      co_return;
    }
    set_cloexec(s->upstream);
    error_code ignored;
    s->client.set_option(tcp::no_delay(true), ignored);
    s->upstream.set_option(tcp::no_delay(true), ignored);
    if (mode == Mode::reset) {  // mode changed while connecting
      close_session(s, true);
      co_return;
    }
    asio::co_spawn(ioc, pump(s, true), asio::detached);
    asio::co_spawn(ioc, pump(s, false), asio::detached);
  }

  asio::awaitable<void> pump(std::shared_ptr<Session> s, bool client_to_upstream) {
    tcp::socket& from = client_to_upstream ? s->client : s->upstream;
    tcp::socket& to = client_to_upstream ? s->upstream : s->client;
    std::array<char, 16384> buf;
    for (;;) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), nothrow);
      if (s->closed) co_return;
      if (ec == asio::error::eof) {
        if (!dropping(*s)) {
          error_code ignored;
          to.shutdown(tcp::socket::shutdown_send, ignored);  // propagate half-close
        }
        if (++s->directions_done == 2) close_session(s, false);
        co_return;
      }
      if (ec) {
        close_session(s, ec == asio::error::connection_reset);
        co_return;
      }
      if (dropping(*s)) continue;
      auto [write_ec, written] =
          co_await asio::async_write(to, asio::buffer(buf.data(), n), nothrow);
      if (s->closed) co_return;
      if (write_ec) {
        close_session(s, true);
        co_return;
      }
      forwarded += written;
    }
  }
};

FaultProxy::FaultProxy(std::uint16_t target_port, Mode initial) : impl_(std::make_unique<Impl>()) {
  impl_->target_port = target_port;
  impl_->bind_listener();
  impl_->mode = impl_->mode_snapshot = initial;
  if (initial == Mode::refuse) {
    impl_->listening = true;  // so stop_listening() below does its job
    impl_->stop_listening();
  } else {
    impl_->listening = true;
    asio::co_spawn(impl_->ioc, impl_->accept_loop(impl_->generation), asio::detached);
  }
  impl_->thread = std::thread([impl = impl_.get()] {
    for (;;) {
      try {
        impl->ioc.run();
        return;
      } catch (const std::exception& e) {
        std::cerr << "FaultProxy I/O thread: " << e.what() << '\n';
      }
    }
  });
}

FaultProxy::~FaultProxy() {
  impl_->call([impl = impl_.get()] {
    impl->stop_listening();
    error_code ignored;
    impl->acceptor.close(ignored);
    impl->close_all(false);
  });
  // With the guard gone, run() returns once every coroutine has observed its
  // cancelled operation and finished: no frame outlives the io_context.
  impl_->work.reset();
  impl_->thread.join();
}

std::uint16_t FaultProxy::port() const {
  return impl_->port;
}

void FaultProxy::set_mode(Mode mode) {
  impl_->call([impl = impl_.get(), mode] { impl->apply_mode(mode); });
}

FaultProxy::Mode FaultProxy::mode() const {
  return impl_->mode_snapshot;
}

void FaultProxy::cut() {
  impl_->call([impl = impl_.get()] { impl->close_all(true); });
}

void FaultProxy::set_target_port(std::uint16_t target_port) {
  impl_->call([impl = impl_.get(), target_port] { impl->target_port = target_port; });
}

std::uint64_t FaultProxy::accepted_connections() const {
  return impl_->accepted;
}

std::uint64_t FaultProxy::bytes_forwarded() const {
  return impl_->forwarded;
}

std::size_t FaultProxy::open_connections() const {
  return impl_->call([impl = impl_.get()] { return impl->sessions.size(); });
}

}  // namespace tumbled::test
