// The InfluxDB write API as tumbled serves it, without the I/O: which request a method and target
// ask for, whether a request carries the write token, and the error bodies InfluxDB clients read.
//
// route() follows InfluxDB 1.8's HTTP handler (services/httpd/handler.go, routed by bmizerany/pat):
//   - GET or HEAD /ping: ping (answered 204; query parameters are ignored).
//   - POST /write (v1): precision n or ns (ns), u (us), ms, s, m, h; absent or empty: ns. `us` is
//     refused, as InfluxDB 1.x's v1 handler refuses it.
//   - POST /api/v2/write: precision ns, us, ms, s; absent or empty: ns.
//   - a known path with another method: method_not_allowed, with the Allow value; anything else:
//     not_found. Checks run in that order: target, path, method, precision.
// The target is origin-form, or absolute-form (RFC 9112 §3.2.2 has servers accept it; only its
// path counts), parsed by Boost.URL. Anything else, a malformed percent escape or a character
// RFC 3986 forbids included, is bad_request ("invalid request target"): stricter than Go, which
// InfluxDB relies on. The path is compared percent-decoded and exactly, as pat compares Go's
// URL.Path: no trailing slash, no dot segments, case-sensitive (`/wr%69te` is /write, `/write/`
// is not). Query keys and values are percent-decoded with '+' as a space, and a repeated key
// counts by its first value (Go's url.Values.Get). Every other parameter (db, rp, org, orgID,
// bucket, u, consistency, ...) is ignored: one pipeline writes to one place.
// Unlike InfluxDB 1.8, a bad precision on /api/v2/write refuses the write (1.8 reports the
// error, then writes anyway).
//
// authorized() accepts any one of these forms carrying `token` (InfluxDB takes the first form it
// finds; here any form that matches is enough, since each proves the same secret):
//   - `Authorization: Token <token>` or `Token <user>:<token>` (InfluxDB 2 and its 1.x API);
//   - `Authorization: Bearer <token>` (InfluxDB 2);
//   - `Authorization: Basic base64(<user>:<token>)`, any user, padded standard base64;
//   - the query parameter `p=<token>`, on either write path (InfluxDB 1.8 authenticates
//     /api/v2/write the 1.x way; it also wants a non-empty `u`, which is not needed here).
// The scheme word is case-insensitive (RFC 9110 §11.1) and one space separates it from the
// credentials. Comparisons take the same time wherever the bytes differ. An empty `token` means
// no authentication: every request is authorized.
//
// Pure code (tumbled_core): no I/O, no state, never throws (only std::bad_alloc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "source/line_protocol_parser.hpp"

namespace tumbled::source {

// What one request (method and target) asks for.
struct WriteRoute {
  enum class Kind { ping, write, not_found, method_not_allowed, bad_request };

  Kind kind = Kind::not_found;
  Precision precision = Precision::ns;  // write only
  std::string query_password;           // write only: `p`, decoded; "" when absent
  std::string error;                    // all but ping and write: the message for the client
  std::string allow;  // method_not_allowed: the Allow header ("GET, HEAD", "POST")
};

// `method` as sent ("POST"; methods are case-sensitive), `target` the request-target
// ("/write?db=x&precision=s").
WriteRoute route(std::string_view method, std::string_view target);

// True when `token` is empty or the request carries it in one of the forms above.
// `authorization_header` is the Authorization header's value ("" when absent); `query_password`
// is WriteRoute::query_password.
bool authorized(std::string_view token, std::string_view authorization_header,
                std::string_view query_password);

// InfluxDB's error body, `{"error":"<message>"}`, valid JSON whatever `message` holds: quotes,
// backslashes and control characters are escaped, bytes that are not UTF-8 become U+FFFD.
std::string error_body(std::string_view message);

// The message of a write that kept some lines and dropped others, in InfluxDB 1.x's words:
// `partial write: <first_rejection> dropped=<dropped>`. InfluxDB 1.8 gives every unparsable
// line's reason, joined by newlines (dropped=0 for those: it counts only points its storage
// refused); one reason and the real count keep the message short and the count useful.
std::string partial_write_message(std::string_view first_rejection, std::uint64_t dropped);

}  // namespace tumbled::source
