#include "storage/store_lock.hpp"

#include "storage/store.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>

namespace devlist::storage {
namespace {

using testing::fork_child;
using testing::pipe_pair;
using testing::temp_dir;
using testing::wait_child;

std::string in_use_message(const std::filesystem::path& path, pid_t pid) {
    return "database " + path.string() + " is in use by another devlistd (pid " +
           std::to_string(pid) + "); stop it first or use a different database";
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

class StoreLockTest : public ::testing::Test {
  protected:
    temp_dir dir_;
    std::filesystem::path path_ = dir_.file("devlist.db");
};

TEST_F(StoreLockTest, SecondOpenInTheSameProcessIsRefused) {
    auto first = store::open(path_);
    ASSERT_TRUE(first) << first.error().message();
    auto second = store::open(path_);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error(), errc::storage_locked);
    EXPECT_EQ(second.error().detail, in_use_message(path_, ::getpid()));
}

TEST_F(StoreLockTest, OpeningSucceedsAfterTheHolderCloses) {
    {
        auto first = store::open(path_);
        ASSERT_TRUE(first) << first.error().message();
    }
    auto again = store::open(path_);
    EXPECT_TRUE(again) << again.error().message();
}

TEST_F(StoreLockTest, MovedStoreKeepsTheLock) {
    auto first = store::open(path_);
    ASSERT_TRUE(first);
    store moved = std::move(*first);
    auto second = store::open(path_);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error(), errc::storage_locked);
}

TEST_F(StoreLockTest, LockFileIsPrivateAndNamesTheHolder) {
    auto held = store_lock::acquire(path_);
    ASSERT_TRUE(held) << held.error().message();
    auto lock_file = lock_path_for(path_);
    EXPECT_EQ(lock_file, dir_.file("devlist.db.lock"));
    struct stat info {};
    ASSERT_EQ(::stat(lock_file.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
    EXPECT_EQ(read_file(lock_file), std::to_string(::getpid()) + "\n");
}

TEST_F(StoreLockTest, DatabaseFileIsCreatedPrivate) {
    auto opened = store::open(path_);
    ASSERT_TRUE(opened);
    struct stat info {};
    ASSERT_EQ(::stat(path_.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST_F(StoreLockTest, MissingDirectoryIsAnIoError) {
    auto held = store_lock::acquire(dir_.file("missing") / "devlist.db");
    ASSERT_FALSE(held);
    EXPECT_EQ(held.error(), errc::io_error);
    EXPECT_NE(held.error().detail.find("missing/devlist.db.lock"), std::string::npos);
}

TEST_F(StoreLockTest, ChildProcessIsRefusedWhileTheParentHoldsTheStore) {
    auto held = store::open(path_);
    ASSERT_TRUE(held);
    const pid_t parent = ::getpid();
    pid_t child = fork_child([&] {
        auto refused = store::open(path_);
        if (refused) return 1;
        if (!(refused.error() == errc::storage_locked)) return 2;
        if (refused.error().detail != in_use_message(path_, parent)) return 3;
        return 0;
    });
    EXPECT_EQ(wait_child(child), 0);
}

TEST_F(StoreLockTest, ParentIsRefusedWhileAChildHoldsTheStoreAndAdmittedAfterSigkill) {
    pipe_pair ready;
    pipe_pair hold;  // never written: the child blocks on it until killed
    pid_t child = fork_child([&] {
        ready.close_read();
        hold.close_write();
        auto opened = store::open(path_);
        if (!opened) return 1;
        ready.send_byte();
        hold.wait_byte();
        return 2;
    });
    ready.close_write();
    hold.close_read();
    ASSERT_TRUE(ready.wait_byte()) << "the child failed to open the store";

    auto refused = store::open(path_);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), errc::storage_locked);
    EXPECT_EQ(refused.error().detail, in_use_message(path_, child));

    ASSERT_EQ(::kill(child, SIGKILL), 0);
    EXPECT_EQ(wait_child(child), -SIGKILL);
    auto admitted = store::open(path_);
    EXPECT_TRUE(admitted) << admitted.error().message();
}

}  // namespace
}  // namespace devlist::storage
