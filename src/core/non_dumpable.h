// Keeps this process's environment and memory from other processes of its user.
#pragma once

namespace ferry {

// Marks the process non-dumpable (prctl PR_SET_DUMPABLE 0): /proc/PID/environ, mem and the like
// become readable by root only, ptrace needs CAP_SYS_PTRACE, and no core file is written. A
// program Ferry runs as the same user (a shell node or task, an exec handler) then cannot read
// the FERRY_SECRET_* and connection URLs in Ferry's environment. Programs it starts are dumpable
// again (execve resets the flag). Idempotent; a failure is ignored (the flag only narrows access).
// Not in sanitizer builds: LeakSanitizer stops the process with ptrace from a helper task, which
// a non-root, non-dumpable process refuses.
void MarkNonDumpable();

// Whether the process is non-dumpable now.
bool IsNonDumpable();
// Whether MarkNonDumpable() acts in this build (false in sanitizer builds).
bool MarkingNonDumpableWorks();

}  // namespace ferry
