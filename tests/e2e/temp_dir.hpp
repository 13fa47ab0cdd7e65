// A private folder for one end-to-end test: configuration, database, logs. Removed when the test
// ends, unless the test asked to keep it for a post-mortem (a failed test should).
//
// Thread-safety: like a std::filesystem::path; the folder itself is the caller's business.
#pragma once

#include <filesystem>
#include <string_view>

namespace devlist::test {

class temp_dir {
  public:
    // Creates "<prefix>-XXXXXX" (mkdtemp, mode 0700) under the system's temporary folder
    // ($TMPDIR or /tmp). Throws std::system_error if it cannot.
    explicit temp_dir(std::string_view prefix = "devlist-e2e");
    ~temp_dir();  // removes the folder and everything in it, unless keep() was called
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }
    std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

    // Writes (or replaces) a file in the folder with mode 0600: it may hold a secret (a
    // password file), which must not be readable by others even in a test.
    // Throws std::system_error if it cannot.
    std::filesystem::path write_file(std::string_view name, std::string_view content) const;

    // Leaves the folder on disk when this object goes away.
    void keep() noexcept { keep_ = true; }

  private:
    std::filesystem::path path_;
    bool keep_ = false;
};

}  // namespace devlist::test
