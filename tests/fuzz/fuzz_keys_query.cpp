// libFuzzer target: the /keys/query and /keys/changes parsers and the verifier behind the former
// (hostile key data).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sync/key_verifier.hpp"
#include "sync/parse_keys.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static devlist::sync::parse_context ctx;
    std::string body(reinterpret_cast<const char*>(data), size);
    // The same bytes as a /keys/changes answer, the other body of the keys API.
    (void)devlist::sync::parse_keys_changes_response(ctx, body);
    auto answer = devlist::sync::parse_keys_query_response(ctx, body);
    if (!answer) return 0;
    std::vector<devlist::sync::query_ticket> tickets;
    for (const auto& user : answer->users)
        tickets.push_back({user, 1});
    devlist::sync::verification_stats stats;
    std::vector<std::string> absent;
    (void)devlist::sync::verify_query_answer(
        *answer, tickets, [](const std::string&) { return devlist::sync::known_keys{}; }, 0, stats,
        absent);
    return 0;
}
