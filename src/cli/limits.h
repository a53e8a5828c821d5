// Process resource limits for the long-running commands.
#pragma once

namespace ferry::cli {

// Raises the soft open-file limit to the hard one (a server holds one descriptor per client
// connection; Debian's default soft limit of 1024 would refuse connections long before
// --max-connections does). Best effort: failures are logged, not fatal.
void RaiseOpenFileLimit();

}  // namespace ferry::cli
