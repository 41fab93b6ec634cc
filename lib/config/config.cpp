// The YAML loader. Every key is one row of the tables in `top_keys()` / `pipeline_keys()`:
// full path, a codec (type name + decode + encode) and a one-line description. The rows drive
//   - parsing: `walk()` descends mappings along the rows' path prefixes and hands each leaf to
//     its row's decoder; a key that is neither a row nor a prefix of one is unknown;
//   - defaults: values never written keep the struct initialisers from config.hpp;
//   - `to_yaml()`: each row's encoder writes the effective value back at its path;
//   - `config_reference()`: one Markdown line per row, its default encoded from a
//     default-constructed struct, so the reference cannot drift from the header.
// A row may apply only when another key has some value (`Condition`: the API v1/v2 keys, tls.*
// under https://); other cross-key rules (required keys, backoff order, duplicate names and
// listen addresses) are the only code outside the tables.
#include "config/config.hpp"

#include "sink/line_protocol.hpp"

#include <arpa/inet.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>

namespace tumbled::config {
namespace {

using std::string;
using std::string_view;

// ---------------------------------------------------------------------------------------------
// Errors and scalar access

int line_of(const YAML::Mark& mark) {
  return mark.line >= 0 ? mark.line + 1 : 1;
}

const char* kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a scalar";
    default: return "no value";
  }
}

bool is_env_name(string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Valid UTF-8 without noncharacters: what yaml-cpp's emitter writes back as it is. It prints
// U+FFFD for anything else, so to_yaml() would show, and re-read, a different value.
bool is_utf8_text(string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned lead = byte(i);
    std::size_t n = 0;  // length of the sequence; C0, C1 and F5..FF never lead one
    if (lead < 0x80) {
      n = 1;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      n = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      n = 3;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      n = 4;
    }
    if (n == 0 || i + n > s.size()) return false;
    std::uint32_t cp = n == 1 ? lead : lead & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
    const bool noncharacter = (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || noncharacter) return false;
    i += n;
  }
  return true;
}

struct Ctx {
  const string& source;
  const EnvLookup& env;

  [[noreturn]] void fail(const YAML::Mark& mark, string_view path, string_view what) const {
    throw ConfigError(source + ":" + std::to_string(line_of(mark)) + ": " + string(path) + ": " +
                      string(what));
  }

  // The text of a scalar with every `${NAME}` replaced from the environment.
  string scalar(const YAML::Node& n, const string& path, string_view expected) const {
    if (!n.IsScalar()) fail(n.Mark(), path, "expected " + string(expected) + ", got " + kind(n));
    const string& text = n.Scalar();
    string out;
    for (std::size_t i = 0;;) {
      const auto open = text.find("${", i);
      if (open == string::npos) {
        out.append(text, i, string::npos);
        break;
      }
      out.append(text, i, open - i);
      const auto close = text.find('}', open + 2);
      if (close == string::npos) fail(n.Mark(), path, "unterminated \"${\" (expected ${NAME})");
      const string name = text.substr(open + 2, close - open - 2);
      if (!is_env_name(name)) {
        fail(n.Mark(), path, "invalid environment variable name \"" + name + "\" in ${...}");
      }
      const auto value = env ? env(name) : std::nullopt;
      if (!value) fail(n.Mark(), path, "environment variable " + name + " is not set");
      out += *value;
      i = close + 1;
    }
    if (!is_utf8_text(out)) fail(n.Mark(), path, "must be valid UTF-8 text");
    return out;
  }
};

// ---------------------------------------------------------------------------------------------
// Codecs: how one kind of value is read from YAML and written back.

template <class V>
struct Codec {
  string type;  // for the reference, e.g. "duration > 0"
  std::function<void(const Ctx&, const YAML::Node&, const string& path, V&)> decode;
  std::function<YAML::Node(const V&)> encode;
};

YAML::Node flow(YAML::Node n) {
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

// A string; `check` returns "" or what is wrong with it.
Codec<string> text(string type, std::function<string(const string&)> check = {}) {
  return {type,
          [check](const Ctx& ctx, const YAML::Node& n, const string& path, string& out) {
            string v = ctx.scalar(n, path, "a string");
            if (check) {
              if (const string err = check(v); !err.empty()) ctx.fail(n.Mark(), path, err);
            }
            out = std::move(v);
          },
          [](const string& v) { return YAML::Node(v); }};
}

Codec<string> nonempty() {
  return text("string", [](const string& v) { return v.empty() ? "must not be empty" : ""; });
}

// point.measurement: a measurement name, or "" for each input line's own (line_protocol only).
Codec<string> measurement_or_input() {
  return text("string", [](const string& v) -> string {
    if (v.empty()) return "";
    const auto problem = sink::name_problem(v, sink::NameRole::measurement);
    return problem ? *problem : "";
  });
}

// A list of distinct names line protocol can carry in `role` (group_by tag keys, fields).
Codec<std::vector<string>> names(sink::NameRole role, string what) {
  return {"list of " + what,
          [role, what](const Ctx& ctx, const YAML::Node& n, const string& path,
                       std::vector<string>& out) {
            if (!n.IsSequence())
              ctx.fail(n.Mark(), path, string("expected a list, got ") + kind(n));
            std::vector<string> result;
            for (const auto& item : n) {
              const string item_path = path + "[" + std::to_string(result.size()) + "]";
              const YAML::Node& at = item.IsNull() ? n : item;  // a null item's mark is unreliable
              if (item.IsNull()) ctx.fail(at.Mark(), item_path, "expected a name, got no value");
              string v = ctx.scalar(item, item_path, "a name");
              if (const auto problem = sink::name_problem(v, role)) {
                ctx.fail(item.Mark(), item_path, what.substr(0, what.size() - 1) + " " + *problem);
              }
              if (std::find(result.begin(), result.end(), v) != result.end()) {
                ctx.fail(item.Mark(), item_path, "duplicate name \"" + v + "\"");
              }
              result.push_back(std::move(v));
            }
            out = std::move(result);
          },
          [](const std::vector<string>& v) {
            YAML::Node n(YAML::NodeType::Sequence);
            for (const auto& name : v) n.push_back(name);
            return flow(n);
          }};
}

Codec<string> secret() {
  auto c = text("string");
  c.encode = [](const string& v) { return YAML::Node(v.empty() ? "" : "******"); };
  return c;
}

string join(const std::vector<string>& items, string_view sep = ", ") {
  string out;
  for (const auto& s : items) out += (out.empty() ? "" : string(sep)) + s;
  return out;
}

Codec<string> one_of(std::vector<string> allowed) {
  const string list = join(allowed);
  return text("one of " + list, [allowed, list](const string& v) -> string {
    if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return "";
    return "unknown value \"" + v + "\" (expected one of " + list + ")";
  });
}

Codec<bool> boolean() {
  return {"true or false",
          [](const Ctx& ctx, const YAML::Node& n, const string& path, bool& out) {
            const string v = ctx.scalar(n, path, "true or false");
            if (v != "true" && v != "false") {
              ctx.fail(n.Mark(), path, "expected true or false, got \"" + v + "\"");
            }
            out = v == "true";
          },
          [](const bool& v) { return YAML::Node(v); }};
}

Codec<GzipMode> gzip_mode() {
  return {
      "true, false or auto",
      [](const Ctx& ctx, const YAML::Node& n, const string& path, GzipMode& out) {
        const string v = ctx.scalar(n, path, "true, false or auto");
        if (v == "true") {
          out = GzipMode::always;
        } else if (v == "false") {
          out = GzipMode::never;
        } else if (v == "auto") {
          out = GzipMode::automatic;
        } else {
          ctx.fail(n.Mark(), path, "unknown value \"" + v + "\" (expected true, false or auto)");
        }
      },
      [](const GzipMode& v) {
        return v == GzipMode::automatic ? YAML::Node("auto") : YAML::Node(v == GzipMode::always);
      }};
}

// A readable PEM file holding at least one certificate, or "". Checked here so that
// --check-config catches a wrong path; the TLS library parses the certificates at startup.
// The path of a readable file holding a PEM block that starts with `marker` (what: for messages).
Codec<string> pem_file(string marker, string what) {
  return text("path", [marker, what](const string& v) -> string {
    if (v.empty()) return "";
    std::error_code ec;
    const bool regular = std::filesystem::is_regular_file(v, ec);
    std::FILE* f = regular ? std::fopen(v.c_str(), "rb") : nullptr;
    if (!f) {
      const int err = ec ? ec.value() : regular ? errno : EISDIR;
      return "cannot read \"" + v + "\": " +
             (regular || ec ? std::generic_category().message(err) : string("not a regular file"));
    }
    string text;
    char buf[8192];
    std::size_t got = 0;
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < (16u << 20)) {
      text.append(buf, got);
    }
    std::fclose(f);
    if (text.find(marker) == string::npos) {
      return "no PEM " + what + " (" + marker + ") in \"" + v + "\"";
    }
    return "";
  });
}

Codec<string> pem_certificates_file() {
  return pem_file("-----BEGIN CERTIFICATE-----", "certificate");
}

// A number of bytes: an integer, or one with a unit (KiB, MiB, GiB), in [lo, hi].
Codec<std::size_t> byte_size(std::size_t lo, std::size_t hi) {
  static constexpr std::array<std::pair<string_view, std::size_t>, 3> kUnits{
      {{"GiB", std::size_t{1} << 30},
       {"MiB", std::size_t{1} << 20},
       {"KiB", std::size_t{1} << 10}}};
  const auto show = [](std::size_t v) {
    for (const auto& [unit, scale] : kUnits) {
      if (v >= scale && v % scale == 0) return std::to_string(v / scale) + string(unit);
    }
    return std::to_string(v);
  };
  const string range = show(lo) + ".." + show(hi);
  return {
      "bytes (e.g. 65536, 64KiB, 25MiB), " + range,
      [lo, hi, range](const Ctx& ctx, const YAML::Node& n, const string& path, std::size_t& out) {
        const string v = ctx.scalar(n, path, "a size");
        std::uint64_t count = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), count);
        const string_view unit(end, static_cast<std::size_t>(v.data() + v.size() - end));
        std::uint64_t scale = 0;
        if (unit.empty()) scale = 1;
        for (const auto& [name, bytes] : kUnits) {
          if (unit == name) scale = bytes;
        }
        if (ec == std::errc::invalid_argument || scale == 0) {
          ctx.fail(
              n.Mark(), path,
              "expected a number of bytes, optionally with KiB, MiB or GiB, got \"" + v + "\"");
        }
        if (ec == std::errc::result_out_of_range || count > hi / scale || count * scale < lo) {
          ctx.fail(n.Mark(), path, "out of range: " + v + " (expected " + range + ")");
        }
        out = static_cast<std::size_t>(count * scale);
      },
      [show](const std::size_t& v) { return YAML::Node(show(v)); }};
}

Codec<string> pipeline_name() {
  return text("name", [](const string& v) -> string {
    const bool ok = !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-';
    });
    return ok ? ""
              : "invalid name \"" + v + "\" (expected 1 to 64 characters from A-Z a-z 0-9 _ -)";
  });
}

Codec<Millis> duration() {
  return {"duration > 0",
          [](const Ctx& ctx, const YAML::Node& n, const string& path, Millis& out) {
            const string v = ctx.scalar(n, path, "a duration");
            Millis d{};
            try {
              d = parse_duration(v);
            } catch (const std::invalid_argument& e) {
              ctx.fail(n.Mark(), path, e.what());
            }
            if (d.count() <= 0) ctx.fail(n.Mark(), path, "must be greater than 0");
            out = d;
          },
          [](const Millis& d) { return YAML::Node(format_duration(d)); }};
}

// A duration where 0 ("0s") means "never": timeouts that can be turned off; or "none", as in
// "no allowed lateness", with a type text saying so.
Codec<Millis> duration_or_never(string type = "duration, 0 = never") {
  return {std::move(type),
          [](const Ctx& ctx, const YAML::Node& n, const string& path, Millis& out) {
            const string v = ctx.scalar(n, path, "a duration");
            if (v == "0") {
              out = Millis{0};
              return;
            }
            try {
              out = parse_duration(v);
            } catch (const std::invalid_argument& e) {
              ctx.fail(n.Mark(), path, e.what());
            }
          },
          [](const Millis& d) { return YAML::Node(format_duration(d)); }};
}

template <class V>
Codec<V> integer(std::int64_t lo, std::int64_t hi) {
  const string range = hi == std::numeric_limits<std::int64_t>::max()
                           ? ">= " + std::to_string(lo)
                           : std::to_string(lo) + ".." + std::to_string(hi);
  return {"integer " + range,
          [lo, hi, range](const Ctx& ctx, const YAML::Node& n, const string& path, V& out) {
            const string v = ctx.scalar(n, path, "an integer");
            std::int64_t i = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), i);
            if (ec == std::errc::invalid_argument || end != v.data() + v.size()) {
              ctx.fail(n.Mark(), path, "expected an integer, got \"" + v + "\"");
            }
            if (ec == std::errc::result_out_of_range || i < lo || i > hi) {
              ctx.fail(n.Mark(), path, "out of range: " + v + " (expected " + range + ")");
            }
            out = static_cast<V>(i);
          },
          [](const V& v) { return YAML::Node(v); }};
}

// "host:port" or "[v6]:port"; throws std::invalid_argument.
Endpoint parse_endpoint(string_view t, unsigned min_port) {
  const auto bad = [&](const string& why) {
    return std::invalid_argument("invalid address \"" + string(t) + "\": " + why);
  };
  string_view host, port;
  if (!t.empty() && t.front() == '[') {
    const auto close = t.find(']');
    if (close == string_view::npos) throw bad("missing ']' after the IPv6 address");
    host = t.substr(1, close - 1);
    if (close + 1 >= t.size() || t[close + 1] != ':') throw bad("expected [IPv6]:port");
    port = t.substr(close + 2);
    std::array<unsigned char, 16> buf{};
    if (inet_pton(AF_INET6, string(host).c_str(), buf.data()) != 1) {
      throw bad("not an IPv6 address inside [ ]");
    }
  } else {
    const auto colon = t.rfind(':');
    if (colon == string_view::npos) throw bad("expected host:port");
    host = t.substr(0, colon);
    port = t.substr(colon + 1);
    if (host.find(':') != string_view::npos) {
      throw bad("IPv6 addresses must be in brackets, e.g. [::1]:9000");
    }
    if (host.empty()) throw bad("missing host");
    const bool ok = std::all_of(host.begin(), host.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-' || c == '_';
    });
    if (!ok) throw bad("invalid host name");
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size()) {
    throw bad("port must be a number");
  }
  if (value < min_port || value > 65535) {
    throw bad("port out of range (expected " + std::to_string(min_port) + "..65535)");
  }
  return Endpoint{string(host), static_cast<std::uint16_t>(value)};
}

Codec<Endpoint> endpoint(unsigned min_port) {
  return {"host:port",
          [min_port](const Ctx& ctx, const YAML::Node& n, const string& path, Endpoint& out) {
            const string v = ctx.scalar(n, path, "host:port");
            try {
              out = parse_endpoint(v, min_port);
            } catch (const std::invalid_argument& e) {
              ctx.fail(n.Mark(), path, e.what());
            }
          },
          [](const Endpoint& e) { return YAML::Node(e.to_string()); }};
}

// An endpoint, or "" for none (a listener turned off).
Codec<std::optional<Endpoint>> endpoint_or_off() {
  return {
      "host:port or \"\"",
      [](const Ctx& ctx, const YAML::Node& n, const string& path, std::optional<Endpoint>& out) {
        const string v = ctx.scalar(n, path, "host:port or \"\"");
        if (v.empty()) {
          out.reset();
          return;
        }
        try {
          out = parse_endpoint(v, 0);
        } catch (const std::invalid_argument& e) {
          ctx.fail(n.Mark(), path, e.what());
        }
      },
      [](const std::optional<Endpoint>& e) { return YAML::Node(e ? e->to_string() : ""); }};
}

// http[s]://host[:port][/prefix] into scheme, endpoint and path_prefix. Messages never repeat the
// URL: it may carry credentials.
void parse_url(const string& url, InfluxSinkConfig& out) {
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    // Boost.URL says only that the text is not an RFC 3986 URI; name the commonest reason.
    if (std::any_of(url.begin(), url.end(),
                    [](unsigned char c) { return c <= ' ' || c == 0x7f; })) {
      throw std::invalid_argument("the URL must not contain spaces or control characters");
    }
    throw std::invalid_argument(
        "not a valid URL: expected http[s]://host[:port][/path], other characters in the path "
        "%-encoded");
  }
  const boost::urls::url_view& u = *parsed;
  if (!u.has_authority()) throw std::invalid_argument("expected http[s]://host[:port][/path]");
  string scheme(u.scheme());
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "http" && scheme != "https") {
    throw std::invalid_argument("unsupported scheme \"" + scheme + "\"; use http:// or https://");
  }
  if (u.has_userinfo()) {
    throw std::invalid_argument(
        "credentials in the URL are not allowed; use the username and password keys");
  }
  if (u.has_query() || u.has_fragment()) {
    throw std::invalid_argument("query strings and fragments are not allowed in the URL");
  }
  if (u.encoded_authority().empty()) throw std::invalid_argument("missing host in the URL");
  // InfluxDB listens on 8086; over https it is usually behind a proxy or InfluxDB Cloud, on 443.
  const string default_port = scheme == "https" ? "443" : "8086";
  string host_port =
      string(u.encoded_host()) + ":" + (u.has_port() ? string(u.port()) : default_port);
  string path(u.encoded_path());
  if (!path.empty() && path.front() != '/') {
    // Boost.URL 1.81 ends the authority where its IPv4 or port rule stops and reads the rest as
    // the path, with none of the '/' RFC 3986 requires there (boostorg/url#755): it makes
    // "http://10.0.0.1.nip.io:8086" host 10.0.0.1, path ".nip.io:8086". That rest, up to the
    // first '/', is authority: give it back, and parse_endpoint accepts it or says what is wrong.
    const auto slash = std::min(path.find('/'), path.size());
    const string rest = path.substr(0, slash);
    path.erase(0, slash);
    host_port = string(u.encoded_authority()) + rest;
    if (!u.has_port() && rest.find(':') == string::npos) host_port += ":" + default_port;
  }
  Endpoint ep;
  try {
    ep = parse_endpoint(host_port, 1);
  } catch (const std::invalid_argument& e) {
    // Drop the quoted text (`invalid address "...": why`) but keep the reason.
    const string what = e.what();
    throw std::invalid_argument("invalid host or port in the URL: " +
                                what.substr(what.find("\": ") + 3));
  }
  while (!path.empty() && path.back() == '/') path.pop_back();
  out.scheme = scheme;
  out.endpoint = ep;
  out.path_prefix = path;
}

Codec<InfluxSinkConfig> url() {
  return {"URL",
          [](const Ctx& ctx, const YAML::Node& n, const string& path, InfluxSinkConfig& out) {
            const string v = ctx.scalar(n, path, "a URL");
            try {
              parse_url(v, out);
            } catch (const std::invalid_argument& e) {
              ctx.fail(n.Mark(), path, e.what());
            }
          },
          [](const InfluxSinkConfig& s) {
            return YAML::Node(s.scheme + "://" + s.endpoint.to_string() + s.path_prefix);
          }};
}

constexpr std::array kAggregates{Aggregate::sum, Aggregate::count, Aggregate::min, Aggregate::max,
                                 Aggregate::mean};

Codec<std::vector<Aggregate>> aggregates() {
  return {"list of sum, count, min, max, mean",
          [](const Ctx& ctx, const YAML::Node& n, const string& path, std::vector<Aggregate>& out) {
            if (!n.IsSequence())
              ctx.fail(n.Mark(), path, string("expected a list, got ") + kind(n));
            if (n.size() == 0) ctx.fail(n.Mark(), path, "at least one aggregate is required");
            std::vector<Aggregate> result;
            std::size_t index = 0;
            for (const auto& item : n) {
              const string item_path = path + "[" + std::to_string(index++) + "]";
              const YAML::Node& at = item.IsNull() ? n : item;  // a null item's mark is unreliable
              if (item.IsNull())
                ctx.fail(at.Mark(), item_path, "expected an aggregate, got no value");
              const string v = ctx.scalar(item, item_path, "an aggregate");
              const auto it = std::find_if(kAggregates.begin(), kAggregates.end(),
                                           [&](Aggregate a) { return v == to_string(a); });
              if (it == kAggregates.end()) {
                ctx.fail(
                    item.Mark(), item_path,
                    "unknown aggregate \"" + v + "\" (expected one of sum, count, min, max, mean)");
              }
              if (std::find(result.begin(), result.end(), *it) != result.end()) {
                ctx.fail(item.Mark(), item_path, "duplicate aggregate \"" + v + "\"");
              }
              result.push_back(*it);
            }
            out = std::move(result);
          },
          [](const std::vector<Aggregate>& v) {
            YAML::Node n(YAML::NodeType::Sequence);
            for (Aggregate a : v) n.push_back(to_string(a));
            return flow(n);
          }};
}

using Tags = std::map<string, string>;

Codec<Tags> tags() {
  return {
      "map of string to string",
      [](const Ctx& ctx, const YAML::Node& n, const string& path, Tags& out) {
        if (!n.IsMap()) ctx.fail(n.Mark(), path, string("expected a mapping, got ") + kind(n));
        Tags result;
        for (const auto& kv : n) {
          if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
            ctx.fail(kv.first.Mark(), path, "tag names must be non-empty strings");
          }
          if (!is_utf8_text(kv.first.Scalar())) {
            ctx.fail(kv.first.Mark(), path, "tag names must be valid UTF-8 text");
          }
          const string key_path = path + "." + kv.first.Scalar();
          if (result.count(kv.first.Scalar())) ctx.fail(kv.first.Mark(), key_path, "duplicate tag");
          const YAML::Node& at = kv.second.IsNull() ? kv.first : kv.second;
          if (kv.second.IsNull()) ctx.fail(at.Mark(), key_path, "expected a string, got no value");
          string v = ctx.scalar(kv.second, key_path, "a string");
          if (v.empty()) ctx.fail(at.Mark(), key_path, "tag values must not be empty");
          if (const auto problem = sink::name_problem(kv.first.Scalar(), sink::NameRole::tag_key)) {
            ctx.fail(kv.first.Mark(), key_path, "tag name " + *problem);
          }
          if (const auto problem = sink::name_problem(v, sink::NameRole::tag_value)) {
            ctx.fail(at.Mark(), key_path, "tag value " + *problem);
          }
          result.emplace(kv.first.Scalar(), std::move(v));
        }
        out = std::move(result);
      },
      [](const Tags& t) {
        YAML::Node n(YAML::NodeType::Map);
        for (const auto& [k, v] : t) n[k] = v;
        return flow(n);
      }};
}

// librdkafka properties tumbled sets itself, and why they cannot be changed.
const std::vector<std::pair<string, string>> kKafkaOwnedProperties{
    {"bootstrap.servers", "set source.kafka.brokers instead"},
    {"group.id", "set source.kafka.group instead"},
    {"enable.auto.commit",
     "offsets are committed by tumbled once InfluxDB acknowledged their points, never "
     "automatically"},
    {"enable.auto.offset.store", "offsets are committed by tumbled, never automatically"},
};

// librdkafka settings, passed as they are; values of keys that look secret are masked when printed.
Codec<Tags> kafka_properties() {
  return {"map of string to string",
          [](const Ctx& ctx, const YAML::Node& n, const string& path, Tags& out) {
            if (!n.IsMap()) ctx.fail(n.Mark(), path, string("expected a mapping, got ") + kind(n));
            Tags result;
            for (const auto& kv : n) {
              const string name = ctx.scalar(kv.first, path, "a librdkafka property name");
              const string key_path = path + "." + name;
              if (kv.second.IsNull()) ctx.fail(kv.first.Mark(), key_path, "expected a value");
              const string value = ctx.scalar(kv.second, key_path, "a string");
              const auto owned =
                  std::find_if(kKafkaOwnedProperties.begin(), kKafkaOwnedProperties.end(),
                               [&](const auto& owned_by) { return owned_by.first == name; });
              if (owned != kKafkaOwnedProperties.end()) {
                ctx.fail(kv.first.Mark(), key_path, owned->second);
              }
              if (name == "partition.assignment.strategy" &&
                  value.find("cooperative") != string::npos) {
                ctx.fail(kv.second.Mark(), key_path,
                         "cooperative rebalancing is not supported: tumbled commits and releases "
                         "every partition at each rebalance (use range or roundrobin)");
              }
              result[name] = value;
            }
            out = std::move(result);
          },
          [](const Tags& t) {
            YAML::Node n(YAML::NodeType::Map);
            for (const auto& [k, v] : t) {
              const bool secret = k.find("password") != string::npos ||
                                  k.find("secret") != string::npos || k.find("key") != string::npos;
              n[k] = secret ? string("******") : v;
            }
            return flow(n);
          }};
}

// ---------------------------------------------------------------------------------------------
// The tables

// A row that applies only when another key has a certain value (api: v2, an https:// URL):
// written when the condition does not hold it is an error, and to_yaml() leaves it out; a
// required row is required only when the condition holds.
template <class T>
struct Condition {
  string key;   // the row that decides, e.g. "pipelines[].sink.influxdb.api"
  string text;  // what must hold, for messages: "api: v2"
  std::function<bool(const T&)> holds;
};

template <class T>
struct Key {
  string path;  // full dotted path; pipeline keys start with "pipelines[]."
  string type;
  string doc;
  bool required;
  std::function<void(const Ctx&, const YAML::Node&, const string& path, T&)> parse;
  std::function<YAML::Node(const T&)> emit;
  std::optional<Condition<T>> only_if;  // nullopt: always applies
};

constexpr bool kRequired = true;

// One row: `access` is a generic lambda returning the field, so it serves both parse and emit.
template <class T, class V, class Access>
Key<T> key(string path, Codec<V> codec, Access access, string doc, bool is_required = false) {
  return Key<T>{
      std::move(path),
      codec.type,
      std::move(doc),
      is_required,
      [decode = codec.decode, access](const Ctx& ctx, const YAML::Node& n, const string& p, T& t) {
        decode(ctx, n, p, access(t));
      },
      [encode = codec.encode, access](const T& t) { return encode(access(t)); },
      std::nullopt};
}

template <class T>
Key<T> only_if(Key<T> row, Condition<T> condition) {
  row.only_if = std::move(condition);
  return row;
}

#define FIELD(member)    \
  [](auto& c) -> auto& { \
    return c.member;     \
  }

const std::vector<Key<PipelineConfig>>& pipeline_keys() {
  using P = PipelineConfig;
  static const Condition<P> v1{"pipelines[].sink.influxdb.api", "api: v1",
                               [](const P& p) { return p.influx.api == "v1"; }};
  static const Condition<P> v2{"pipelines[].sink.influxdb.api", "api: v2",
                               [](const P& p) { return p.influx.api == "v2"; }};
  static const Condition<P> https{"pipelines[].sink.influxdb.url", "an https:// URL",
                                  [](const P& p) { return p.influx.scheme == "https"; }};
  static const Condition<P> line_protocol{"pipelines[].source.format", "format: line_protocol",
                                          [](const P& p) { return p.format == "line_protocol"; }};
  static const Condition<P> event_time{"pipelines[].window.time", "time: event",
                                       [](const P& p) { return p.window_time == "event"; }};
  static const Condition<P> tcp{"pipelines[].source.http.listen",
                                "the TCP source (neither source.http nor source.kafka)",
                                [](const P& p) { return !p.reads_http() && !p.reads_kafka(); }};
  static const Condition<P> kafka{"pipelines[].source.kafka.brokers", "source.kafka.brokers set",
                                  [](const P& p) { return p.reads_kafka(); }};
  static const Condition<P> http{"pipelines[].source.http.listen", "source.http.listen set",
                                 [](const P& p) { return p.reads_http(); }};
  static const Condition<P> http_tls{"pipelines[].source.http.tls.cert_file",
                                     "source.http.tls.cert_file set",
                                     [](const P& p) { return !p.http.tls_cert_file.empty(); }};
  static const std::vector<Key<P>> keys{
      key<P>("pipelines[].name", pipeline_name(), FIELD(name),
             "Unique pipeline name: 1 to 64 characters from A-Z a-z 0-9 _ -.", kRequired),
      only_if(key<P>("pipelines[].source.tcp.listen", endpoint(0), FIELD(listen),
                     "Address to accept lines (of `source.format`) on; port 0 picks a free port."),
              tcp),
      only_if(key<P>("pipelines[].source.tcp.max_line_bytes", integer<std::size_t>(1, 1 << 20),
                     FIELD(max_line_bytes), "Longest accepted input line, in bytes."),
              tcp),
      only_if(key<P>("pipelines[].source.tcp.max_connections", integer<std::size_t>(1, 1'000'000),
                     FIELD(max_connections),
                     "Most connections open at once. At the limit, a newcomer closes the "
                     "connection idle longest if that one has been silent for 10 s or more; "
                     "otherwise the newcomer is closed at once. Both are counted."),
              tcp),
      only_if(
          key<P>("pipelines[].source.tcp.idle_timeout", duration_or_never(), FIELD(idle_timeout),
                 "A connection that sends nothing for this long is closed and counted; `0` "
                 "keeps silent connections open forever."),
          tcp),
      only_if(
          key<P>("pipelines[].source.tcp.threads", integer<std::size_t>(1, 256), FIELD(tcp_threads),
                 "Threads reading connections (format: integers), the daemon's event loop "
                 "included. Each extra thread counts its connections' values on its own; "
                 "its share joins the windows before each window closes and each checkpoint, "
                 "so the points are the same as with one thread. Connections are spread "
                 "over the threads as they arrive: more than one pays with several senders."),
          tcp),
      key<P>("pipelines[].source.http.listen", endpoint_or_off(), FIELD(http.listen),
             "Address of an InfluxDB-compatible write endpoint (`POST /write`, `POST "
             "/api/v2/write`, `/ping`) the pipeline reads instead of TCP; a 204 answers a "
             "request once its lines are in the state store. `\"\"`: the TCP source."),
      only_if(key<P>("pipelines[].source.http.max_body_bytes",
                     byte_size(1024, std::size_t{1} << 30), FIELD(http.max_body_bytes),
                     "Largest request body, after gzip decompression; larger ones are answered "
                     "413. Every connection may hold this much while its request arrives."),
              http),
      only_if(key<P>("pipelines[].source.http.max_connections", integer<std::size_t>(1, 100'000),
                     FIELD(http.max_connections),
                     "Most connections open at once; at the limit a newcomer closes the one idle "
                     "longest, or is closed itself if all are busy. Both are counted."),
              http),
      only_if(key<P>("pipelines[].source.http.auth.token", secret(), FIELD(http.token),
                     "Required credential, e.g. `${TUMBLED_TOKEN}`: accepted as `Authorization: "
                     "Token <t>` "
                     "(or `Bearer <t>`), as the password of `Authorization: Basic`, or as v1's "
                     "`p=<t>`; others get 401. `\"\"` (the default): no authentication. Masked "
                     "when printed."),
              http),
      only_if(
          key<P>("pipelines[].source.http.tls.cert_file",
                 pem_file("-----BEGIN CERTIFICATE-----", "certificate"), FIELD(http.tls_cert_file),
                 "PEM certificate (chain) to serve: the endpoint then speaks only HTTPS "
                 "(TLS 1.2 or later). `\"\"`: plain HTTP."),
          http),
      only_if(key<P>("pipelines[].source.http.tls.key_file",
                     pem_file("PRIVATE KEY-----", "private key"), FIELD(http.tls_key_file),
                     "PEM private key of tls.cert_file; required with it.", kRequired),
              http_tls),
      key<P>("pipelines[].source.kafka.brokers", text("string"), FIELD(kafka.brokers),
             "Bootstrap servers (`host:port,...`) of a Kafka (or Redpanda) cluster the pipeline "
             "reads as a member of a consumer group, instead of TCP. `\"\"`: no Kafka."),
      only_if(key<P>("pipelines[].source.kafka.topic", nonempty(), FIELD(kafka.topic),
                     "Topic read; each record's value holds one or more lines of line protocol.",
                     kRequired),
              kafka),
      only_if(key<P>("pipelines[].source.kafka.group", nonempty(), FIELD(kafka.group),
                     "Consumer group id: instances with the same group share the partitions."),
              kafka),
      only_if(key<P>("pipelines[].source.kafka.partition_tag", text("string"),
                     FIELD(kafka.partition_tag),
                     "Tag naming the partition on every point, so that each point depends on "
                     "one partition only (sum partitions at query time). `\"\"`: no tag; then "
                     "each key must live in one partition (producers partition by key)."),
              kafka),
      only_if(
          key<P>("pipelines[].source.kafka.properties", kafka_properties(), FIELD(kafka.properties),
                 "librdkafka settings as they are (TLS, SASL, timeouts), e.g. "
                 "`{security.protocol: SASL_SSL, session.timeout.ms: \"6000\"}`; values "
                 "of names with password, secret or key are masked when printed."),
          kafka),
      key<P>("pipelines[].source.format", one_of({"integers", "line_protocol"}), FIELD(format),
             "`integers`: one integer per line; `line_protocol`: InfluxDB line protocol, "
             "aggregated per key (measurement and `window.group_by` tags) and numeric field. "
             "With `source.http` and `source.kafka` only `line_protocol`, the default there."),
      only_if(key<P>("pipelines[].source.precision", one_of({"ns", "us", "ms", "s"}),
                     FIELD(precision), "Unit of line-protocol timestamps."),
              line_protocol),
      key<P>("pipelines[].window.size", duration(), FIELD(window_size),
             "Length of each tumbling window."),
      only_if(key<P>("pipelines[].window.time", one_of({"processing", "event"}), FIELD(window_time),
                     "`processing`: a line belongs to the window of the moment it is read; "
                     "`event`: to the window of its timestamp (a line without one: the moment "
                     "it is read), closed by the watermark."),
              line_protocol),
      only_if(key<P>("pipelines[].window.max_out_of_orderness", duration_or_never("duration"),
                     FIELD(max_out_of_orderness),
                     "Event time: the watermark is the newest event time seen minus this; a "
                     "window is emitted when the watermark reaches its end."),
              event_time),
      only_if(key<P>("pipelines[].window.allowed_lateness", duration_or_never("duration"),
                     FIELD(allowed_lateness),
                     "Event time: how long after the watermark passes a window's end a value "
                     "still updates it (the point is written again); later ones are rejected "
                     "(`too_late`)."),
              event_time),
      only_if(key<P>("pipelines[].window.idle_timeout", duration_or_never(),
                     FIELD(watermark_idle_timeout),
                     "Event time: after this long without a line the watermark follows the wall "
                     "clock (minus max_out_of_orderness), so the last windows close."),
              event_time),
      only_if(
          key<P>("pipelines[].window.max_future", duration_or_never("duration"), FIELD(max_future),
                 "Event time: a timestamp further than this ahead of the wall clock is "
                 "rejected (`too_far_in_future`)."),
          event_time),
      only_if(key<P>("pipelines[].window.group_by", names(sink::NameRole::tag_key, "tag keys"),
                     FIELD(group_by),
                     "Tag keys whose values, with the measurement, form the key; a line without "
                     "one of them has no such tag in its key. `[]`: one group per measurement."),
              line_protocol),
      only_if(key<P>("pipelines[].window.fields", names(sink::NameRole::field_key, "field keys"),
                     FIELD(fields),
                     "Numeric fields aggregated, each into `<field>_<aggregate>`; `[]`: every "
                     "numeric field. String and boolean fields are ignored."),
              line_protocol),
      only_if(key<P>("pipelines[].window.max_keys", integer<std::size_t>(1, 1'000'000'000),
                     FIELD(max_keys),
                     "Open (key, window) pairs at most; a line for a new pair beyond it is "
                     "rejected (`too_many_keys`), as is one that would take the numeric field "
                     "aggregates of all open pairs beyond 16 × max_keys."),
              line_protocol),
      key<P>("pipelines[].window.aggregates", aggregates(), FIELD(aggregates),
             "Values computed per window; non-empty, no repeats."),
      key<P>("pipelines[].point.measurement", measurement_or_input(), FIELD(measurement),
             "InfluxDB measurement of the points written; with `line_protocol` the default "
             "`\"\"` keeps each line's own."),
      key<P>("pipelines[].point.tags", tags(), FIELD(tags),
             "Tags on every point; the default applies only when the key is absent (with "
             "`line_protocol` it is `{}`), `{}` means none."),
      key<P>("pipelines[].sink.influxdb.url", url(), FIELD(influx),
             "http[s]://host[:port][/path-prefix]; the port defaults to 8086 for http, 443 for "
             "https. No user:pass@."),
      key<P>("pipelines[].sink.influxdb.api", one_of({"v1", "v2"}), FIELD(influx.api),
             "`v1`: `POST /write` with database, retention policy and basic authentication; "
             "`v2`: `POST /api/v2/write` with org, bucket and token. The other API's keys are "
             "refused."),
      only_if(key<P>("pipelines[].sink.influxdb.database", nonempty(), FIELD(influx.database),
                     "API v1: InfluxDB database written to."),
              v1),
      only_if(key<P>("pipelines[].sink.influxdb.retention_policy", text("string"),
                     FIELD(influx.retention_policy),
                     "API v1: retention policy; `\"\"` uses the database's default."),
              v1),
      only_if(key<P>("pipelines[].sink.influxdb.username", text("string"), FIELD(influx.username),
                     "API v1: user for HTTP basic authentication; `\"\"` for none."),
              v1),
      only_if(key<P>("pipelines[].sink.influxdb.password", secret(), FIELD(influx.password),
                     "API v1: password for the user, e.g. `${INFLUX_PASSWORD}`; masked when "
                     "printed."),
              v1),
      only_if(key<P>("pipelines[].sink.influxdb.org", nonempty(), FIELD(influx.org),
                     "API v2: organization (name) the bucket belongs to.", kRequired),
              v2),
      only_if(key<P>("pipelines[].sink.influxdb.bucket", nonempty(), FIELD(influx.bucket),
                     "API v2: bucket written to.", kRequired),
              v2),
      only_if(key<P>("pipelines[].sink.influxdb.token", secret(), FIELD(influx.token),
                     "API v2: API token, sent as `Authorization: Token ...`, e.g. "
                     "`${INFLUX_TOKEN}`; masked when printed. `\"\"` sends none (only for "
                     "servers without authentication)."),
              v2),
      only_if(key<P>("pipelines[].sink.influxdb.tls.ca_file", pem_certificates_file(),
                     FIELD(influx.tls_ca_file),
                     "https only: PEM file of the CA certificates to trust instead of the "
                     "system's; `\"\"` uses the system's."),
              https),
      only_if(key<P>("pipelines[].sink.influxdb.tls.insecure_skip_verify", boolean(),
                     FIELD(influx.tls_insecure_skip_verify),
                     "https only: accept any certificate for any host name. For tests only: "
                     "warned about at startup and by --check-config."),
              https),
      key<P>("pipelines[].sink.influxdb.gzip", gzip_mode(), FIELD(influx.gzip),
             "Compress request bodies (`Content-Encoding: gzip`); `auto` compresses bodies of "
             "8 KiB or more unless the URL's host is loopback (`localhost`, 127.0.0.1, ::1)."),
      key<P>("pipelines[].sink.influxdb.batch_size", integer<std::size_t>(1, 1'000'000),
             FIELD(influx.batch_size),
             "Points per write request of fresh points: sent when this many wait (or "
             "batch_interval passed)."),
      key<P>("pipelines[].sink.influxdb.max_batch_size", integer<std::size_t>(1, 1'000'000),
             FIELD(influx.max_batch_size),
             "Most points in one write request while more than batch_size wait (a backlog, e.g. "
             "after an outage): such a batch grows past batch_size only while its body stays "
             "within 1 MB. >= batch_size; left out: 5000, or batch_size if larger. Equal to "
             "batch_size: batches never grow."),
      key<P>("pipelines[].sink.influxdb.batch_interval", duration(), FIELD(influx.batch_interval),
             "Longest a point waits for its batch to fill before it is sent."),
      key<P>("pipelines[].sink.influxdb.request_timeout", duration(), FIELD(influx.request_timeout),
             "Time limit on one write request."),
      key<P>("pipelines[].sink.influxdb.retry.initial_backoff", duration(),
             FIELD(influx.retry.initial_backoff),
             "Delay before the first retry of a failed write."),
      key<P>("pipelines[].sink.influxdb.retry.max_backoff", duration(),
             FIELD(influx.retry.max_backoff), "Longest delay between retries; >= initial_backoff."),
      key<P>("pipelines[].sink.influxdb.retry.max_retries",
             integer<std::int64_t>(-1, std::numeric_limits<std::int64_t>::max()),
             FIELD(influx.retry.max_retries), "Retries of a failed write; -1 retries forever."),
      key<P>("pipelines[].buffer.max_points", integer<std::size_t>(1, 100'000'000),
             FIELD(buffer_max_points),
             "Most points waiting for InfluxDB (all of them are also in the state store)."),
      key<P>("pipelines[].buffer.when_full", one_of({"block", "drop_oldest"}),
             FIELD(buffer_when_full),
             "`block` stops reading the pipeline's sockets (TCP backpressure) until there is room; "
             "`drop_oldest` drops the oldest waiting point and counts it."),
  };
  return keys;
}

Codec<std::vector<PipelineConfig>> pipelines();

const std::vector<Key<Config>>& top_keys() {
  static const std::vector<Key<Config>> keys{
      key<Config>("log.level", one_of({"trace", "debug", "info", "warn", "error"}),
                  FIELD(log_level), "Least severe log messages written."),
      key<Config>("log.format", one_of({"text", "json"}), FIELD(log_format),
                  "`text` lines, or `json`: one object per line with time, level, logger and "
                  "message."),
      key<Config>("state.dir", nonempty(), FIELD(state_dir),
                  "Directory holding the checkpoint store."),
      key<Config>("state.checkpoint_interval", duration(), FIELD(checkpoint_interval),
                  "How often window state is checkpointed."),
      key<Config>("shutdown_timeout", duration(), FIELD(shutdown_timeout),
                  "Bound on the final flush at SIGTERM."),
      key<Config>("http.listen", endpoint_or_off(), FIELD(http_listen),
                  "Address of the /metrics, /health and /ready endpoints; `\"\"` turns them off."),
      key<Config>("pipelines", pipelines(), FIELD(pipelines),
                  "The pipelines, at least one; their keys follow.", kRequired),
  };
  return keys;
}

#undef FIELD

// ---------------------------------------------------------------------------------------------
// The walk

using Marks = std::map<string, YAML::Mark>;  // table path -> where its value was written

template <class T>
bool is_prefix_of_a_key(const std::vector<Key<T>>& table, const string& prefix) {
  return std::any_of(table.begin(), table.end(), [&](const Key<T>& k) {
    return k.path.compare(0, prefix.size(), prefix) == 0;
  });
}

// The keys allowed directly under table path `prefix` ("" or ending in '.').
template <class T>
string children(const std::vector<Key<T>>& table, const string& prefix) {
  std::vector<string> names;
  for (const auto& k : table) {
    if (k.path.compare(0, prefix.size(), prefix) != 0) continue;
    string name = k.path.substr(prefix.size());
    name = name.substr(0, name.find('.'));
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return join(names);
}

// Applies the mapping `map`, found at table path `tprefix` and concrete path `cprefix`, to
// `target`, recording where each key's value was found in `marks`.
template <class T>
void walk(const Ctx& ctx, const YAML::Node& map, const std::vector<Key<T>>& table,
          const string& tprefix, const string& cprefix, T& target, Marks& marks) {
  std::map<string, int> lines;  // key -> 1-based line, for duplicates
  for (const auto& kv : map) {
    const YAML::Node& k = kv.first;
    const YAML::Node& v = kv.second;
    const string where = cprefix.empty() ? "(top level)" : cprefix.substr(0, cprefix.size() - 1);
    if (!k.IsScalar()) ctx.fail(k.Mark(), where, "keys must be strings");
    const string tpath = tprefix + k.Scalar();
    const string cpath = cprefix + k.Scalar();
    if (const auto [it, fresh] = lines.emplace(k.Scalar(), line_of(k.Mark())); !fresh) {
      ctx.fail(k.Mark(), cpath, "duplicate key (first on line " + std::to_string(it->second) + ")");
    }
    // A dotted key ("sink.influxdb") must not reach a row or prefix: one segment per level.
    const bool dotted = k.Scalar().find('.') != string::npos;
    const auto row = dotted ? table.end()
                            : std::find_if(table.begin(), table.end(),
                                           [&](const Key<T>& r) { return r.path == tpath; });
    if (row != table.end()) {
      // A null value's own mark points past it, at the next token: use the key's.
      if (v.IsNull()) ctx.fail(k.Mark(), cpath, "missing value (expected " + row->type + ")");
      marks[tpath] = v.Mark();
      row->parse(ctx, v, cpath, target);
    } else if (!dotted && is_prefix_of_a_key(table, tpath + ".")) {
      if (v.IsNull()) continue;  // `log:` with nothing under it
      if (!v.IsMap()) ctx.fail(v.Mark(), cpath, string("expected a mapping, got ") + kind(v));
      walk(ctx, v, table, tpath + ".", cpath + ".", target, marks);
    } else {
      ctx.fail(k.Mark(), cpath, "unknown key (expected one of: " + children(table, tprefix) + ")");
    }
  }
}

// `walk` over a whole scope (the file, or one pipeline), then the check for required keys.
template <class T>
void apply_scope(const Ctx& ctx, const YAML::Node& map, const std::vector<Key<T>>& table,
                 const string& tprefix, const string& cprefix, T& target, Marks& marks) {
  walk(ctx, map, table, tprefix, cprefix, target, marks);
  for (const auto& row : table) {
    const string cpath = cprefix + row.path.substr(tprefix.size());
    if (!row.only_if) {
      if (row.required && !marks.count(row.path)) {
        ctx.fail(map.Mark(), cpath, "required key is missing");
      }
      continue;
    }
    const Condition<T>& condition = *row.only_if;
    const bool holds = condition.holds(target);
    if (holds && row.required && !marks.count(row.path)) {
      const auto decided = marks.find(condition.key);
      ctx.fail(decided != marks.end() ? decided->second : map.Mark(), cpath,
               "required key is missing (needed with " + condition.text + ")");
    }
    if (!holds && marks.count(row.path)) {
      // Say what the deciding key is: "(api is v1)", "(url is http://...)".
      string now;
      const auto decider = std::find_if(table.begin(), table.end(),
                                        [&](const Key<T>& k) { return k.path == condition.key; });
      if (decider != table.end()) {
        const YAML::Node value = decider->emit(target);
        if (value.IsScalar()) {
          now = " (" + condition.key.substr(condition.key.rfind('.') + 1) + " is " +
                value.Scalar() + (marks.count(condition.key) ? "" : ", the default") + ")";
        }
      }
      ctx.fail(marks.at(row.path), cpath, "only allowed with " + condition.text + now);
    }
  }
}

template <class T>
YAML::Node emit_scope(const std::vector<Key<T>>& table, const string& tprefix, const T& value) {
  YAML::Node root(YAML::NodeType::Map);
  for (const auto& row : table) {
    if (row.only_if && !row.only_if->holds(value)) continue;
    YAML::Node cur = root;
    string rest = row.path.substr(tprefix.size());
    for (auto dot = rest.find('.'); dot != string::npos; dot = rest.find('.')) {
      cur.reset(cur[rest.substr(0, dot)]);
      rest.erase(0, dot + 1);
    }
    cur[rest] = row.emit(value);
  }
  return root;
}

bool same_host(const string& a, const string& b) {
  std::array<unsigned char, 16> x{}, y{};
  if (inet_pton(AF_INET6, a.c_str(), x.data()) == 1 &&
      inet_pton(AF_INET6, b.c_str(), y.data()) == 1) {
    return x == y;
  }
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char p, char q) {
           return std::tolower(static_cast<unsigned char>(p)) ==
                  std::tolower(static_cast<unsigned char>(q));
         });
}

// Would binding both fail? Port 0 never collides; "::" overlaps everything (dual stack) and
// "0.0.0.0" everything but IPv6 literals.
bool listen_overlaps(const Endpoint& a, const Endpoint& b) {
  if (a.port == 0 || a.port != b.port) return false;
  if (same_host(a.host, b.host)) return true;
  const auto wildcard_over = [](const string& wild, const string& other) {
    return same_host(wild, "::") || (wild == "0.0.0.0" && other.find(':') == string::npos);
  };
  return wildcard_over(a.host, b.host) || wildcard_over(b.host, a.host);
}

Codec<std::vector<PipelineConfig>> pipelines() {
  return {"list of pipelines",
          [](const Ctx& ctx, const YAML::Node& n, const string& path,
             std::vector<PipelineConfig>& out) {
            if (!n.IsSequence())
              ctx.fail(n.Mark(), path, string("expected a list, got ") + kind(n));
            if (n.size() == 0) ctx.fail(n.Mark(), path, "at least one pipeline is required");
            std::vector<PipelineConfig> result;
            std::vector<Marks> all_marks;
            for (const auto& item : n) {
              const string ip = path + "[" + std::to_string(result.size()) + "]";
              const YAML::Node& at = item.IsNull() ? n : item;  // a null item's mark is unreliable
              if (!item.IsMap())
                ctx.fail(at.Mark(), ip, string("expected a mapping, got ") + kind(item));
              PipelineConfig p;
              Marks marks;
              // (operator bool first: yaml-cpp throws when asked about a missing node)
              const YAML::Node source = item["source"];
              const YAML::Node http = source && source.IsMap() ? source["http"] : YAML::Node();
              const YAML::Node http_listen = http && http.IsMap() ? http["listen"] : YAML::Node();
              const YAML::Node kafka = source && source.IsMap() ? source["kafka"] : YAML::Node();
              const YAML::Node brokers = kafka && kafka.IsMap() ? kafka["brokers"] : YAML::Node();
              if ((http_listen && http_listen.IsScalar() && !http_listen.Scalar().empty()) ||
                  (brokers && brokers.IsScalar() && !brokers.Scalar().empty())) {
                p.format = "line_protocol";  // what InfluxDB's write API and records carry
              }
              apply_scope(ctx, item, pipeline_keys(), "pipelines[].", ip + ".", p, marks);
              const auto mark = [&](const string& rel) {
                const auto it = marks.find("pipelines[]." + rel);
                return it != marks.end() ? it->second : item.Mark();
              };
              if (p.reads_http() && p.reads_kafka()) {
                ctx.fail(mark("source.kafka.brokers"), ip + ".source.kafka.brokers",
                         "a pipeline reads one source: source.http or source.kafka, not both");
              }
              if (p.reads_kafka() && p.format != "line_protocol") {
                ctx.fail(mark("source.format"), ip + ".source.format",
                         "source.kafka takes line protocol only; use format: line_protocol or "
                         "leave it out");
              }
              if (p.reads_kafka() && !p.kafka.partition_tag.empty()) {
                const string& tag = p.kafka.partition_tag;
                if (const auto problem = sink::name_problem(tag, sink::NameRole::tag_key)) {
                  ctx.fail(mark("source.kafka.partition_tag"), ip + ".source.kafka.partition_tag",
                           "tag name " + *problem);
                }
                if (p.tags.count(tag) ||
                    std::find(p.group_by.begin(), p.group_by.end(), tag) != p.group_by.end()) {
                  ctx.fail(mark("source.kafka.partition_tag"), ip + ".source.kafka.partition_tag",
                           "tag \"" + tag +
                               "\" is also in window.group_by or point.tags: a point cannot "
                               "carry it twice");
                }
              }
              if (p.tcp_threads > 1 && p.format != "integers") {
                ctx.fail(mark("source.tcp.threads"), ip + ".source.tcp.threads",
                         "more than one reader thread takes format: integers only; line "
                         "protocol is read on the event loop's thread (threads: 1)");
              }
              if (p.reads_http() && p.format != "line_protocol") {
                ctx.fail(mark("source.format"), ip + ".source.format",
                         "source.http takes line protocol only (InfluxDB's write API); use "
                         "format: line_protocol or leave it out");
              }
              if (p.format == "line_protocol") {
                // Defaults that suit records: the input's measurement, no static tags.
                if (!marks.count("pipelines[].point.measurement")) p.measurement.clear();
                if (!marks.count("pipelines[].point.tags")) p.tags.clear();
                for (const auto& tag : p.group_by) {
                  if (p.tags.count(tag)) {
                    ctx.fail(mark("point.tags"), ip + ".point.tags." + tag,
                             "tag \"" + tag +
                                 "\" is also in window.group_by: a point cannot "
                                 "carry it twice");
                  }
                }
              } else if (p.measurement.empty()) {
                ctx.fail(mark("point.measurement"), ip + ".point.measurement",
                         "must not be empty with format: integers (\"\" keeps each input "
                         "line's measurement, which integers have not)");
              }
              auto& influx = p.influx;
              if (!marks.count("pipelines[].sink.influxdb.max_batch_size")) {
                influx.max_batch_size = std::max(influx.max_batch_size, influx.batch_size);
              } else if (influx.max_batch_size < influx.batch_size) {
                ctx.fail(mark("sink.influxdb.max_batch_size"), ip + ".sink.influxdb.max_batch_size",
                         "max_batch_size (" + std::to_string(influx.max_batch_size) +
                             ") must not be less than batch_size (" +
                             std::to_string(influx.batch_size) +
                             "); equal to it, batches never grow past batch_size");
              }
              const auto& retry = p.influx.retry;
              if (retry.max_backoff < retry.initial_backoff) {
                const string k = marks.count("pipelines[].sink.influxdb.retry.max_backoff")
                                     ? "sink.influxdb.retry.max_backoff"
                                     : "sink.influxdb.retry.initial_backoff";
                ctx.fail(mark(k), ip + "." + k,
                         "max_backoff (" + format_duration(retry.max_backoff) +
                             ") must not be less than initial_backoff (" +
                             format_duration(retry.initial_backoff) + ")");
              }
              for (std::size_t j = 0; j < result.size(); ++j) {
                const auto other = [&](const string& rel) {
                  const auto it = all_marks[j].find("pipelines[]." + rel);
                  const int line = line_of(it != all_marks[j].end() ? it->second : n[j].Mark());
                  return "pipelines[" + std::to_string(j) + "] on line " + std::to_string(line);
                };
                if (result[j].name == p.name) {
                  ctx.fail(
                      mark("name"), ip + ".name",
                      "duplicate pipeline name \"" + p.name + "\" (also " + other("name") + ")");
                }
                if (!result[j].reads_kafka() && !p.reads_kafka() &&
                    listen_overlaps(result[j].source_listen(), p.source_listen())) {
                  const auto key_of = [](const PipelineConfig& c) {
                    return string(c.reads_http() ? "source.http.listen" : "source.tcp.listen");
                  };
                  const string k = key_of(p);
                  const auto shown = [&key_of](const PipelineConfig& c, const Marks& m) {
                    return c.source_listen().to_string() +
                           (m.count("pipelines[]." + key_of(c)) ? "" : " (the default)");
                  };
                  ctx.fail(mark(k), ip + "." + k,
                           "listen address " + shown(p, marks) + " collides with " +
                               shown(result[j], all_marks[j]) + " of " + other(key_of(result[j])));
                }
              }
              result.push_back(std::move(p));
              all_marks.push_back(std::move(marks));
            }
            out = std::move(result);
          },
          [](const std::vector<PipelineConfig>& ps) {
            YAML::Node n(YAML::NodeType::Sequence);
            for (const auto& p : ps) {
              n.push_back(emit_scope(pipeline_keys(), "pipelines[].", p));
            }
            return n;
          }};
}

// Where the first documents of a YAML stream start: at most 3, enough to tell one document from
// several and from a token no document consumes. Not YAML::LoadAll: in yaml-cpp 0.7 it never
// returns, allocating until the process dies, when the parser leaves such a token behind (a file
// that is just ",", or "[a],"): every call then yields one more empty document
// (jbeder/yaml-cpp#1040; fixed upstream by #1319, after 0.8.0). Found by tests/fuzz.
struct Document {
  YAML::Mark start;  // its first token
  YAML::Mark root;   // its root node, where errors about the document point
};

struct DocumentMarks final : YAML::EventHandler {
  std::vector<Document> docs;
  bool root_pending = false;
  void node(const YAML::Mark& mark) {
    if (root_pending) docs.back().root = mark;
    root_pending = false;
  }
  void OnDocumentStart(const YAML::Mark& mark) override {
    docs.push_back({mark, mark});
    root_pending = true;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const string&, YAML::anchor_t, const string&) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}
};

std::vector<Document> documents(const string& yaml_text) {
  std::istringstream in(yaml_text);
  YAML::Parser parser(in);
  DocumentMarks handler;
  while (handler.docs.size() < 3 && parser.HandleNextDocument(handler)) {
  }
  return handler.docs;
}

template <class T>
void reference_rows(string& out, const std::vector<Key<T>>& table, const T& defaults) {
  const auto cell = [](const string& s) {
    string r;
    for (char c : s) r += c == '|' ? string("\\|") : string(1, c);
    return r;
  };
  for (const auto& row : table) {
    string def = "required";
    if (!row.required) {
      const YAML::Node n = row.emit(defaults);
      if (n.IsScalar()) {
        def = n.Scalar().empty() ? "\"\"" : n.Scalar();
      } else {
        YAML::Emitter e;
        e << n;
        def = e.c_str();
      }
      def = "`" + def + "`";
    }
    out += "| `" + row.path + "` | " + cell(row.type) + " | " + cell(def) + " | " + cell(row.doc) +
           " |\n";
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public interface

std::string Endpoint::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

const char* to_string(Aggregate a) {
  switch (a) {
    case Aggregate::sum: return "sum";
    case Aggregate::count: return "count";
    case Aggregate::min: return "min";
    case Aggregate::max: return "max";
    case Aggregate::mean: return "mean";
  }
  return "?";
}

bool is_loopback_host(const std::string& host) {
  std::array<unsigned char, 16> address{};
  if (inet_pton(AF_INET, host.c_str(), address.data()) == 1) return address[0] == 127;
  if (inet_pton(AF_INET6, host.c_str(), address.data()) == 1) {
    return std::all_of(address.begin(), address.end() - 1,
                       [](unsigned char b) { return b == 0; }) &&
           address.back() == 1;
  }
  return same_host(host, "localhost");
}

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
  };
}

Millis parse_duration(const std::string& text) {
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("invalid duration \"" + text + "\": " + why);
  };
  if (!text.empty() && text.front() == '-') throw bad("must not be negative");
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) throw bad("expected a whole number and a unit, e.g. 250ms, 10s, 5m, 1h");
  const std::string_view unit = std::string_view(text).substr(digits);
  Millis::rep scale = 0;
  if (unit == "ms")
    scale = 1;
  else if (unit == "s")
    scale = 1000;
  else if (unit == "m")
    scale = 60'000;
  else if (unit == "h")
    scale = 3'600'000;
  else if (unit.empty())
    throw bad("missing unit (ms, s, m or h)");
  else if (unit.front() == '.')
    throw bad("expected a whole number, e.g. 1500ms rather than 1.5s");
  else
    throw bad("unknown unit (expected ms, s, m or h)");
  Millis::rep n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, n);
  if (ec != std::errc{} || n > std::numeric_limits<Millis::rep>::max() / scale) {
    throw bad("too large");
  }
  return Millis(n * scale);
}

std::string format_duration(Millis d) {
  const auto n = d.count();
  if (n == 0) return "0s";
  if (n % 3'600'000 == 0) return std::to_string(n / 3'600'000) + "h";
  if (n % 60'000 == 0) return std::to_string(n / 60'000) + "m";
  if (n % 1000 == 0) return std::to_string(n / 1000) + "s";
  return std::to_string(n) + "ms";
}

Config parse(const std::string& yaml_text, const std::string& source_name, const EnvLookup& env) {
  try {
    const Ctx ctx{source_name, env};
    const std::vector<Document> docs = documents(yaml_text);
    for (std::size_t i = 1; i < docs.size(); ++i) {
      const YAML::Mark& at = docs[i].start;
      if (at.pos == docs[i - 1].start.pos) {  // a token no document consumed, e.g. a stray ','
        ctx.fail(at, "(syntax)", "invalid YAML: unexpected '" + yaml_text.substr(at.pos, 1) + "'");
      }
    }
    if (docs.size() > 1) ctx.fail(docs[1].root, "(document)", "only one YAML document is allowed");
    const YAML::Node root = docs.empty() ? YAML::Node() : YAML::Load(yaml_text);
    if (root.IsNull()) {
      throw ConfigError(
          source_name +
          ":1: pipelines: the configuration is empty; at least one pipeline is required");
    }
    if (!root.IsMap()) {
      ctx.fail(root.Mark(), "(top level)", std::string("expected a mapping, got ") + kind(root));
    }
    Config config;
    Marks marks;
    apply_scope(ctx, root, top_keys(), "", "", config, marks);
    if (config.http_listen) {
      for (std::size_t i = 0; i < config.pipelines.size(); ++i) {
        const PipelineConfig& p = config.pipelines[i];
        if (!p.reads_kafka() && listen_overlaps(*config.http_listen, p.source_listen())) {
          const auto at = marks.find("http.listen");
          ctx.fail(at != marks.end() ? at->second : root.Mark(), "http.listen",
                   "listen address " + config.http_listen->to_string() + " collides with " +
                       p.source_listen().to_string() + " of pipelines[" + std::to_string(i) +
                       "].source." + (p.reads_http() ? "http" : "tcp") + ".listen");
        }
      }
    }
    return config;
  } catch (const ConfigError&) {
    throw;
  } catch (const YAML::Exception& e) {
    throw ConfigError(source_name + ":" + std::to_string(line_of(e.mark)) +
                      ": (syntax): invalid YAML: " + e.msg);
  } catch (const std::exception& e) {
    throw ConfigError(source_name + ": " + e.what());
  } catch (...) {
    throw ConfigError(source_name + ": unexpected error while reading the configuration");
  }
}

Config load_file(const std::string& path, const EnvLookup& env) {
  const auto fail = [&](int err) {
    return ConfigError(path + ": cannot read: " + std::generic_category().message(err));
  };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw fail(errno);
  std::string text;
  char buf[8192];
  constexpr std::size_t kLimit = 16u << 20;
  std::size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() <= kLimit) {
    text.append(buf, got);
  }
  const int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0) throw fail(err);
  if (text.size() > kLimit) throw ConfigError(path + ": cannot read: larger than 16 MiB");
  return parse(text, path, env);
}

std::string to_yaml(const Config& config) {
  YAML::Emitter out;
  out << emit_scope(top_keys(), "", config);
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> warnings(const Config& config) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < config.pipelines.size(); ++i) {
    const PipelineConfig& p = config.pipelines[i];
    const std::string who = "pipelines[" + std::to_string(i) + "] (" + p.name + "): ";
    if (p.reads_http() && !is_loopback_host(p.http.listen->host) &&
        (p.http.tls_cert_file.empty() || p.http.token.empty())) {
      out.push_back(who + "source.http.listen " + p.http.listen->to_string() +
                    " is not a loopback address, and the endpoint has " +
                    (p.http.tls_cert_file.empty() && p.http.token.empty()
                         ? "neither source.http.tls nor source.http.auth"
                     : p.http.token.empty() ? "no source.http.auth"
                                            : "no source.http.tls") +
                    ": anyone who reaches it can write, or read what is written and its token; "
                    "set both");
    }
    if (p.reads_kafka() && p.window_time != "event") {
      out.push_back(who +
                    "source.kafka with window.time: processing: a window holds what was read "
                    "during it, so an instance that takes a partition over computes other "
                    "points than the one before; results are exact only with window.time: event");
    } else if (p.reads_kafka() && p.watermark_idle_timeout.count() > 0) {
      out.push_back(who + "source.kafka with window.idle_timeout " +
                    format_duration(p.watermark_idle_timeout) +
                    ": a partition's watermark follows the wall clock after that long without "
                    "records, so a record arriving later may be too late on one instance and "
                    "not on the next; set it to 0 for exact results if every partition gets "
                    "records steadily");
    }
    if (p.reads_kafka() && p.kafka.partition_tag.empty()) {
      out.push_back(who +
                    "source.kafka.partition_tag is \"\": points carry no partition, so a key "
                    "read from two partitions gives two points that overwrite each other in "
                    "InfluxDB; this is right only if producers send each key to one partition");
    }
    if (p.influx.scheme == "https" && p.influx.tls_insecure_skip_verify) {
      out.push_back(who + "sink.influxdb.tls.insecure_skip_verify is true: the certificate of " +
                    p.influx.endpoint.to_string() +
                    " is NOT verified, so anyone on the network path can read and alter the "
                    "writes and their credentials; use tls.ca_file instead outside of tests");
    }
  }
  return out;
}

std::string config_reference() {
  std::string out = "| Key | Type | Default | Description |\n|---|---|---|---|\n";
  reference_rows(out, top_keys(), Config{});
  reference_rows(out, pipeline_keys(), PipelineConfig{});
  return out;
}

}  // namespace tumbled::config
