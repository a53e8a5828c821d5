// systemd's notify protocol (Type=notify units), without libsystemd: one datagram with
// "READY=1", "STOPPING=1", "STATUS=..." to the unix socket named by $NOTIFY_SOCKET ('@' = an
// abstract socket). Without $NOTIFY_SOCKET (not under systemd) it does nothing.
//
// Thread-safety: safe from any thread (a fresh socket per call).
#pragma once

#include <string_view>

namespace ferry::ops {

// Sends `state` (e.g. "READY=1\nSTATUS=serving"). Returns true when it was sent, false when
// there is no $NOTIFY_SOCKET or sending failed.
bool SdNotify(std::string_view state);

}  // namespace ferry::ops
