// devlist-interop-verify: devlistd's verdicts on one /keys/query answer, for the interop test.
//
// Usage: devlist-interop-verify ANSWER.json
//
// Verifies the answer the way the query scheduler does, as a client that knows nothing yet about
// the users in it (no stored devices or cross-signing keys), and prints one row per device as a
// JSON array on stdout:
//   {"user":…, "device":…, "accepted":bool, "cross_signed":bool, "reason":… (when rejected)}
// A row exists for every device the answer lists (by its map keys) and for every device the
// verifier accepted, so that the rows can be compared one to one with another implementation's.
// Exit status: 0 with rows printed; 2 when the file cannot be read or the answer is unusable.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "crypto/json_value.hpp"
#include "sync/key_verifier.hpp"
#include "sync/parse_keys.hpp"

namespace {

using devlist::json::array;
using devlist::json::object;
using devlist::json::value;

struct verdict {
    bool accepted = false;
    bool cross_signed = false;
    std::string reason;
};

// Keyed by (user, device) so the rows come out in a stable order.
using verdict_table = std::map<std::pair<std::string, std::string>, verdict>;

bool read_file(const char* path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream buffer;
    buffer << in.rdbuf();
    out = std::move(buffer).str();
    return static_cast<bool>(in) || in.eof();
}

// The rejection reason the verifier recorded for a device, if any.
std::string rejection_reason(const devlist::storage::query_result& result, const std::string& user,
                             const std::string& device) {
    for (const auto& event : result.security_events) {
        if (event.user_id != user || event.device_id != device) continue;
        auto detail = devlist::json::parse(event.detail_json);
        if (!detail) return event.kind;
        const value* reason = detail->find("reason");
        if (reason && reason->is_string()) return reason->as_string();
        return event.kind;
    }
    return {};
}

verdict_table verdicts_for(const devlist::sync::keys_query_response& answer) {
    // Every user the answer covers is asked for, once, as the scheduler would.
    std::vector<devlist::sync::query_ticket> tickets;
    for (const auto& user : answer.users)
        tickets.push_back({user, 0});
    devlist::sync::verification_stats stats;
    std::vector<std::string> absent;
    auto result = devlist::sync::verify_query_answer(
        answer, tickets, [](const std::string&) { return devlist::sync::known_keys{}; }, 0, stats,
        absent);

    verdict_table table;
    for (const auto& device : answer.devices)
        table[{device.user_id, device.device_id}] = {};
    for (const auto& user : result.users) {
        for (const auto& device : user.devices) {
            auto& row = table[{device.user_id, device.device_id}];
            row.accepted = true;
            row.cross_signed = device.cross_signed;
        }
    }
    for (auto& [key, row] : table) {
        if (!row.accepted) row.reason = rejection_reason(result, key.first, key.second);
    }
    return table;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: devlist-interop-verify ANSWER.json\n";
        return 2;
    }
    std::string body;
    if (!read_file(argv[1], body)) {
        std::cerr << "devlist-interop-verify: cannot read " << argv[1] << "\n";
        return 2;
    }
    devlist::sync::parse_context ctx;
    auto answer = devlist::sync::parse_keys_query_response(ctx, body);
    if (!answer) {
        std::cerr << "devlist-interop-verify: " << argv[1]
                  << " is not a usable /keys/query answer: " << answer.error().message() << "\n";
        return 2;
    }
    for (const auto& why : answer->drop_reasons)
        std::cerr << "devlist-interop-verify: dropped entry: " << why << "\n";

    array rows;
    for (const auto& [key, row] : verdicts_for(*answer)) {
        object out{{"user", key.first},
                   {"device", key.second},
                   {"accepted", row.accepted},
                   {"cross_signed", row.cross_signed}};
        if (!row.reason.empty()) out.emplace("reason", row.reason);
        rows.emplace_back(std::move(out));
    }
    std::cout << devlist::json::to_canonical(value(std::move(rows))) << "\n";
    return std::cout.flush() ? 0 : 2;
}
