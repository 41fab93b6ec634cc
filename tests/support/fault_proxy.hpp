// FaultProxy: a TCP proxy on 127.0.0.1 that injects network faults between a
// client (e.g. tumbled's Influx writer) and a target port (e.g. influxd),
// in the spirit of TcpCrusher.
//
// Contract: the proxy listens on 127.0.0.1:port() for its whole life; the
// port never changes, even across refuse -> pass. Modes:
// - pass:      forward bytes both ways; half-closes are propagated.
// - refuse:    new connects fail with ECONNREFUSED (the socket stays bound
//              but stops listening, so nobody can grab the port meanwhile);
//              existing connections are closed (FIN).
// - blackhole: connections are accepted and read, but nothing is forwarded
//              or answered; existing connections stop forwarding too (the
//              bytes are dropped, so a stream is corrupt if mode goes back to
//              pass). A connection accepted in blackhole stays black-holed.
// - reset:     existing and new connections are aborted with RST.
// cut() RSTs the current connections and keeps the mode.
// set_mode()/cut()/set_target_port() may be called from any thread; they run
// on the proxy's own I/O thread and return once applied, so a connect made
// after set_mode(refuse) returns is guaranteed to be refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace tumbled::test {

class FaultProxy {
 public:
  enum class Mode { pass, refuse, blackhole, reset };

  explicit FaultProxy(std::uint16_t target_port, Mode initial = Mode::pass);
  ~FaultProxy();  // closes everything and joins the I/O thread
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  std::uint16_t port() const;
  void set_mode(Mode mode);
  Mode mode() const;
  void cut();
  // For connections made from now on (e.g. after restarting the target).
  void set_target_port(std::uint16_t target_port);

  std::uint64_t accepted_connections() const;
  std::uint64_t bytes_forwarded() const;  // both directions
  std::size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tumbled::test
