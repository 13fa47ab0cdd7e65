#include "daemon/request_target.hpp"

#include <gtest/gtest.h>

namespace devlist::daemon {
namespace {

TEST(request_target, splits_the_path_and_decodes_each_segment_on_its_own) {
    auto t = parse_request_target("/v1/users/%40alice%3Aexample.org/devices");
    ASSERT_TRUE(t) << t.error().message();
    EXPECT_EQ(t->segments,
              (std::vector<std::string>{"v1", "users", "@alice:example.org", "devices"}));
    EXPECT_TRUE(t->query.empty());

    // An encoded '/' inside a base64 key stays in its segment.
    auto key = parse_request_target("/v1/devices/by-curve25519/ab%2Fcd+ef");
    ASSERT_TRUE(key);
    ASSERT_EQ(key->segments.size(), 4u);
    EXPECT_EQ(key->segments[3], "ab/cd+ef");  // '+' is a plus sign, not a space
}

TEST(request_target, keeps_empty_segments_so_a_trailing_slash_is_another_path) {
    auto root = parse_request_target("/");
    ASSERT_TRUE(root);
    EXPECT_EQ(root->segments, std::vector<std::string>{""});
    auto trailing = parse_request_target("/v1/status/");
    ASSERT_TRUE(trailing);
    EXPECT_EQ(trailing->segments, (std::vector<std::string>{"v1", "status", ""}));
}

TEST(request_target, reads_query_parameters_decoded_and_in_order) {
    auto t = parse_request_target("/v1/events?after=12&consumer=my%20bot&flag&&x=a%3Db");
    ASSERT_TRUE(t) << t.error().message();
    ASSERT_EQ(t->query.size(), 4u);
    EXPECT_EQ(*t->param("after"), "12");
    EXPECT_EQ(*t->param("consumer"), "my bot");
    EXPECT_EQ(*t->param("flag"), "");
    EXPECT_EQ(*t->param("x"), "a=b");
    EXPECT_EQ(t->param("missing"), nullptr);
    EXPECT_EQ(t->segments, (std::vector<std::string>{"v1", "events"}));
}

TEST(request_target, refuses_what_is_ambiguous_or_malformed) {
    for (const char* bad : {"", "v1/status", "*", "http://host/v1/status", "/v1/%4", "/v1/%zz",
                            "/v1/status?a=%", "/v1/status?a=1&a=2", "/v1/status#frag"}) {
        auto t = parse_request_target(bad);
        EXPECT_FALSE(t) << bad;
        if (!t) {
            EXPECT_EQ(t.error(), errc::invalid_argument) << bad;
        }
    }
}

TEST(request_target, percent_decode_takes_both_cases_and_any_byte) {
    EXPECT_EQ(percent_decode("%41%6a%00x"), std::string("Aj\0x", 4));
    EXPECT_EQ(percent_decode("100%"), std::nullopt);
    EXPECT_EQ(percent_decode("%%41"), std::nullopt);
    EXPECT_EQ(percent_decode(""), "");
}

}  // namespace
}  // namespace devlist::daemon
