#include "sink/line_protocol.hpp"

#include <charconv>
#include <cmath>

namespace tumbled::sink {

namespace {

void append_escaped(std::string& out, std::string_view text, std::string_view specials) {
  // Names rarely hold a special character: copy the runs between them whole.
  for (auto special = text.find_first_of(specials); special != std::string_view::npos;
       special = text.find_first_of(specials)) {
    out.append(text.substr(0, special));
    out.push_back('\\');
    out.push_back(text[special]);
    text.remove_prefix(special + 1);
  }
  out.append(text);
}

template <class Number>
void append_number(std::string& out, Number value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

}  // namespace

void append_escaped(std::string& out, std::string_view text, NameRole role) {
  append_escaped(out, text, role == NameRole::measurement ? ", " : ",= ");
}

std::optional<std::string> name_problem(std::string_view name, NameRole role) {
  if (name.empty()) return "must not be empty";
  if (name.find_first_of("\n\r") != std::string_view::npos) {
    return "must not contain a line break";
  }
  if (role == NameRole::measurement && name.front() == '#') {
    return "must not start with '#' (line protocol reads that as a comment)";
  }
  if (name.back() == '\\') return "must not end with a backslash";
  if (role == NameRole::measurement || role == NameRole::field_key) {
    // InfluxDB 1.x drops a leading tab or NUL from a measurement or first field key, and reads a
    // backslash before any of ` ,="` in them as an escape although append_point wrote none there:
    // the point is refused (400), renamed, or (a measurement) stored where no query finds it
    // though the write succeeded. Tag keys and values read back as written. Seen on influxd 1.6.
    if (name.front() == '\t' || name.front() == '\0') return "must not start with a tab or NUL";
    constexpr std::string_view kReadAsEscapes = " ,=\"";
    for (std::size_t i = 0; i + 1 < name.size(); ++i) {
      if (name[i] == '\\' && kReadAsEscapes.find(name[i + 1]) != std::string_view::npos) {
        return "must not contain a backslash before a space, ',', '=' or '\"'";
      }
    }
  }
  if ((role == NameRole::tag_key || role == NameRole::field_key) && name == "time") {
    return "'time' is reserved by InfluxDB";
  }
  return std::nullopt;
}

void append_point(std::string& out, std::string_view measurement,
                  const std::map<std::string, std::string>& tags, const std::vector<Field>& fields,
                  std::int64_t timestamp_ms) {
  append_escaped(out, measurement, ", ");
  for (const auto& [key, value] : tags) {
    out.push_back(',');
    append_escaped(out, key, ",= ");
    out.push_back('=');
    append_escaped(out, value, ",= ");
  }
  char separator = ' ';
  for (const auto& field : fields) {
    out.push_back(separator);
    separator = ',';
    append_escaped(out, field.name, ",= ");
    out.push_back('=');
    if (const auto* integer = std::get_if<std::int64_t>(&field.value)) {
      append_number(out, *integer);
      out.push_back('i');
    } else if (const auto* real = std::get_if<double>(&field.value)) {
      // Line protocol has no NaN or infinity; callers never produce them (mean of >= 1 value).
      append_number(out, std::isfinite(*real) ? *real : 0.0);
    } else {
      out.append(std::get<bool>(field.value) ? "true" : "false");
    }
  }
  out.push_back(' ');
  append_number(out, timestamp_ms);
  out.push_back('\n');
}

}  // namespace tumbled::sink
