#include "service/query.h"

#include "core/json_fields.h"

namespace ferry::service {

std::string QueryReader::Text(std::string_view name) {
  known_.emplace(name);
  auto it = query_.find(name);
  if (it == query_.end()) return std::string();
  // `?limit=` is most likely a value a client meant to fill in: refused, not taken for absent.
  if (it->second.empty()) {
    Problem("query parameter '" + std::string(name) + "' is empty: give a value or leave it out");
  }
  return it->second;
}

int QueryReader::Limit(int default_value, int max) {
  auto limit = ParseLimit(Text("limit"), default_value, max);
  if (!limit) {
    Problem(limit.error().message);
    return default_value;
  }
  return *limit;
}

void QueryReader::Problem(const std::string& message) {
  if (!error_) error_ = message;
}

Status QueryReader::Finish() const {
  if (error_) return Fail(ErrorCode::kInvalidArgument, *error_);
  for (const auto& [name, value] : query_) {
    if (known_.count(name) == 0) {
      std::string known;
      for (const auto& k : known_) known += (known.empty() ? "" : ", ") + k;
      return Fail(ErrorCode::kInvalidArgument,
                  "unknown query parameter '" + name + "'" +
                      (known.empty() ? "; this route takes none" : "; known: " + known));
    }
  }
  return {};
}

}  // namespace ferry::service
