// Reading devlistd's log in end-to-end tests: whether it has caught up with the homeserver.
#pragma once

#include "tests/homeserver/client_api.hpp"

#include <string_view>

namespace devlist::test {

// Whether the log shows that devlistd applied a /sync batch at or past stream position
// `target` and, at that line or later, had no outdated user left. Lines are written by the
// one io thread in the order things happened, and a user stops being outdated only after its
// /keys/query answer was committed, so from that line on the store holds every change up to
// `target`. Only complete lines count.
inline bool has_converged(std::string_view log, testing::stream_position target) {
    bool caught_up = false;
    for (std::size_t end; (end = log.find('\n')) != std::string_view::npos;
         log.remove_prefix(end + 1)) {
        const std::string_view line = log.substr(0, end);
        // "sync s<position>[ (initial)]: ... tracking N users, M outdated"
        if (auto at = line.find("sync s"); at != std::string_view::npos) {
            std::string_view token = line.substr(at + 5);
            token = token.substr(0, token.find_first_of(" :"));
            if (auto position = testing::parse_sync_token(token); position && *position >= target) {
                caught_up = true;
            }
        }
        if (caught_up && line.find(", 0 outdated") != std::string_view::npos) return true;
    }
    return false;
}

}  // namespace devlist::test
