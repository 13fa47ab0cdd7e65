#include "crypto/seal.hpp"

#include "crypto/base64.hpp"
#include "crypto/sodium_init.hpp"

#include <sodium.h>

#include <cerrno>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devlist::crypto {
namespace {

constexpr std::size_t nonce_size = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t tag_size = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr std::size_t header_size = 1 + nonce_size;
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == sealing_key::key_size);

// Binds a blob to its format version and to the caller's context (which row it belongs to).
std::string associated_data(std::uint8_t version, std::string_view context) {
    std::string ad;
    ad.reserve(1 + context.size());
    ad.push_back(static_cast<char>(version));
    ad.append(context);
    return ad;
}

std::string errno_message(int e) {
    return std::error_code(e, std::generic_category()).message();
}

// Closes a file descriptor on every path out of a function.
class file_descriptor {
  public:
    explicit file_descriptor(int fd) noexcept : fd_(fd) {}
    file_descriptor(const file_descriptor&) = delete;
    file_descriptor& operator=(const file_descriptor&) = delete;
    ~file_descriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const noexcept { return fd_; }
    // Closes now, so that a failing close (a lost write) can be reported; 0 or an errno.
    int close() noexcept {
        const int r = ::close(std::exchange(fd_, -1));
        return r == 0 ? 0 : errno;
    }

  private:
    int fd_;
};

// Reads at most buffer.size() bytes of fd; the count, or an errno as a negative number.
long read_up_to(int fd, std::span<std::uint8_t> buffer) {
    std::size_t n = 0;
    while (n < buffer.size()) {
        const ssize_t r = ::read(fd, buffer.data() + n, buffer.size() - n);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        n += static_cast<std::size_t>(r);
    }
    return static_cast<long>(n);
}

// 0 or an errno.
int write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t r = ::write(fd, data.data(), data.size());
        if (r < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        data.remove_prefix(static_cast<std::size_t>(r));
    }
    return 0;
}

// 0 or an errno.
int sync_directory(const std::filesystem::path& dir) {
    const file_descriptor fd(
        ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) return errno;
    return ::fsync(fd.get()) == 0 ? 0 : errno;
}

}  // namespace

result<sealing_key> sealing_key::load_file(const std::filesystem::path& path) {
    const auto invalid = [&](const std::string& why) {
        return error{errc::seal_key_invalid, "sealing key file " + path.string() + ": " + why};
    };
    const file_descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return invalid(errno_message(errno));
    // Room for the longest valid form ("...=\n", 45 bytes) and enough more to tell that a
    // file is too long without reading all of it.
    secure_bytes contents(128);
    const long n = read_up_to(fd.get(), contents.writable_span());
    if (n < 0) return invalid(errno_message(static_cast<int>(-n)));
    const auto size = static_cast<std::size_t>(n);

    if (size == key_size) return sealing_key(secure_bytes(contents.span().first(key_size)));
    std::string_view text(reinterpret_cast<const char*>(contents.data()), size);
    if (text.ends_with('\n')) text.remove_suffix(1);
    secure_bytes key(key_size);
    if (!base64_decode_into(text, key.writable_span())) {
        const std::string found = size == contents.size()
                                      ? "more than " + std::to_string(size - 1) + " bytes"
                                      : std::to_string(size) + " bytes that are neither";
        return invalid(
            "expected exactly 32 raw bytes or their base64 (43 or 44 characters, "
            "optionally followed by a newline); found " +
            found);
    }
    return sealing_key(std::move(key));
}

result<sealing_key> sealing_key::from_bytes(std::span<const std::uint8_t> key) {
    if (key.size() != key_size) {
        return error{errc::seal_key_invalid,
                     "a sealing key is 32 bytes, not " + std::to_string(key.size())};
    }
    return sealing_key(secure_bytes(key));
}

sealing_key sealing_key::generate() {
    return sealing_key(secure_bytes::random(key_size));
}

result<void> sealing_key::write_new_file(const std::filesystem::path& path) const {
    const auto failed = [&](const std::string& why) {
        return error{errc::io_error, "sealing key file " + path.string() + ": " + why};
    };
    file_descriptor fd(
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.get() < 0) {
        if (errno == EEXIST) return failed("already exists; refusing to overwrite a key");
        return failed(errno_message(errno));
    }
    std::string text = base64_encode(key_.span());
    text.push_back('\n');
    // The umask may only have narrowed 0600; set it exactly so the mode does not depend on it.
    int e = ::fchmod(fd.get(), 0600) == 0 ? 0 : errno;
    if (e == 0) e = write_all(fd.get(), text);
    if (e == 0 && ::fsync(fd.get()) != 0) e = errno;
    if (e == 0) e = fd.close();
    if (e == 0) e = sync_directory(path.parent_path());
    sodium_memzero(text.data(), text.size());
    if (e != 0) {
        ::unlink(path.c_str());
        return failed(errno_message(e));
    }
    return {};
}

std::vector<std::uint8_t> sealing_key::seal(std::span<const std::uint8_t> plaintext,
                                            std::string_view context) const {
    ensure_sodium_initialized();
    std::vector<std::uint8_t> blob(header_size + plaintext.size() + tag_size);
    blob[0] = blob_version;
    randombytes_buf(blob.data() + 1, nonce_size);
    const std::string ad = associated_data(blob_version, context);
    unsigned long long written = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(blob.data() + header_size, &written,
                                               plaintext.data(), plaintext.size(),
                                               reinterpret_cast<const unsigned char*>(ad.data()),
                                               ad.size(), nullptr, blob.data() + 1, key_.data());
    return blob;
}

result<secure_bytes> sealing_key::open(std::span<const std::uint8_t> sealed,
                                       std::string_view context) const {
    if (sealed.size() < header_size + tag_size) {
        return error{errc::seal_open_failed, "sealed blob of " + std::to_string(sealed.size()) +
                                                 " bytes is truncated (the minimum is " +
                                                 std::to_string(header_size + tag_size) + ")"};
    }
    if (sealed[0] != blob_version) {
        return error{errc::seal_open_failed,
                     "sealed blob has unknown format version " + std::to_string(sealed[0]) +
                         " (this program reads version " + std::to_string(blob_version) + ")"};
    }
    ensure_sodium_initialized();
    const std::string ad = associated_data(blob_version, context);
    secure_bytes plaintext(sealed.size() - header_size - tag_size);
    unsigned long long written = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plaintext.data(), &written, nullptr, sealed.data() + header_size,
            sealed.size() - header_size, reinterpret_cast<const unsigned char*>(ad.data()),
            ad.size(), sealed.data() + 1, key_.data()) != 0) {
        return error{errc::seal_open_failed,
                     "sealed blob does not open: wrong sealing key, wrong context \"" +
                         std::string(context) + "\", or the data was changed"};
    }
    return plaintext;
}

}  // namespace devlist::crypto
