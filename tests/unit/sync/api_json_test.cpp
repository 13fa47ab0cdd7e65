// The socket API's documents for a user's devices and for one device are written directly,
// member by member; these tests hold them to what the generic canonical writer makes of the same
// document built as a json::value tree (sorted keys, escaping, null for what is missing).
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "crypto/json_value.hpp"
#include "devlist/json.hpp"
#include "sync/api_json.hpp"

namespace devlist {
namespace {

json::value nullable_text(const std::optional<std::string>& v) {
    if (!v) return nullptr;
    return json::value(*v);
}

json::value nullable_int(const std::optional<std::int64_t>& v) {
    if (!v) return nullptr;
    return json::value(*v);
}

json::object expected_listed(const device& d) {
    return json::object{
        {"device_id", d.device_id},       {"ed25519", d.ed25519},
        {"curve25519", d.curve25519},     {"display_name", nullable_text(d.display_name)},
        {"cross_signed", d.cross_signed}, {"first_seen", d.first_seen},
        {"last_seen", d.last_seen}};
}

std::string expected(const device& d) {
    json::object o = expected_listed(d);
    o["user_id"] = d.user_id;
    o["deleted"] = d.deleted_at.has_value();
    o["deleted_at"] = nullable_int(d.deleted_at);
    return json::to_canonical(o);
}

std::string expected(const user_devices& u) {
    json::array list;
    for (const auto& d : u.devices)
        list.push_back(expected_listed(d));
    json::object keys;
    for (const auto& c : u.cross_signing_keys) {
        keys[std::string(sync::name_of(c.usage))] = json::object{{"public_key", c.public_key},
                                                                 {"verified", c.verified},
                                                                 {"first_seen", c.first_seen},
                                                                 {"last_seen", c.last_seen}};
    }
    json::array reasons;
    if (u.tracked) {
        if (u.reasons.own) reasons.emplace_back("own");
        if (u.reasons.encrypted_room) reasons.emplace_back("encrypted_room");
        if (u.reasons.explicit_request) reasons.emplace_back("explicit");
    }
    return json::to_canonical(json::object{{"user_id", u.user_id},
                                           {"tracked", u.tracked},
                                           {"outdated", u.outdated},
                                           {"reasons", std::move(reasons)},
                                           {"last_refreshed_at", nullable_int(u.last_refreshed_at)},
                                           {"devices", std::move(list)},
                                           {"cross_signing_keys", std::move(keys)}});
}

device plain_device() {
    return device{.user_id = "@alice:example.org",
                  .device_id = "JLAFKJWSCS",
                  .ed25519 = "nE6W2fCblxDcOFmeEtCHNl8/l8bXcu7GKyAswA4r3mM",
                  .curve25519 = "Y4fF4Ys3vrtRvJ/n9dLxrOGy3tQMZgsRmgjcqtlA6Ro",
                  .display_name = "Alice's phone",
                  .cross_signed = true,
                  .first_seen = 1700000000000,
                  .last_seen = 1700000123456,
                  .deleted_at = std::nullopt};
}

// Strings a store may hold that canonical JSON must escape or keep raw.
device awkward_device() {
    device d = plain_device();
    d.user_id = "@a\"b\\c:example.org";
    d.device_id = std::string("DEV\x01\x1f", 5) + "\t\n";
    d.display_name = "\xc3\xa9t\xc3\xa9 \xf0\x9f\x93\xb1 \"quoted\" \\ \b\f\r";
    d.cross_signed = false;
    d.first_seen = 0;
    d.last_seen = json::max_safe_integer;
    return d;
}

TEST(api_json, a_device_by_key_is_written_as_the_canonical_document) {
    device d = plain_device();
    EXPECT_EQ(to_json(d), expected(d));

    d.display_name.reset();
    d.deleted_at = 1700000999999;
    EXPECT_EQ(to_json(d), expected(d));

    const device odd = awkward_device();
    EXPECT_EQ(to_json(odd), expected(odd));
}

TEST(api_json, a_users_devices_are_written_as_the_canonical_document) {
    user_devices u;
    u.user_id = "@alice:example.org";
    u.tracked = true;
    u.outdated = false;
    u.reasons = {.own = false, .encrypted_room = true, .explicit_request = true};
    u.last_refreshed_at = 1700000200000;
    u.devices = {plain_device(), awkward_device()};
    u.devices[1].display_name.reset();
    // Out of the canonical order, and one usage given twice: the later one stands.
    u.cross_signing_keys = {
        {key_usage::user_signing, "usk", false, 3, 4},
        {key_usage::master, "old master", true, 1, 2},
        {key_usage::self_signing, "ssk", true, 5, 6},
        {key_usage::master, "new master", false, 7, 8},
    };
    EXPECT_EQ(to_json(u), expected(u));
    EXPECT_NE(to_json(u).find("\"new master\""), std::string::npos);
    EXPECT_EQ(to_json(u).find("\"old master\""), std::string::npos);

    u.reasons = {.own = true, .encrypted_room = true, .explicit_request = true};
    EXPECT_EQ(to_json(u), expected(u));
}

TEST(api_json, an_untracked_user_without_devices_or_keys_is_written_as_the_canonical_document) {
    user_devices u;
    u.user_id = "@nobody:example.org";
    u.reasons = {.own = true, .encrypted_room = false, .explicit_request = false};
    EXPECT_EQ(to_json(u), expected(u));
    EXPECT_EQ(to_json(u),
              "{\"cross_signing_keys\":{},\"devices\":[],\"last_refreshed_at\":null,"
              "\"outdated\":true,\"reasons\":[],\"tracked\":false,\"user_id\":\"@nobody:"
              "example.org\"}");
}

}  // namespace
}  // namespace devlist
