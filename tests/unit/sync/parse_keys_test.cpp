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

}  // namespace
}  // namespace devlist::sync
