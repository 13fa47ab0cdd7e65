#include "crypto/secure_bytes.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <type_traits>
#include <utility>

namespace devlist::crypto {
namespace {

static_assert(!std::is_copy_constructible_v<secure_bytes>);
static_assert(!std::is_copy_assignable_v<secure_bytes>);
static_assert(std::is_nothrow_move_constructible_v<secure_bytes>);
static_assert(std::is_nothrow_move_assignable_v<secure_bytes>);

TEST(secure_bytes, default_is_empty) {
    const secure_bytes b;
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.size(), 0u);
    EXPECT_TRUE(b.span().empty());
}

TEST(secure_bytes, sized_buffer_is_zeroed) {
    const secure_bytes b(32);
    EXPECT_EQ(b.size(), 32u);
    EXPECT_TRUE(std::all_of(b.span().begin(), b.span().end(), [](auto x) { return x == 0; }));
}

TEST(secure_bytes, copies_its_input) {
    std::array<std::uint8_t, 4> in = {1, 2, 3, 4};
    const secure_bytes b(in);
    in[0] = 9;
    EXPECT_EQ(b.data()[0], 1);
    EXPECT_TRUE(std::equal(b.span().begin(), b.span().end(),
                           std::array<std::uint8_t, 4>{1, 2, 3, 4}.begin()));
}

TEST(secure_bytes, move_leaves_the_source_empty) {
    const std::array<std::uint8_t, 3> in = {7, 8, 9};
    secure_bytes a(in);
    const std::uint8_t* bytes = a.data();
    secure_bytes b(std::move(a));
    // The moved-from state is the point of this test.
    // NOLINTBEGIN(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(a.data(), nullptr);
    EXPECT_EQ(b.data(), bytes);  // handed over, not copied
    secure_bytes c(1);
    c = std::move(b);
    EXPECT_TRUE(b.empty());
    // NOLINTEND(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
    EXPECT_EQ(c.size(), 3u);
    EXPECT_EQ(c.data()[2], 9);
}

TEST(secure_bytes, clone_is_an_independent_copy) {
    const std::array<std::uint8_t, 2> in = {5, 6};
    secure_bytes a(in);
    const secure_bytes b = a.clone();
    a.writable_span()[0] = 0;
    EXPECT_EQ(b.data()[0], 5);
    EXPECT_NE(a.data(), b.data());
}

}  // namespace
}  // namespace devlist::crypto
