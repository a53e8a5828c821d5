#include "ferry/worker_main.h"

#include "cli/cli.h"

namespace ferry {

int RunWorkerMain(int argc, char** argv, const HandlerRegistry& registry) {
  return cli::RunWorkerMain(argc, argv, registry);
}

}  // namespace ferry
