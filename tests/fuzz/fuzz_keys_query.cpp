// libFuzzer target: the /keys/query and /keys/changes parsers and the verifier behind the former
// (hostile key data). The answer is read in its two steps (parse_keys_query_response locates
// and digests each user's part, then parses it); a second reading must find the same parts with
// the same digests, or a repeated part could be taken for another.
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
    auto first = devlist::sync::index_keys_query_answer(ctx, body);
    auto second = devlist::sync::index_keys_query_answer(ctx, body);
    if (!first || !second || first->users.size() != answer->users.size() ||
        second->users.size() != first->users.size()) {
        __builtin_trap();
    }
    for (std::size_t i = 0; i < first->users.size(); ++i) {
        if (first->users[i].digest != second->users[i].digest) __builtin_trap();
    }
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
