// Bounds on the JSON that devlist_crypto reads: everything it parses came over the network.
#pragma once

#include <cstddef>

namespace devlist::json {

struct limits {
    std::size_t max_bytes = 16u << 20;  // the whole text
    std::size_t max_depth = 64;         // nested objects and arrays; a top-level {} is depth 1
};

}  // namespace devlist::json
