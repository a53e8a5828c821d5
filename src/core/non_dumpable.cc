#include "core/non_dumpable.h"

#include <sys/prctl.h>

namespace ferry {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

}  // namespace

void MarkNonDumpable() {
  if (kSanitized) return;
  (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

bool IsNonDumpable() { return ::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0; }

bool MarkingNonDumpableWorks() { return !kSanitized; }

}  // namespace ferry
