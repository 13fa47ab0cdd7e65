// libFuzzer target: the answers to devlistd's own key uploads (/keys/upload counts, the UIA
// challenge of a 401, /keys/signatures/upload failures, the one-time key conflict message).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sync/parse_uploads.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    (void)devlist::sync::parse_keys_upload_response(body);
    (void)devlist::sync::parse_uia_challenge(body);
    (void)devlist::sync::parse_signatures_upload_response(body);
    (void)devlist::sync::one_time_key_conflict_id(body);
    return 0;
}
