// libFuzzer target: the socket API's request-target parser (daemon/request_target.cpp), which
// reads the path and query of every request a local peer sends. Checks, besides memory
// safety, that decoding never splits a segment at an encoded '/' and that every query
// parameter it returns is found again by name.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/request_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)devlist::daemon::percent_decode(text);
    auto target = devlist::daemon::parse_request_target(text);
    if (!target) return 0;
    std::string_view path = text.substr(0, text.find('?'));
    std::size_t slashes = 0;
    for (char c : path)
        slashes += c == '/' ? 1 : 0;
    if (target->segments.size() != slashes) std::abort();
    for (const auto& [key, value] : target->query) {
        const std::string* found = target->param(key);
        if (found == nullptr || *found != value) std::abort();
    }
    return 0;
}
