#include "sync/parse_keys.hpp"

#include <gtest/gtest.h>

#include "fixture_file.hpp"

namespace devlist::sync {
namespace {

parse_context& ctx() {
    static parse_context c;
    return c;
}

TEST(parse_keys_query, spec_example) {
    auto r = parse_keys_query_response(
        ctx(), test::read_fixture("spec-examples/POST_keys_query.response-200.json"));
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->users, std::vector<std::string>{"@alice:example.com"});
    ASSERT_EQ(r->devices.size(), 1u);
    const auto& d = r->devices[0];
    EXPECT_EQ(d.user_id, "@alice:example.com");
    EXPECT_EQ(d.device_id, "JLAFKJWSCS");
    EXPECT_EQ(d.claimed_user_id, d.user_id);
    EXPECT_EQ(d.claimed_device_id, d.device_id);
    EXPECT_EQ(d.ed25519, "lEuiRJBit0IG6nUf5pUzWTUEsRVVe/HJkoKuEww9ULI");
    EXPECT_EQ(d.curve25519, "3C5BFWi2Y8MaVvjM8M22DBmh24PmgR0nPvJOIArzgyI");
    EXPECT_EQ(d.algorithms.size(), 2u);
    ASSERT_EQ(d.signatures.size(), 1u);
    EXPECT_EQ(d.signatures[0].signer, "@alice:example.com");
    EXPECT_EQ(d.signatures[0].key_id, "ed25519:JLAFKJWSCS");
    EXPECT_EQ(d.display_name, "Alice's mobile phone");
    EXPECT_FALSE(d.problem.has_value());
    EXPECT_EQ(d.raw_json.front(), '{');
    EXPECT_EQ(d.raw_json.back(), '}');
    ASSERT_EQ(r->master_keys.size(), 1u);
    EXPECT_EQ(r->master_keys[0].usage, std::vector<std::string>{"master"});
    EXPECT_EQ(r->master_keys[0].keys.size(), 1u);
    ASSERT_EQ(r->self_signing_keys.size(), 1u);
    EXPECT_EQ(r->self_signing_keys[0].signatures.size(), 1u);
    EXPECT_EQ(r->user_signing_keys.size(), 1u);
}

TEST(parse_keys_query, raw_json_is_the_exact_object_with_unknown_fields) {
    const std::string device =
        R"({"user_id":"@a:x","device_id":"D","keys":{"ed25519:D":"E","curve25519:D":"C"},)"
        R"("future_field":{"nested":[1,2,{"deep":true}]},"signatures":{"@a:x":{"ed25519:D":"S"}}})";
    auto r = parse_keys_query_response(
        ctx(), R"({"device_keys": {"@a:x": {"D":   )" + device + R"(  }}, "failures": {}})");
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->devices.size(), 1u);
    EXPECT_EQ(r->devices[0].raw_json, device);
    EXPECT_EQ(r->devices[0].ed25519, "E");
}

TEST(parse_keys_query, wrong_shapes_mark_the_device_not_the_answer) {
    auto r = parse_keys_query_response(ctx(), R"({"device_keys": {
        "@a:x": {"D1": {"user_id": 5, "device_id": "D1", "keys": {"ed25519:D1": 7},
                        "signatures": {"@a:x": "nope"}, "algorithms": "x"},
                 "D2": "not an object",
                 "bad device id": {}},
        "not-a-user": {"D": {}},
        "@b:y": {}},
      "failures": {"remote.example": {"status": 503}, "bad server!": {}},
      "master_keys": {"@a:x": {"user_id": "@a:x", "usage": "master", "keys": []}}})");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->users, (std::vector<std::string>{"@a:x", "@b:y"}));
    ASSERT_EQ(r->devices.size(), 2u);
    EXPECT_TRUE(r->devices[0].problem.has_value());
    EXPECT_TRUE(r->devices[0].ed25519.empty());
    EXPECT_TRUE(r->devices[1].problem.has_value());
    ASSERT_EQ(r->failures.size(), 1u);
    EXPECT_EQ(r->failures.at("remote.example"), R"({"status": 503})");
    ASSERT_EQ(r->master_keys.size(), 1u);
    EXPECT_TRUE(r->master_keys[0].problem.has_value());
    EXPECT_EQ(r->dropped, 3u);
}

TEST(parse_keys_query, unusable_bodies_are_errors) {
    for (const char* body :
         {"", "null", "{", "{\"device_keys\": {\"@a:x\": {\"D\": {]}}}", "{} {}"}) {
        EXPECT_FALSE(parse_keys_query_response(ctx(), body)) << body;
    }
}

TEST(parse_keys_changes, spec_example_and_bad_entries) {
    auto r = parse_keys_changes_response(
        ctx(), test::read_fixture("spec-examples/GET_keys_changes.response-200.json"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_FALSE(r->changed.empty());
    auto bad = parse_keys_changes_response(ctx(), R"({"changed": ["@a:x", 1, "x"], "left": []})");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->changed, std::vector<std::string>{"@a:x"});
    EXPECT_TRUE(bad->left.empty());
    EXPECT_FALSE(parse_keys_changes_response(ctx(), "[1]"));
    // A list that is not a list, or a key given twice, would lose changes: refused.
    auto wrong = parse_keys_changes_response(ctx(), R"({"changed": [], "left": 5})");
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message().find("/keys/changes left is not an array"), std::string::npos)
        << wrong.error().message();
    auto twice = parse_keys_changes_response(ctx(), R"({"changed": [], "changed": ["@a:x"]})");
    ASSERT_FALSE(twice);
    EXPECT_NE(twice.error().message().find("duplicate key \"changed\""), std::string::npos);
}

TEST(parse_keys_query, ambiguous_or_misshapen_maps_refuse_the_answer) {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"device_keys": [], "failures": {}})", "device_keys is not an object"},
        {R"({"device_keys": {"@a:x": []}})", "device_keys.@a:x is not an object"},
        {R"({"device_keys": {"@a:x": {}, "@a:x": {}}})", "duplicate key \"@a:x\" in device_keys"},
        {R"({"device_keys": {"@a:x": {"D": {}, "D": {}}}})",
         "duplicate key \"D\" in device_keys.@a:x"},
        {R"({"master_keys": {"@a:x": {}, "@a:x": {}}})", "duplicate key \"@a:x\" in master_keys"},
        {R"({"self_signing_keys": 1})", "self_signing_keys is not an object"},
        {R"({"failures": []})", "failures is not an object"},
        {R"({"failures": {}, "failures": {}})", "duplicate key \"failures\""},
    };
    for (const auto& [body, message] : cases) {
        auto r = parse_keys_query_response(ctx(), body);
        ASSERT_FALSE(r) << body;
        EXPECT_NE(r.error().message().find(message), std::string::npos)
            << body << " -> " << r.error().message();
    }
}

TEST(parse_keys_query, duplicate_keys_inside_a_signed_object_are_its_problem) {
    auto r = parse_keys_query_response(ctx(), R"({"device_keys": {"@a:x": {
        "D1": {"user_id": "@a:x", "device_id": "D1", "keys": {}, "keys": {"ed25519:D1": "E"}},
        "D2": {"user_id": "@a:x", "device_id": "D2", "keys": {"ed25519:D2": "E", "ed25519:D2": "F"}},
        "D3": {"user_id": "@a:x", "device_id": "D3",
               "signatures": {"@a:x": {"ed25519:D3": "s", "ed25519:D3": "t"}}}}},
      "master_keys": {"@a:x": {"user_id": "@a:x", "user_id": "@b:x"}}})");
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->devices.size(), 3u);
    EXPECT_EQ(r->devices[0].problem, std::optional<std::string>("duplicate key \"keys\""));
    EXPECT_EQ(r->devices[1].problem,
              std::optional<std::string>("duplicate key \"ed25519:D2\" in keys"));
    EXPECT_EQ(r->devices[2].problem,
              std::optional<std::string>("duplicate key \"ed25519:D3\" in signatures"));
    ASSERT_EQ(r->master_keys.size(), 1u);
    EXPECT_EQ(r->master_keys[0].problem, std::optional<std::string>("duplicate key \"user_id\""));
}

// ---- the two steps: parts located and digested, then parsed where needed ----

const std::string two_users = R"({"device_keys": {
      "@a:x": {"D1": {"user_id": "@a:x", "device_id": "D1", "keys": {"ed25519:D1": "E"},
                      "unsigned": {"device_display_name": "phone"}}},
      "@b:x": {"D2": {"user_id": "@b:x", "device_id": "D2"}}},
    "master_keys": {"@a:x": {"user_id": "@a:x", "usage": ["master"], "keys": {"ed25519:M": "M"}}},
    "self_signing_keys": {"@a:x": {"user_id": "@a:x", "usage": ["self_signing"]}},
    "failures": {}})";

std::vector<std::optional<storage::answer_digest>> digests_of(const std::string& body) {
    auto r = index_keys_query_answer(ctx(), body);
    EXPECT_TRUE(r) << r.error().message();
    std::vector<std::optional<storage::answer_digest>> out;
    if (r) {
        for (const auto& user : r->users)
            out.push_back(user.digest);
    }
    return out;
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
}

TEST(index_keys_query, each_users_part_is_located_and_digested_over_its_bytes) {
    auto r = index_keys_query_answer(ctx(), two_users);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->users.size(), 2u);
    const auto& a = r->users[0];
    EXPECT_EQ(a.user_id, "@a:x");
    EXPECT_EQ(r->bytes(a.device_keys).substr(0, 7), R"({"D1": )");
    EXPECT_EQ(r->bytes(a.device_keys).back(), '}');
    ASSERT_TRUE(a.master && a.master->is_object);
    EXPECT_EQ(r->bytes(a.master->bytes).substr(0, 18), R"({"user_id": "@a:x")");
    ASSERT_TRUE(a.self_signing);
    EXPECT_FALSE(a.user_signing);
    EXPECT_FALSE(r->users[1].master);
    ASSERT_TRUE(a.digest && r->users[1].digest);
    EXPECT_NE(*a.digest, *r->users[1].digest);

    // The same bytes, the same digests; one byte changed anywhere in a user's part (a device,
    // a display name outside the signature, a cross-signing key, even insignificant
    // whitespace) changes that user's digest alone.
    const auto same = digests_of(two_users);
    EXPECT_EQ(same, digests_of(two_users));
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {R"("E"})", R"("F"})"},
             {R"("phone")", R"("phone2")"},
             {R"("ed25519:M": "M")", R"("ed25519:M": "N")"},
             {R"(["self_signing"])", R"([ "self_signing"])"},
             {R"("D1": {)", R"("D1":{)"}}) {
        auto changed = digests_of(replaced(two_users, from, to));
        ASSERT_EQ(changed.size(), 2u);
        EXPECT_NE(changed[0], same[0]) << to;
        EXPECT_EQ(changed[1], same[1]) << to;
    }
    // A user's key moved to another map is another part.
    auto moved =
        digests_of(replaced(two_users, R"("self_signing_keys")", R"("user_signing_keys")"));
    EXPECT_NE(moved[0], same[0]);
    // Outside every part: no digest changes.
    EXPECT_EQ(digests_of(replaced(two_users, R"("failures": {})", R"("failures": {}, "x": [1])")),
              same);
}

TEST(index_keys_query, only_the_parts_asked_for_are_parsed) {
    auto r = index_keys_query_answer(ctx(), two_users);
    ASSERT_TRUE(r) << r.error().message();
    const user_section* b = &r->users[1];
    auto parts = parse_user_parts(ctx(), *r, std::span(&b, 1));
    ASSERT_TRUE(parts) << parts.error().message();
    EXPECT_EQ(parts->users, std::vector<std::string>{"@b:x"});
    EXPECT_EQ(parts->digests, std::vector<std::optional<storage::answer_digest>>{b->digest});
    ASSERT_EQ(parts->devices.size(), 1u);
    EXPECT_EQ(parts->devices[0].device_id, "D2");
    EXPECT_TRUE(parts->master_keys.empty());

    // The whole answer parsed in two steps is what it always was.
    auto whole = parse_keys_query_response(ctx(), two_users);
    ASSERT_TRUE(whole) << whole.error().message();
    ASSERT_EQ(whole->devices.size(), 2u);
    EXPECT_EQ(whole->devices[0].raw_json.substr(0, 19), R"({"user_id": "@a:x",)");
    EXPECT_EQ(whole->devices[0].display_name, std::optional<std::string>("phone"));
    ASSERT_EQ(whole->master_keys.size(), 1u);
    EXPECT_EQ(whole->master_keys[0].keys.size(), 1u);
    ASSERT_EQ(whole->self_signing_keys.size(), 1u);
}

TEST(index_keys_query, a_part_that_could_never_be_accepted_whole_has_no_digest) {
    // A cross-signing key that is not an object.
    auto r = parse_keys_query_response(
        ctx(),
        replaced(two_users,
                 R"("self_signing_keys": {"@a:x": {"user_id": "@a:x", "usage": ["self_signing"]}})",
                 R"("self_signing_keys": {"@a:x": 5})"));
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->digests.size(), 2u);
    EXPECT_EQ(r->digests[0], std::nullopt);
    EXPECT_TRUE(r->digests[1]);
    ASSERT_EQ(r->self_signing_keys.size(), 1u);
    EXPECT_EQ(r->self_signing_keys[0].problem,
              std::optional<std::string>("cross-signing key is not an object"));
    // A device dropped for its invalid device ID.
    auto dropped = parse_keys_query_response(
        ctx(), replaced(two_users, R"("D2": {)", R"("bad device": {}, "D2": {)"));
    ASSERT_TRUE(dropped) << dropped.error().message();
    EXPECT_EQ(dropped->dropped, 1u);
    EXPECT_TRUE(dropped->digests[0]);
    EXPECT_EQ(dropped->digests[1], std::nullopt);
}

TEST(index_keys_query, hostile_parts_refuse_the_answer_in_either_step) {
    // Found when the part is parsed: the first step skips over a user's devices.
    for (const auto& [body, message] : std::vector<std::pair<std::string, std::string>>{
             {replaced(two_users, R"("D2": {)", R"("D2": {}, "D2": {)"),
              "duplicate key \"D2\" in device_keys.@b:x"},
             {replaced(two_users, R"("device_id": "D2"})", R"("device_id": "D2", })"),
              "device_keys"},
             {replaced(two_users, R"("usage": ["master"])", R"("usage": ["master"],, )"),
              "master_keys"}}) {
        auto indexed = index_keys_query_answer(ctx(), body);
        if (!indexed) continue;  // refused at once: as good
        std::vector<const user_section*> all;
        for (const auto& user : indexed->users)
            all.push_back(&user);
        auto parts = parse_user_parts(ctx(), *indexed, all);
        ASSERT_FALSE(parts) << body;
        EXPECT_NE(parts.error().message().find(message), std::string::npos)
            << parts.error().message();
        EXPECT_FALSE(parse_keys_query_response(ctx(), body)) << body;
    }
    // A broken key of a user the answer does not cover is still refused.
    EXPECT_FALSE(parse_keys_query_response(
        ctx(), replaced(two_users, R"("master_keys": {)",
                        R"("master_keys": {"@c:x": {"user_id": "@c:x",, "usage": []}, )")));
    // Nesting is bounded as in the body as a whole: outside the parts by the first step, inside
    // a part when it is parsed, counted from where the part sits. D1's "unsigned" object is at
    // depth 5, so 123 more levels reach the limit of 128 and 124 go beyond it.
    auto nested = [](std::size_t levels) {
        return std::string(levels, '[') + std::string(levels, ']');
    };
    EXPECT_FALSE(index_keys_query_answer(
        ctx(), replaced(two_users, R"("failures": {})", R"("failures": {}, "x": )" + nested(200))));
    auto inside = [&](std::size_t levels) {
        return replaced(two_users, R"("phone")", R"("phone", "deep": )" + nested(levels));
    };
    EXPECT_TRUE(index_keys_query_answer(ctx(), inside(124)));
    EXPECT_TRUE(parse_keys_query_response(ctx(), inside(123)));
    auto deep = parse_keys_query_response(ctx(), inside(124));
    ASSERT_FALSE(deep);
    EXPECT_NE(deep.error().message().find("nesting deeper than the limit of 128"),
              std::string::npos)
        << deep.error().message();
}

}  // namespace
}  // namespace devlist::sync
