// A process that races others on one store's remediation tables (store_remediation_test.cc
// starts several): it waits until a start file exists, then records `n` failures with one
// fingerprint, or claims once, and prints one line per result.
//
//   remediation_race_child LOCATION record WORKFLOW_ID RUN_ID N START_FILE
//   remediation_race_child LOCATION claim OWNER MAX_ACTIVE 1 START_FILE
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "store/store.h"

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s LOCATION record|claim A B N START_FILE\n", argv[0]);
    return 2;
  }
  const std::string location = argv[1], mode = argv[2], a = argv[3], b = argv[4];
  const int n = std::stoi(argv[5]);
  const std::string start = argv[6];
  ferry::StoreOptions options;
  options.busy_timeout = std::chrono::seconds(30);
  auto store = ferry::OpenStore(location, options);
  if (!store) {
    std::fprintf(stderr, "open: %s\n", store.error().message.c_str());
    return 1;
  }
  while (!std::filesystem::exists(start))
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  int failures = 0;
  for (int i = 0; i < n; ++i) {
    if (mode == "record") {
      ferry::RecordRemediationRequest req;
      req.fingerprint = "race-fingerprint";
      req.workflow_id = a;
      req.version = 1;
      req.run_id = b;
      req.error = "boom";
      auto r = (*store)->RecordRemediation(req);
      if (!r) {
        std::fprintf(stderr, "record: %s\n", r.error().message.c_str());
        ++failures;
        continue;
      }
      std::printf("%s %s\n", r->created ? "created" : "attached", r->remediation.id.c_str());
    } else {
      ferry::ClaimRemediationsRequest req;
      req.owner = a;
      req.max_active = std::stoi(b);
      auto r = (*store)->ClaimRemediations(req);
      if (!r) {
        std::fprintf(stderr, "claim: %s\n", r.error().message.c_str());
        ++failures;
        continue;
      }
      for (const auto& m : r->claimed) std::printf("claimed %s\n", m.id.c_str());
      if (r->claimed.empty()) std::printf("none\n");
    }
  }
  std::fflush(stdout);
  return failures == 0 ? 0 : 1;
}
