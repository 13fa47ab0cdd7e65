// libFuzzer target: the /sync response parser (the largest body devlistd reads).
#include <cstddef>
#include <cstdint>
#include <string>

#include "sync/parse_sync.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static devlist::sync::parse_context ctx;
    std::string body(reinterpret_cast<const char*>(data), size);
    (void)devlist::sync::parse_sync_response(ctx, body);
    return 0;
}
