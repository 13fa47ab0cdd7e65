// Failpoints: named places where a test can have the process killed (SIGKILL), to prove that a
// crash at that exact point loses nothing.
//
// Compiled in only when the build defines DEVLIST_FAILPOINTS=1 (CMake option
// DEVLIST_FAILPOINTS, which the test command turns on); otherwise DEVLIST_FAILPOINT(name) is
// nothing at all. When compiled in, the environment variable DEVLIST_FAILPOINT selects at most
// one point per process:
//   DEVLIST_FAILPOINT=sync.apply.before_commit      the first time that point is reached
//   DEVLIST_FAILPOINT=sync.apply.before_commit:3    the third time
// Reaching the selected point writes "devlist: failpoint NAME reached, killing the process" to
// stderr and raises SIGKILL: no destructor, no flush, no rollback runs — exactly a crash.
//
// Thread-safety: the hit counter is atomic; a point may be reached from any thread.
#pragma once

#include <string_view>

#if defined(DEVLIST_FAILPOINTS) && DEVLIST_FAILPOINTS

#include <unistd.h>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <string>

namespace devlist::detail {

struct failpoint_selection {
    std::string name;
    long hit = 1;  // which hit of the point kills (1: the first)
    std::atomic<long> seen{0};

    failpoint_selection() {
        const char* spec = std::getenv("DEVLIST_FAILPOINT");
        if (spec == nullptr) return;
        std::string_view s(spec);
        if (auto colon = s.rfind(':'); colon != std::string_view::npos) {
            hit = std::strtol(std::string(s.substr(colon + 1)).c_str(), nullptr, 10);
            if (hit < 1) hit = 1;
            s = s.substr(0, colon);
        }
        name = s;
    }
};

inline void failpoint_reached(std::string_view point) noexcept {
    static failpoint_selection selection;
    if (selection.name.empty() || selection.name != point) return;
    if (selection.seen.fetch_add(1) + 1 != selection.hit) return;
    std::string line = "devlist: failpoint ";
    line.append(point);
    line += " reached, killing the process\n";
    // write(2) straight to the descriptor: nothing buffered may be needed to see the line.
    [[maybe_unused]] auto written = ::write(2, line.data(), line.size());
    std::raise(SIGKILL);
}

}  // namespace devlist::detail

#define DEVLIST_FAILPOINT(name) ::devlist::detail::failpoint_reached(name)

#else

#define DEVLIST_FAILPOINT(name) static_cast<void>(0)

#endif
