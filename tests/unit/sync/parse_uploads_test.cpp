#include "sync/parse_uploads.hpp"

#include <gtest/gtest.h>

namespace devlist::sync {
namespace {

TEST(parse_uploads_test, keys_upload_counts) {
    auto c = parse_keys_upload_response(R"({"one_time_key_counts":{"signed_curve25519":50}})");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->at("signed_curve25519"), 50);
    EXPECT_TRUE(parse_keys_upload_response(R"({"one_time_key_counts":{}})")->empty());
    EXPECT_FALSE(parse_keys_upload_response("{}"));
    EXPECT_FALSE(parse_keys_upload_response(R"({"one_time_key_counts":{"a":-1}})"));
    EXPECT_FALSE(parse_keys_upload_response(R"({"one_time_key_counts":{"a":1.5}})"));
    EXPECT_FALSE(parse_keys_upload_response(R"({"one_time_key_counts":{"a":"1"}})"));
    EXPECT_FALSE(parse_keys_upload_response(R"({"one_time_key_counts":{"a":1,"a":2}})"));
    EXPECT_FALSE(parse_keys_upload_response(R"({"one_time_key_counts":)"));
}

TEST(parse_uploads_test, uia_challenge) {
    auto c = parse_uia_challenge(
        R"({"flows":[{"stages":["m.login.password"]},{"stages":["m.login.sso","m.login.dummy"]}],)"
        R"("session":"xyz","completed":["m.login.sso"],"errcode":"M_FORBIDDEN","error":"no"})");
    ASSERT_TRUE(c);
    ASSERT_EQ(c->flows.size(), 2u);
    EXPECT_EQ(c->flows[1][1], "m.login.dummy");
    EXPECT_EQ(c->session, "xyz");
    EXPECT_EQ(c->completed, std::vector<std::string>{"m.login.sso"});
    EXPECT_EQ(c->errcode, "M_FORBIDDEN");
    // A plain 401 error is not a challenge.
    EXPECT_FALSE(parse_uia_challenge(R"({"errcode":"M_UNKNOWN_TOKEN","error":"x"})"));
    EXPECT_FALSE(parse_uia_challenge(R"({"flows":[{"stages":[1]}]})"));
    EXPECT_FALSE(parse_uia_challenge("not json"));
}

TEST(parse_uploads_test, signatures_upload_failures) {
    EXPECT_TRUE(parse_signatures_upload_response(R"({"failures":{}})")->empty());
    EXPECT_TRUE(parse_signatures_upload_response("{}")->empty());
    auto f = parse_signatures_upload_response(
        R"({"failures":{"@a:b":{"DEV":{"errcode":"M_INVALID_SIGNATURE","error":"bad"}}}})");
    ASSERT_TRUE(f);
    ASSERT_EQ(f->size(), 1u);
    EXPECT_NE((*f)[0].find("@a:b/DEV"), std::string::npos);
    EXPECT_NE((*f)[0].find("M_INVALID_SIGNATURE"), std::string::npos);
    EXPECT_FALSE(parse_signatures_upload_response(R"({"failures":[]})"));
}

TEST(parse_uploads_test, one_time_key_conflict_message) {
    EXPECT_EQ(one_time_key_conflict_id("One time key signed_curve25519:AAAAAg already exists. "
                                       "Old key: {...}; new key: {...}"),
              "AAAAAg");
    EXPECT_FALSE(one_time_key_conflict_id("Invalid signature"));
    EXPECT_FALSE(one_time_key_conflict_id("One time key signed_curve25519: already exists"));
    EXPECT_FALSE(one_time_key_conflict_id("One time key nocolon already exists"));
}

}  // namespace
}  // namespace devlist::sync
