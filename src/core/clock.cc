#include "core/clock.h"

namespace ferry {

SystemClock& SystemClock::Instance() {
  static SystemClock clock;
  return clock;
}

}  // namespace ferry
