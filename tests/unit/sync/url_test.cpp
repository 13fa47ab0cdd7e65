#include "sync/url.hpp"

#include <gtest/gtest.h>

#include <string>

namespace devlist::sync {
namespace {

url parsed(std::string_view text) {
    auto u = parse_url(text);
    EXPECT_TRUE(u.has_value()) << text << ": " << (u ? "" : u.error().message());
    return u ? *u : url{};
}

// The error detail for a URL that must be refused.
std::string refusal(std::string_view text) {
    auto u = parse_url(text);
    EXPECT_FALSE(u.has_value()) << text << " was accepted";
    if (u) return {};
    EXPECT_EQ(u.error(), errc::invalid_argument);
    return u.error().detail;
}

TEST(ParseUrl, HttpsWithDefaultPort) {
    EXPECT_EQ(parsed("https://matrix.example.org"), (url{"https", "matrix.example.org", 443, ""}));
}

TEST(ParseUrl, HttpWithDefaultPort) {
    EXPECT_EQ(parsed("http://localhost"), (url{"http", "localhost", 80, ""}));
}

TEST(ParseUrl, ExplicitPortAndBasePath) {
    EXPECT_EQ(parsed("http://127.0.0.1:8008/prefix/matrix"),
              (url{"http", "127.0.0.1", 8008, "/prefix/matrix"}));
}

TEST(ParseUrl, TrailingSlashesAreDropped) {
    EXPECT_EQ(parsed("https://example.org/").base_path, "");
    EXPECT_EQ(parsed("https://example.org/prefix//").base_path, "/prefix");
}

TEST(ParseUrl, SchemeAndHostAreLowerCased) {
    EXPECT_EQ(parsed("HTTPS://Matrix.Example.ORG:8448"),
              (url{"https", "matrix.example.org", 8448, ""}));
}

TEST(ParseUrl, Ipv6LiteralInBrackets) {
    EXPECT_EQ(parsed("https://[::1]:8448/x"), (url{"https", "::1", 8448, "/x"}));
    EXPECT_EQ(parsed("http://[2001:DB8::1]"), (url{"http", "2001:db8::1", 80, ""}));
}

TEST(ParseUrl, PercentEscapesInPathAreKept) {
    EXPECT_EQ(parsed("https://example.org/a%2Fb").base_path, "/a%2Fb");
}

TEST(ParseUrl, RefusesOtherSchemes) {
    EXPECT_NE(refusal("ftp://example.org").find("unsupported URL scheme 'ftp'"), std::string::npos);
    EXPECT_NE(refusal("example.org:8448").find("no scheme"), std::string::npos);
}

TEST(ParseUrl, RefusesMissingHost) {
    EXPECT_EQ(refusal("https://"), "URL has no host");
    EXPECT_EQ(refusal("https:///path"), "URL has no host");
    EXPECT_EQ(refusal("https://:8448"), "URL has no host");
}

TEST(ParseUrl, RefusesBadPorts) {
    for (const auto* text : {"https://example.org:", "https://example.org:0",
                             "https://example.org:65536", "https://example.org:84a8",
                             "https://example.org:+80", "https://example.org:99999999999"}) {
        EXPECT_NE(refusal(text).find("is not a number from 1 to 65535"), std::string::npos) << text;
    }
}

TEST(ParseUrl, AcceptsTheLargestPort) {
    EXPECT_EQ(parsed("http://a:65535").port, 65535);
}

TEST(ParseUrl, RefusesUserInfo) {
    EXPECT_NE(refusal("https://alice:secret@example.org").find("user info"), std::string::npos);
    EXPECT_NE(refusal("https://alice@example.org").find("user info"), std::string::npos);
}

TEST(ParseUrl, RefusesQueryAndFragment) {
    EXPECT_NE(refusal("https://example.org/?a=b").find("query"), std::string::npos);
    EXPECT_NE(refusal("https://example.org?a=b").find("query"), std::string::npos);
    EXPECT_NE(refusal("https://example.org/#top").find("fragment"), std::string::npos);
}

TEST(ParseUrl, RefusesMalformedIpv6) {
    EXPECT_NE(refusal("https://[::1").find("lacks ']'"), std::string::npos);
    EXPECT_NE(refusal("https://[nonsense]:80").find("not an IPv6 address"), std::string::npos);
    EXPECT_NE(refusal("https://::1:8448").find("without brackets"), std::string::npos);
    EXPECT_NE(refusal("https://[::1]x").find("unexpected 'x' after"), std::string::npos);
    EXPECT_NE(refusal("https://[::1]:").find("is not a number"), std::string::npos);
}

TEST(ParseUrl, RefusesBadCharacters) {
    EXPECT_NE(refusal("https://exa mple.org").find("' ' in URL host"), std::string::npos);
    EXPECT_NE(refusal("https://example.org/a b").find("' ' in URL path"), std::string::npos);
    EXPECT_NE(refusal("https://example.org/%zz").find("%-escape"), std::string::npos);
    EXPECT_NE(refusal("https://example.org/%4").find("%-escape"), std::string::npos);
    EXPECT_NE(refusal("https://example.org/\n").find("byte 0x0A"), std::string::npos);
}

TEST(HostHeader, OmitsTheDefaultPortOnly) {
    EXPECT_EQ(host_header(url{"https", "example.org", 443, ""}), "example.org");
    EXPECT_EQ(host_header(url{"http", "example.org", 443, ""}), "example.org:443");
    EXPECT_EQ(host_header(url{"https", "::1", 8448, ""}), "[::1]:8448");
    EXPECT_EQ(host_and_port(url{"https", "::1", 443, ""}), "[::1]:443");
    EXPECT_EQ(host_and_port(url{"http", "example.org", 80, ""}), "example.org:80");
}

TEST(PercentEncode, KeepsUnreservedCharacters) {
    const std::string unreserved =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    EXPECT_EQ(percent_encode_path_segment(unreserved), unreserved);
    EXPECT_EQ(percent_encode_query_value(unreserved), unreserved);
}

TEST(PercentEncode, MatrixUserIdInAPathSegment) {
    EXPECT_EQ(percent_encode_path_segment("@alice:example.org"), "%40alice%3Aexample.org");
}

TEST(PercentEncode, EncodesSeparatorsWithUpperCaseHex) {
    EXPECT_EQ(percent_encode_path_segment("a/b?c#d%e f"), "a%2Fb%3Fc%23d%25e%20f");
    EXPECT_EQ(percent_encode_query_value("a=b&c+d"), "a%3Db%26c%2Bd");
    EXPECT_EQ(percent_encode_query_value("{\"room\":{}}"), "%7B%22room%22%3A%7B%7D%7D");
}

TEST(PercentEncode, EncodesEveryByteOfUtf8AndControls) {
    EXPECT_EQ(percent_encode_path_segment("\xC3\xA9"), "%C3%A9");
    EXPECT_EQ(percent_encode_query_value(std::string("\0\x7f\xff", 3)), "%00%7F%FF");
    EXPECT_EQ(percent_encode_query_value(""), "");
}

}  // namespace
}  // namespace devlist::sync
