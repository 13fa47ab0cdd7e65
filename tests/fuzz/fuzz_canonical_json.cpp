// libFuzzer target: canonical JSON, the JSON reader behind it, and base64 — everything that
// reads key data from the network before a signature is checked.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crypto/base64.hpp"
#include "crypto/canonical_json.hpp"
#include "crypto/json_value.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto canonical = devlist::crypto::canonicalize(text);
    auto parsed = devlist::json::parse(text);
    // The two paths share one reader: they must agree on what is valid, and on the bytes.
    if (canonical.has_value() != parsed.has_value()) std::abort();
    if (canonical && devlist::json::to_canonical(*parsed) != *canonical) std::abort();
    // Canonical output is a fixed point.
    if (canonical) {
        auto again = devlist::crypto::canonicalize(*canonical);
        if (!again || *again != *canonical) std::abort();
    }
    devlist::crypto::canonical_options strip;
    strip.strip_signatures_and_unsigned = true;
    (void)devlist::crypto::canonicalize(text, strip);
    if (auto bytes = devlist::crypto::base64_decode(text)) {
        auto round = devlist::crypto::base64_decode(devlist::crypto::base64_encode(*bytes));
        if (!round || *round != *bytes) std::abort();
    }
    return 0;
}
