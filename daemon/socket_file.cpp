#include "daemon/socket_file.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

namespace devlist::daemon {
namespace {

error io_failure(const std::string& what, const std::filesystem::path& path, int err) {
    return error{errc::io_error,
                 what + " " + path.string() + ": " + std::generic_category().message(err)};
}

// A file descriptor closed on every path out, unless released.
class fd_guard {
  public:
    explicit fd_guard(int fd) : fd_(fd) {}
    ~fd_guard() {
        if (fd_ >= 0) ::close(fd_);
    }
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

  private:
    int fd_;
};

result<sockaddr_un> address_of(const std::filesystem::path& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string& text = path.native();
    if (text.size() >= sizeof address.sun_path) {
        return error{errc::io_error, "the socket path " + text + " is too long (" +
                                         std::to_string(text.size()) + " bytes; at most " +
                                         std::to_string(sizeof address.sun_path - 1) +
                                         " with the temporary name devlistd binds first)"};
    }
    std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
    return address;
}

// Whether a process listens on the socket file at path: connecting is the only reliable test.
// A full backlog (EAGAIN) also means somebody listens.
result<bool> someone_listens(const std::filesystem::path& path) {
    auto address = address_of(path);
    if (!address) return address.error();
    fd_guard probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (probe.get() < 0) return io_failure("cannot create a socket to probe", path, errno);
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&*address), sizeof *address) ==
        0) {
        return true;
    }
    int err = errno;
    if (err == EAGAIN || err == EINPROGRESS) return true;
    if (err == ECONNREFUSED) return false;
    return io_failure("cannot tell whether a process listens on", path, err);
}

}  // namespace

result<bound_socket> bind_socket_file(const socket_file_options& options) {
    const auto& path = options.path;
    // The temporary name is short and in the same folder, so that link() below is atomic.
    const auto temporary =
        path.parent_path() / (".devlistd-" + std::to_string(::getpid()) + ".sock");
    auto address = address_of(path);
    if (!address) return address.error();
    auto temp_address = address_of(temporary);
    if (!temp_address) return temp_address.error();

    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return error{errc::io_error, path.string() +
                                             " exists and is not a socket; devlistd will not "
                                             "replace it (set `socket` to another path)"};
        }
        auto listens = someone_listens(path);
        if (!listens) return listens.error();
        if (*listens) {
            return error{errc::io_error,
                         "another process (a second devlistd?) is listening on " + path.string()};
        }
        // Left by a process that died without removing it.
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            return io_failure("cannot remove the stale socket", path, errno);
        }
    } else if (errno != ENOENT) {
        return io_failure("cannot inspect", path, errno);
    }

    fd_guard fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return io_failure("cannot create the socket for", path, errno);
    ::unlink(temporary.c_str());  // left by an earlier process with the same PID
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*temp_address), sizeof *temp_address) !=
        0) {
        int err = errno;
        if (err == ENOENT) {
            return error{errc::io_error, "cannot create the socket " + path.string() +
                                             ": the folder " + path.parent_path().string() +
                                             " does not exist"};
        }
        return io_failure("cannot create the socket", path, err);
    }
    auto undo = [&] { ::unlink(temporary.c_str()); };
    if (::chmod(temporary.c_str(), static_cast<mode_t>(options.mode)) != 0) {
        int err = errno;
        undo();
        return io_failure("cannot set the mode of", path, err);
    }
    if (options.group && ::chown(temporary.c_str(), static_cast<uid_t>(-1), *options.group) != 0) {
        int err = errno;
        undo();
        return error{errc::io_error, "cannot give " + path.string() + " the group " +
                                         std::to_string(*options.group) + ": " +
                                         std::generic_category().message(err) +
                                         " (the daemon must be a member of socket_group)"};
    }
    if (::listen(fd.get(), options.backlog) != 0) {
        int err = errno;
        undo();
        return io_failure("cannot listen on", path, err);
    }
    // link() fails if the name exists, unlike rename(): a devlistd that bound the same path
    // since the check above keeps its socket.
    if (::link(temporary.c_str(), path.c_str()) != 0) {
        int err = errno;
        undo();
        if (err == EEXIST) {
            return error{errc::io_error,
                         "another process created " + path.string() + " while devlistd bound it"};
        }
        return io_failure("cannot create the socket", path, err);
    }
    undo();
    if (::lstat(path.c_str(), &st) != 0) {
        return io_failure("cannot inspect", path, errno);
    }
    bound_socket out;
    out.path = path;
    out.device = st.st_dev;
    out.inode = st.st_ino;
    out.fd = fd.release();
    return out;
}

void remove_socket_file(const bound_socket& socket) {
    struct stat st {};
    if (::lstat(socket.path.c_str(), &st) != 0) return;
    if (st.st_dev != socket.device || st.st_ino != socket.inode) return;
    ::unlink(socket.path.c_str());
}

result<gid_t> find_group(const std::string& name) {
    group entry{};
    group* found = nullptr;
    std::vector<char> buffer(4096);
    for (;;) {
        int err = ::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
        if (err == ERANGE && buffer.size() < (1u << 20)) {
            buffer.resize(buffer.size() * 2);
            continue;
        }
        if (err != 0) {
            return error{errc::io_error, "cannot look up the group '" + name +
                                             "': " + std::generic_category().message(err)};
        }
        break;
    }
    if (!found) {
        return error{errc::invalid_argument,
                     "configuration key 'socket_group': there is no group '" + name + "'"};
    }
    return entry.gr_gid;
}

result<void> check_listening_unix_socket(int fd) {
    int domain = 0;
    int type = 0;
    int listening = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) {
        return error{errc::invalid_argument,
                     "file descriptor " + std::to_string(fd) + " is not a socket"};
    }
    len = sizeof type;
    ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    len = sizeof listening;
    ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
    if (domain != AF_UNIX || type != SOCK_STREAM) {
        return error{errc::invalid_argument, "file descriptor " + std::to_string(fd) +
                                                 " is not a Unix stream socket (ListenStream= "
                                                 "with a path in the socket unit)"};
    }
    if (!listening) {
        return error{errc::invalid_argument,
                     "file descriptor " + std::to_string(fd) + " is not listening"};
    }
    return {};
}

}  // namespace devlist::daemon
