#include "source/influx_write_api.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <cstddef>
#include <optional>
#include <utility>

#include "log/json_log.hpp"

namespace tumbled::source {

namespace {

namespace urls = boost::urls;

struct PrecisionName {
  std::string_view name;
  Precision precision;
};

// InfluxDB 1.8's serveWriteV1 accepts exactly these (plus ""), and models.GetPrecisionMultiplier
// reads "n" and "ns" alike as the nanosecond default.
constexpr PrecisionName kV1Precisions[] = {
    {"n", Precision::ns}, {"ns", Precision::ns}, {"u", Precision::us}, {"ms", Precision::ms},
    {"s", Precision::s},  {"m", Precision::m},   {"h", Precision::h},
};
constexpr std::string_view kV1PrecisionHint = "n, ns, u, ms, s, m or h";

// InfluxDB 2 (models.ValidPrecision) and 1.8's serveWriteV2.
constexpr PrecisionName kV2Precisions[] = {
    {"ns", Precision::ns}, {"us", Precision::us}, {"ms", Precision::ms}, {"s", Precision::s}};
constexpr std::string_view kV2PrecisionHint = "ns, us, ms or s";

// The first value of `key`, decoded; nullopt when the key is absent. Go's url.Values.Get, which
// InfluxDB reads its parameters with, also takes the first.
std::optional<std::string> first_value(const urls::params_view& params, std::string_view key) {
  const auto it = params.find(urls::string_view(key.data(), key.size()));
  if (it == params.end()) return std::nullopt;
  return (*it).value;
}

template <std::size_t N>
void read_precision(const urls::params_view& params, const PrecisionName (&accepted)[N],
                    std::string_view hint, WriteRoute& route) {
  const std::optional<std::string> value = first_value(params, "precision");
  if (!value || value->empty()) return;  // InfluxDB's default, like an absent one
  for (const PrecisionName& p : accepted) {
    if (*value == p.name) {
      route.precision = p.precision;
      return;
    }
  }
  route.kind = WriteRoute::Kind::bad_request;
  route.error = "invalid precision \"" + *value + "\" (use " + std::string(hint) + ")";
}

WriteRoute refuse(WriteRoute::Kind kind, std::string error, std::string allow = {}) {
  WriteRoute route;
  route.kind = kind;
  route.error = std::move(error);
  route.allow = std::move(allow);
  return route;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Equal when `presented` is `secret` (non-empty). Every byte of `presented` is read whatever it
// holds, so the time taken tells an attacker nothing about how much of a guess was right.
bool same_secret(std::string_view presented, std::string_view secret) {
  std::size_t diff = presented.size() ^ secret.size();
  for (std::size_t i = 0; i < presented.size(); ++i) {
    diff |= static_cast<unsigned char>(presented[i]) ^
            static_cast<unsigned char>(secret[i % secret.size()]);
  }
  return diff == 0;
}

bool is_base64_digit(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Padded standard base64 (RFC 4648 §4), as Go's BasicAuth reads it; nullopt when malformed.
// Beast's decoder stops quietly at the first byte outside the alphabet, so the shape is checked
// here first: a truncated decode must not pass for the whole credentials.
std::optional<std::string> decode_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::size_t digits = text.size();
  while (digits > text.size() - 2 && text[digits - 1] == '=') --digits;
  for (std::size_t i = 0; i < digits; ++i) {
    if (!is_base64_digit(text[i])) return std::nullopt;
  }
  namespace base64 = boost::beast::detail::base64;
  std::string out(base64::decoded_size(text.size()), '\0');
  const auto [written, read] = base64::decode(out.data(), text.data(), text.size());
  if (read != digits) return std::nullopt;
  out.resize(written);
  return out;
}

// The credentials of `Authorization: <scheme> <credentials>` carry `token`.
bool header_carries(std::string_view token, std::string_view header) {
  const std::size_t space = header.find(' ');
  if (space == std::string_view::npos) return false;
  const std::string_view scheme = header.substr(0, space);
  const std::string_view credentials = header.substr(space + 1);
  if (iequals_ascii(scheme, "Token")) {
    // InfluxDB 1.x clients send `<user>:<password>`, InfluxDB 2 clients the bare token.
    const std::size_t colon = credentials.find(':');
    const bool bare = same_secret(credentials, token);
    const bool after_user =
        colon != std::string_view::npos && same_secret(credentials.substr(colon + 1), token);
    return bare || after_user;
  }
  if (iequals_ascii(scheme, "Bearer")) return same_secret(credentials, token);
  if (iequals_ascii(scheme, "Basic")) {
    const std::optional<std::string> decoded = decode_base64(credentials);
    if (!decoded) return false;
    const std::size_t colon = decoded->find(':');
    return colon != std::string::npos &&
           same_secret(std::string_view(*decoded).substr(colon + 1), token);
  }
  return false;
}

}  // namespace

WriteRoute route(std::string_view method, std::string_view target) {
  using Kind = WriteRoute::Kind;
  const urls::string_view text(target.data(), target.size());
  auto parsed = urls::parse_origin_form(text);
  if (!parsed) parsed = urls::parse_absolute_uri(text);
  if (!parsed) return refuse(Kind::bad_request, "invalid request target");
  const urls::url_view& url = *parsed;
  const std::string path = url.path();

  if (path == "/ping") {
    if (method != "GET" && method != "HEAD") {
      return refuse(Kind::method_not_allowed,
                    "method " + std::string(method) + " not allowed on /ping (use GET or HEAD)",
                    "GET, HEAD");
    }
    WriteRoute ping;
    ping.kind = Kind::ping;
    return ping;
  }

  const bool v1 = path == "/write";
  if (!v1 && path != "/api/v2/write") {
    return refuse(Kind::not_found,
                  "not found: " + path + " (the endpoints are /write, /api/v2/write and /ping)");
  }
  if (method != "POST") {
    return refuse(Kind::method_not_allowed,
                  "method " + std::string(method) + " not allowed on " + path + " (use POST)",
                  "POST");
  }

  WriteRoute write;
  write.kind = Kind::write;
  const urls::params_view params = url.params();  // '+' reads as a space, as in Go's url.Values
  if (v1) {
    read_precision(params, kV1Precisions, kV1PrecisionHint, write);
  } else {
    read_precision(params, kV2Precisions, kV2PrecisionHint, write);
  }
  if (write.kind != Kind::write) return write;
  write.query_password = first_value(params, "p").value_or(std::string());
  return write;
}

bool authorized(std::string_view token, std::string_view authorization_header,
                std::string_view query_password) {
  if (token.empty()) return true;
  // Both forms are checked, not the first found: no form's absence or presence shortens the work.
  const bool by_query = same_secret(query_password, token);
  const bool by_header = header_carries(token, authorization_header);
  return by_query || by_header;
}

std::string error_body(std::string_view message) {
  std::string body = "{\"error\":\"";
  log::append_json_string(body, message);
  body += "\"}";
  return body;
}

std::string partial_write_message(std::string_view first_rejection, std::uint64_t dropped) {
  std::string message = "partial write: ";
  message += first_rejection;
  message += " dropped=";
  message += std::to_string(dropped);
  return message;
}

}  // namespace tumbled::source
