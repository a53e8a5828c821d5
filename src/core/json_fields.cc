#include "core/json_fields.h"

#include <charconv>
#include <vector>

#include "core/suggest.h"
#include "core/time_util.h"

namespace ferry {

std::string JsonKindName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a number";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    default:
      return "binary data";
  }
}

FieldReader::FieldReader(const Json& object, std::string prefix)
    : object_(object), prefix_(std::move(prefix)) {
  if (!object_.is_object()) {
    error_ = (prefix_.empty() ? std::string("body") : prefix_.substr(0, prefix_.size() - 1)) +
             " must be a JSON object, got " + JsonKindName(object_);
  }
}

void FieldReader::Problem(std::string_view name, const std::string& what) {
  if (!error_) error_ = prefix_ + std::string(name) + " " + what;
}

const Json* FieldReader::Find(std::string_view name, bool required) {
  known_.emplace(name);
  if (error_ || !object_.is_object()) return nullptr;
  auto it = object_.find(name);
  if (it == object_.end() || it->is_null()) {
    if (required) Problem(name, "is required");
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> FieldReader::String(std::string_view name, bool required) {
  const Json* v = Find(name, required);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    Problem(name, "must be a string, got " + JsonKindName(*v));
    return std::nullopt;
  }
  return v->get<std::string>();
}

std::optional<bool> FieldReader::Bool(std::string_view name, bool required) {
  const Json* v = Find(name, required);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) {
    Problem(name, "must be true or false, got " + JsonKindName(*v));
    return std::nullopt;
  }
  return v->get<bool>();
}

std::optional<int64_t> FieldReader::Int(std::string_view name, int64_t min, int64_t max,
                                        bool required) {
  const Json* v = Find(name, required);
  if (v == nullptr) return std::nullopt;
  const std::string range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  std::optional<int64_t> n;
  if (v->is_number_integer() && !v->is_number_unsigned()) {
    n = v->get<int64_t>();
  } else if (v->is_number_unsigned()) {
    auto u = v->get<uint64_t>();
    if (u <= static_cast<uint64_t>(INT64_MAX)) n = static_cast<int64_t>(u);
  }
  if (!n || *n < min || *n > max) {
    Problem(name,
            "must be " + range + ", got " + (v->is_number() ? DumpJson(*v) : JsonKindName(*v)));
    return std::nullopt;
  }
  return n;
}

std::optional<std::chrono::milliseconds> FieldReader::Duration(std::string_view name,
                                                               std::chrono::milliseconds min,
                                                               std::chrono::milliseconds max,
                                                               bool required) {
  auto text = String(name, required);
  if (!text) return std::nullopt;
  auto d = ParseDuration(*text);
  if (!d) {
    Problem(name, "is not a duration: " + d.error().message);
    return std::nullopt;
  }
  if (*d < min || *d > max) {
    Problem(name, "must be from " + FormatDuration(min) + " to " + FormatDuration(max) + ", got " +
                      *text);
    return std::nullopt;
  }
  return *d;
}

std::optional<Json> FieldReader::Object(std::string_view name, bool required) {
  const Json* v = Find(name, required);
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) {
    Problem(name, "must be a JSON object, got " + JsonKindName(*v));
    return std::nullopt;
  }
  return *v;
}

std::optional<Json> FieldReader::Any(std::string_view name, bool required) {
  const Json* v = Find(name, required);
  if (v == nullptr) return std::nullopt;
  return *v;
}

std::optional<std::string> FieldReader::NonEmptyString(std::string_view name,
                                                       std::string_view leave_out) {
  auto text = String(name);
  if (text && text->empty()) {
    Problem(name, "must not be empty (leave it out " + std::string(leave_out) + ")");
    return std::nullopt;
  }
  return text;
}

std::optional<Json> FieldReader::AnyButNull(std::string_view name, std::string_view leave_out) {
  if (!error_ && object_.is_object()) {
    auto it = object_.find(name);
    if (it != object_.end() && it->is_null()) {
      known_.emplace(name);
      Problem(name,
              "must be a JSON value other than null (leave it out " + std::string(leave_out) + ")");
      return std::nullopt;
    }
  }
  return Any(name);
}

Status FieldReader::Finish() const {
  if (error_) return Fail(ErrorCode::kInvalidArgument, *error_);
  std::vector<std::string> names(known_.begin(), known_.end());
  for (const auto& [key, value] : object_.items()) {
    if (known_.count(key) != 0) continue;
    std::string msg = "unknown field " + prefix_ + key;
    if (auto s = ClosestMatch(key, names)) msg += " (did you mean " + prefix_ + *s + "?)";
    std::string allowed;
    for (const auto& n : names) allowed += (allowed.empty() ? "" : ", ") + n;
    if (!allowed.empty()) msg += "; known fields: " + allowed;
    return Fail(ErrorCode::kInvalidArgument, msg);
  }
  return {};
}

Result<Json> ParseJsonObject(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument, "expected a JSON object body");
  }
  auto parsed = ParseJson(body);
  if (!parsed) return Fail(parsed.error());
  if (!parsed->is_object()) {
    return Fail(ErrorCode::kInvalidArgument,
                std::string("expected a JSON object body, got ") + parsed->type_name());
  }
  return parsed;
}

Result<int> ParseLimit(std::string_view text, int default_value, int max_value) {
  if (text.empty()) return default_value;
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > max_value) {
    return Fail(ErrorCode::kInvalidArgument,
                "limit must be an integer from 1 to " + std::to_string(max_value));
  }
  return value;
}

Json ErrorJson(const Error& error) {
  Json body{{"error", {{"code", ErrorCodeName(error.code)}, {"message", error.message}}}};
  if (!error.details.empty()) {
    // Details are made by Ferry's own code; a malformed one is dropped rather than sent.
    if (auto extra = ParseJson(error.details); extra && extra->is_object()) {
      for (auto& [key, value] : extra->items()) {
        if (key != "code" && key != "message") body["error"][key] = value;
      }
    }
  }
  return body;
}

bool OutcomeIsUnknown(const Error& error) {
  if (error.details.empty()) return false;
  auto details = ParseJson(error.details);
  return details && details->is_object() && details->value("outcome", Json()) == "unknown";
}

}  // namespace ferry
