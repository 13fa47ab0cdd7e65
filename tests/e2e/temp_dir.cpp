#include "tests/e2e/temp_dir.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace devlist::test {

temp_dir::temp_dir(std::string_view prefix) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    path_ = pattern;
}

temp_dir::~temp_dir() {
    if (keep_) return;
    std::error_code ignored;  // a destructor has nobody to tell; the folder is in $TMPDIR anyway
    std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path temp_dir::write_file(std::string_view name, std::string_view content) const {
    std::filesystem::path file = path_ / name;
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + file.string());
    while (!content.empty()) {
        const ssize_t n = ::write(fd, content.data(), content.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int saved = errno;
            ::close(fd);
            throw std::system_error(saved, std::generic_category(), "write " + file.string());
        }
        content.remove_prefix(static_cast<std::size_t>(n));
    }
    ::close(fd);
    return file;
}

}  // namespace devlist::test
