// What the runs tests read of a run's history to find the task its task node waits for.
#pragma once

#include <string>

#include "ferry/json.h"
#include "store/store.h"

namespace ferry {

// The task a run's task node last said it waits for (its last node.waiting event naming one),
// or "" while there is none.
inline std::string LastWaitedTask(Store& store, const std::string& run_id) {
  auto page = store.ListRunEventPage(run_id, {.limit = 1, .types = {"node.waiting"}, .last = true});
  if (!page || page->events.empty()) return "";
  auto data = ParseJson(page->events.back().data);
  if (!data || !data->is_object() || !(*data)["task"].is_string()) return "";
  return (*data)["task"].get<std::string>();
}

// The first task a run that gave its slot back waits for (its last run.waiting event naming
// one), or "" while there is none.
inline std::string TaskOfLastRelease(Store& store, const std::string& run_id) {
  auto page = store.ListRunEventPage(run_id, {.limit = 1, .types = {"run.waiting"}, .last = true});
  if (!page || page->events.empty()) return "";
  auto data = ParseJson(page->events.back().data);
  if (!data || !data->is_object() || !(*data)["tasks"].is_array() || (*data)["tasks"].empty() ||
      !(*data)["tasks"][0].is_string()) {
    return "";
  }
  return (*data)["tasks"][0].get<std::string>();
}

}  // namespace ferry
