// libFuzzer target: the small homeserver answers that have no target of their own — /login,
// /account/whoami, filter creation, the Matrix error body of every failed request, and the
// Retry-After header of a 429 or 503.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sync/http_retry_after.hpp"
#include "sync/parse_account.hpp"
#include "sync/parse_matrix_error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static devlist::sync::parse_context ctx;
    std::string body(reinterpret_cast<const char*>(data), size);
    if (auto login = devlist::sync::parse_login_response(ctx, body)) {
        // /login's three fields are required.
        if (login->user_id.empty() || login->access_token.empty() || login->device_id.empty()) {
            std::abort();
        }
    }
    (void)devlist::sync::parse_whoami_response(ctx, body);
    (void)devlist::sync::parse_filter_response(ctx, body);
    if (auto e = devlist::sync::parse_matrix_error(body)) {
        if (e->retry_after_ms && *e->retry_after_ms < 0) std::abort();
    }
    // A fixed "now", so that a date input gives the same answer on every run.
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    if (auto delay = devlist::sync::parse_retry_after(body, now)) {
        if (delay->count() < 0) std::abort();
    }
    return 0;
}
