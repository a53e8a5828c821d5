#include "cli/json_text.h"

#include "cli/options.h"
#include "cli/output.h"

namespace ferry::cli {

std::string Field(const Json& record, std::string_view key) {
  auto it = record.find(key);
  if (it == record.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  return DumpJson(*it);
}

int64_t FieldMs(const Json& record, std::string_view key) {
  auto it = record.find(key);
  if (it == record.end() || !it->is_string()) return 0;
  auto ms = ParseIso8601(it->get<std::string>());
  return ms ? *ms : 0;
}

std::string FieldTime(const Json& record, std::string_view key) {
  return HumanTime(FieldMs(record, key));
}

int64_t FieldInt(const Json& record, std::string_view key) {
  auto it = record.find(key);
  if (it == record.end() || !it->is_number_integer()) return 0;
  return it->get<int64_t>();
}

}  // namespace ferry::cli
