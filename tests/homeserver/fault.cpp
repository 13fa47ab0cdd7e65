#include "tests/homeserver/fault.hpp"

#include <algorithm>

namespace devlist::testing {

std::optional<fault_kind> fault_queue::take(std::string_view method, std::string_view path) {
    const auto match = std::find_if(faults_.begin(), faults_.end(), [&](const fault& f) {
        return path.starts_with(f.path_prefix) && (f.method.empty() || f.method == method);
    });
    if (match == faults_.end()) return std::nullopt;
    fault_kind action = match->action;
    if (--match->count <= 0) faults_.erase(match);
    return action;
}

}  // namespace devlist::testing
