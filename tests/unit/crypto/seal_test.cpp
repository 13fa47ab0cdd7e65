#include "crypto/seal.hpp"

#include "crypto/base64.hpp"
#include "spec_vectors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include <stdlib.h>
#include <sys/stat.h>

namespace devlist::crypto {
namespace {

using test::as_bytes;
using ::testing::HasSubstr;

std::vector<std::uint8_t> bytes_of(const secure_bytes& b) {
    return {b.span().begin(), b.span().end()};
}

const std::vector<std::uint8_t> secret = {
    0x01, 0x02, 0x03, 0xfe, 0xff, 0x00, 0x42, 0x17, 0x99, 0x98, 0x97, 0x96, 0x95, 0x94, 0x93, 0x92,
    0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11, 0x22};

TEST(seal, round_trip) {
    const auto key = sealing_key::generate();
    const auto blob = key.seal(secret, "otk:AAAAAQ");
    EXPECT_EQ(blob.size(), 1 + 24 + secret.size() + 16);
    EXPECT_EQ(blob[0], 1);
    const auto opened = key.open(blob, "otk:AAAAAQ");
    ASSERT_TRUE(opened) << opened.error().message();
    EXPECT_EQ(bytes_of(*opened), secret);
}

TEST(seal, empty_plaintext_round_trips) {
    const auto key = sealing_key::generate();
    const auto blob = key.seal({}, "");
    EXPECT_EQ(blob.size(), 41u);
    const auto opened = key.open(blob, "");
    ASSERT_TRUE(opened);
    EXPECT_TRUE(opened->empty());
}

TEST(seal, nonces_are_fresh) {
    const auto key = sealing_key::generate();
    EXPECT_NE(key.seal(secret, "c"), key.seal(secret, "c"));
}

TEST(seal, wrong_key_does_not_open) {
    const auto blob = sealing_key::generate().seal(secret, "identity:ed25519");
    const auto r = sealing_key::generate().open(blob, "identity:ed25519");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::seal_open_failed);
}

TEST(seal, wrong_context_does_not_open) {
    const auto key = sealing_key::generate();
    const auto blob = key.seal(secret, "otk:AAAAAQ");
    for (const char* context : {"otk:AAAAAg", "otk:AAAAAQ ", "", "OTK:AAAAAQ", "otk:AAAAA"}) {
        const auto r = key.open(blob, context);
        ASSERT_FALSE(r) << context;
        EXPECT_EQ(r.error(), errc::seal_open_failed);
    }
}

TEST(seal, every_flipped_bit_is_detected) {
    const auto key = sealing_key::generate();
    const auto blob = key.seal(secret, "fallback:AAAAAw");
    for (std::size_t i = 0; i < blob.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            auto tampered = blob;
            tampered[i] ^= static_cast<std::uint8_t>(1u << bit);
            const auto r = key.open(tampered, "fallback:AAAAAw");
            ASSERT_FALSE(r) << "byte " << i << " bit " << bit;
            EXPECT_EQ(r.error(), errc::seal_open_failed);
        }
    }
}

TEST(seal, truncation_and_extension_are_detected) {
    const auto key = sealing_key::generate();
    const auto blob = key.seal(secret, "c");
    for (std::size_t n = 0; n < blob.size(); ++n) {
        const auto r = key.open(std::span(blob).first(n), "c");
        ASSERT_FALSE(r) << n;
        EXPECT_EQ(r.error(), errc::seal_open_failed);
    }
    EXPECT_THAT(key.open(std::span(blob).first(40), "c").error().detail, HasSubstr("truncated"));
    auto longer = blob;
    longer.push_back(0);
    EXPECT_EQ(key.open(longer, "c").error(), errc::seal_open_failed);
}

TEST(seal, unknown_version_is_named) {
    const auto key = sealing_key::generate();
    auto blob = key.seal(secret, "c");
    blob[0] = 2;
    const auto r = key.open(blob, "c");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::seal_open_failed);
    EXPECT_THAT(r.error().detail, HasSubstr("unknown format version 2"));
}

TEST(seal, from_bytes_requires_32_bytes) {
    EXPECT_TRUE(sealing_key::from_bytes(secret));
    const auto r = sealing_key::from_bytes(std::span(secret).first(31));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::seal_key_invalid);
    EXPECT_EQ(sealing_key::from_bytes({}).error(), errc::seal_key_invalid);
}

// ---- key files ----

class seal_key_file : public ::testing::Test {
  protected:
    seal_key_file() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "devlist-seal-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir_ = pattern;
    }
    ~seal_key_file() override { std::filesystem::remove_all(dir_); }

    std::filesystem::path write(std::string_view name, std::string_view contents) const {
        auto path = dir_ / name;
        std::ofstream(path, std::ios::binary) << contents;
        return path;
    }

    // Whether the key loaded from path is the key `secret` (it opens what that key sealed).
    static void expect_secret_key(const result<sealing_key>& loaded) {
        ASSERT_TRUE(loaded) << loaded.error().message();
        const auto blob = sealing_key::from_bytes(secret).value().seal(as_bytes("x"), "c");
        EXPECT_TRUE(loaded->open(blob, "c"));
    }

    static void expect_invalid(const result<sealing_key>& loaded, const std::filesystem::path& path,
                               std::string_view detail) {
        ASSERT_FALSE(loaded);
        EXPECT_EQ(loaded.error(), errc::seal_key_invalid);
        EXPECT_THAT(loaded.error().detail, HasSubstr(path.string()));
        EXPECT_THAT(loaded.error().detail, HasSubstr(detail));
    }

    std::filesystem::path dir_;
};

TEST_F(seal_key_file, accepts_raw_bytes) {
    expect_secret_key(sealing_key::load_file(write(
        "raw", std::string_view(reinterpret_cast<const char*>(secret.data()), secret.size()))));
}

TEST_F(seal_key_file, accepts_base64_with_or_without_padding_and_newline) {
    const std::string unpadded = base64_encode(secret);
    ASSERT_EQ(unpadded.size(), 43u);
    expect_secret_key(sealing_key::load_file(write("b64", unpadded)));
    expect_secret_key(sealing_key::load_file(write("b64nl", unpadded + "\n")));
    expect_secret_key(sealing_key::load_file(write("b64pad", unpadded + "=")));
    expect_secret_key(sealing_key::load_file(write("b64padnl", unpadded + "=\n")));
}

TEST_F(seal_key_file, refuses_anything_else) {
    const std::string b64 = base64_encode(secret);
    const std::string expected = "expected exactly 32 raw bytes or their base64";
    for (const auto& [name, contents] : std::vector<std::pair<std::string, std::string>>{
             {"short", std::string(31, 'k')},
             {"long", std::string(33, 'k')},
             {"empty", ""},
             {"garbage", "this is not a key at all, sorry!!!!!!!!!!!!"},
             {"two-newlines", b64 + "\n\n"},
             {"crlf", b64 + "\r\n"},
             {"leading-space", " " + b64},
             {"b64-of-31", base64_encode(std::span(secret).first(31))},
             {"b64-of-33", base64_encode(std::vector<std::uint8_t>(33, 1))},
             {"huge", std::string(100000, 'A')}}) {
        const auto path = write(name, contents);
        expect_invalid(sealing_key::load_file(path), path, expected);
    }
    const auto path = write("sized", std::string(31, 'k'));
    EXPECT_THAT(sealing_key::load_file(path).error().detail, HasSubstr("found 31 bytes"));
}

TEST_F(seal_key_file, missing_or_unreadable_file) {
    const auto missing = dir_ / "missing";
    expect_invalid(sealing_key::load_file(missing), missing, "No such file or directory");
    expect_invalid(sealing_key::load_file(dir_), dir_, "Is a directory");
}

TEST_F(seal_key_file, write_new_file_round_trips_with_mode_0600) {
    const auto key = sealing_key::from_bytes(secret).value();
    const auto path = dir_ / "sealing.key";
    const auto r = key.write_new_file(path);
    ASSERT_TRUE(r) << r.error().message();
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    std::ifstream in(path, std::ios::binary);
    const std::string contents((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(contents, base64_encode(secret) + "\n");
    expect_secret_key(sealing_key::load_file(path));
}

TEST_F(seal_key_file, write_new_file_never_overwrites) {
    const auto path = write("existing", "do not touch");
    const auto r = sealing_key::generate().write_new_file(path);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::io_error);
    EXPECT_THAT(r.error().detail, HasSubstr("already exists"));
    std::ifstream in(path, std::ios::binary);
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), "do not touch");

    const auto written = dir_ / "once";
    ASSERT_TRUE(sealing_key::generate().write_new_file(written));
    EXPECT_EQ(sealing_key::generate().write_new_file(written).error(), errc::io_error);
}

TEST_F(seal_key_file, write_new_file_into_a_missing_directory_fails) {
    const auto path = dir_ / "no-such-dir" / "key";
    const auto r = sealing_key::generate().write_new_file(path);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::io_error);
    EXPECT_THAT(r.error().detail, HasSubstr(path.string()));
}

}  // namespace
}  // namespace devlist::crypto
