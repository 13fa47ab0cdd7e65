#include "sync/answer_digest.hpp"

#include <openssl/evp.h>

#include <cstdint>

namespace devlist::sync {

struct answer_digester::impl {
    EVP_MD* sha256 = nullptr;  // fetched once: an implicit fetch per digest costs a lookup
    EVP_MD_CTX* ctx = nullptr;
    ~impl() {
        EVP_MD_CTX_free(ctx);
        EVP_MD_free(sha256);
    }
};

answer_digester::answer_digester() : impl_(std::make_unique<impl>()) {
    impl_->sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    impl_->ctx = EVP_MD_CTX_new();
}

answer_digester::~answer_digester() = default;

std::optional<storage::answer_digest> answer_digester::digest(const user_part_bytes& part) {
    if (!impl_->sha256 || !impl_->ctx) return std::nullopt;
    EVP_MD_CTX* ctx = impl_->ctx;
    if (EVP_DigestInit_ex2(ctx, impl_->sha256, nullptr) != 1) return std::nullopt;
    bool ok = true;
    auto feed = [&](const void* data, std::size_t size) {
        ok = ok && EVP_DigestUpdate(ctx, data, size) == 1;
    };
    // Every field is framed (presence, length, bytes), so that no two different parts feed the
    // same bytes: moving bytes from one entry into the next changes the lengths.
    auto field = [&](std::optional<std::string_view> bytes) {
        std::uint8_t frame[9] = {};
        if (bytes) {
            frame[0] = 1;
            auto size = static_cast<std::uint64_t>(bytes->size());
            for (int i = 0; i < 8; ++i)
                frame[1 + i] = static_cast<std::uint8_t>(size >> (8 * i));
        }
        feed(frame, sizeof frame);
        if (bytes) feed(bytes->data(), bytes->size());
    };
    // A version, so that a later change of what is digested never matches an older digest.
    static constexpr std::string_view domain = "devlistd /keys/query user part v1";
    field(domain);
    field(part.user_id);
    field(part.device_keys);
    field(part.master);
    field(part.self_signing);
    field(part.user_signing);
    storage::answer_digest out{};
    unsigned int size = 0;
    if (!ok || EVP_DigestFinal_ex(ctx, out.data(), &size) != 1 || size != out.size()) {
        return std::nullopt;
    }
    return out;
}

}  // namespace devlist::sync
