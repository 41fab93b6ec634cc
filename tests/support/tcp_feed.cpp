#include "support/tcp_feed.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/system/system_error.hpp>

namespace tumbled::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;

struct TcpFeeder::Impl {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  std::chrono::milliseconds timeout;
  bool open = false;

  // tcp_stream's deadlines only apply to async operations, so each blocking
  // step is an async op driven to completion on the private io_context.
  template <class Start>
  void run_op(Start&& start, const char* what) {
    error_code result;
    stream.expires_after(timeout);
    start([&](error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    if (result) throw boost::system::system_error(result, what);
  }

  void connect(std::uint16_t port) {
    const asio::ip::tcp::endpoint endpoint(asio::ip::address_v4::loopback(), port);
    run_op([&](auto handler) { stream.async_connect(endpoint, handler); }, "connect");
    open = true;
  }

  void write(std::string_view data) {
    run_op(
        [&](auto handler) {
          asio::async_write(stream, asio::buffer(data.data(), data.size()), handler);
        },
        "write");
  }

  void shutdown_and_close(bool throw_on_error) {
    if (!open) return;
    open = false;
    error_code ec;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    error_code ignored;
    stream.socket().close(ignored);
    if (ec && throw_on_error) throw boost::system::system_error(ec, "shutdown");
  }
};

void send_all(std::uint16_t port, std::string_view payload, std::chrono::milliseconds timeout) {
  TcpFeeder feeder(port, timeout);
  feeder.send(payload);
  feeder.close();
}

TcpFeeder::TcpFeeder(std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->timeout = timeout;
  impl_->connect(port);
}

TcpFeeder::~TcpFeeder() {
  impl_->shutdown_and_close(false);
}

void TcpFeeder::send(std::string_view data) {
  if (!impl_->open)
    throw boost::system::system_error(asio::error::not_connected, "TcpFeeder::send after close");
  try {
    impl_->write(data);
  } catch (...) {
    // A timed-out write leaves the stream in an unknown state; mark closed.
    impl_->shutdown_and_close(false);
    throw;
  }
}

void TcpFeeder::close() {
  impl_->shutdown_and_close(true);
}

bool TcpFeeder::is_open() const {
  return impl_->open;
}

}  // namespace tumbled::test
