// The project's error type: an error code plus a human-readable detail.
//
// Expected failures (bad input, a busy database, a network error) are values of
// devlist::result<T>; broken invariants are asserts. The detail names what failed ("key
// 'signatures.@a:b' is not an object") so that the message a person finally reads is clear.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <boost/system/system_error.hpp>

#include <string>
#include <type_traits>
#include <utility>

namespace devlist {

enum class errc {
    // Input that is not what it must be (JSON, base64, keys, configuration).
    invalid_argument = 1,
    json_syntax,         // not JSON at all, or not UTF-8
    json_limit,          // too deep or too large
    json_number,         // a float, or an integer outside +-(2^53-1)
    json_duplicate_key,  // the same key twice in one object
    json_type,           // a value of the wrong type where a specific one is needed
    base64_invalid,
    key_invalid,  // wrong length or not decodable
    // Signatures.
    signature_missing,  // no signature by the expected entity/key id
    signature_invalid,  // malformed or does not verify
    // Private keys at rest.
    seal_key_invalid,  // the sealing key file is missing, unreadable or malformed
    seal_open_failed,  // wrong sealing key, or the blob was tampered with
    // Storage.
    storage_error,   // SQLite reported an error
    storage_busy,    // the database stayed locked past the busy timeout
    storage_locked,  // another process holds the store (one writer per store)
    storage_schema_too_new,
    storage_corrupt,  // a value in the store that the code never writes
    io_error,         // a file could not be read or written
};

// Boost's error_category has a protected non-virtual destructor by design; the warning does
// not apply to a final class that is never deleted through a base pointer.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class error_category_impl final : public boost::system::error_category {
  public:
    // A fixed ID makes categories compare equal by ID rather than by address: libdevlist.so
    // (hidden visibility) and the program that loads it each hold their own instance, and an
    // error made in one must still compare equal to errc values in the other.
    error_category_impl() noexcept : boost::system::error_category(0x6465766c69737401) {}
    const char* name() const noexcept override { return "devlist"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::invalid_argument:
                return "invalid argument";
            case errc::json_syntax:
                return "malformed JSON";
            case errc::json_limit:
                return "JSON exceeds a size or depth limit";
            case errc::json_number:
                return "JSON number is not an integer within +-(2^53-1)";
            case errc::json_duplicate_key:
                return "duplicate key in JSON object";
            case errc::json_type:
                return "JSON value has the wrong type";
            case errc::base64_invalid:
                return "invalid base64";
            case errc::key_invalid:
                return "invalid key";
            case errc::signature_missing:
                return "signature missing";
            case errc::signature_invalid:
                return "signature invalid";
            case errc::seal_key_invalid:
                return "sealing key invalid";
            case errc::seal_open_failed:
                return "sealed data could not be opened";
            case errc::storage_error:
                return "database error";
            case errc::storage_busy:
                return "database busy";
            case errc::storage_locked:
                return "database in use by another process";
            case errc::storage_schema_too_new:
                return "database schema is newer than this program";
            case errc::storage_corrupt:
                return "database holds an invalid value";
            case errc::io_error:
                return "I/O error";
        }
        return "unknown devlist error";
    }
};
#pragma GCC diagnostic pop

inline const boost::system::error_category& error_category() noexcept {
    static const error_category_impl instance;
    return instance;
}

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

// An error: what kind (code) and what exactly (detail, for people; may be empty).
struct error {
    boost::system::error_code code;
    std::string detail;

    error() = default;
    error(boost::system::error_code c, std::string d = {}) : code(c), detail(std::move(d)) {}
    error(errc e, std::string d = {}) : code(make_error_code(e)), detail(std::move(d)) {}

    // "detail (code message)" or just the code's message.
    std::string message() const {
        if (detail.empty()) return code.message();
        return detail + " (" + code.message() + ")";
    }
    friend bool operator==(const error& e, errc c) { return e.code == make_error_code(c); }
};

// Lets result<T>::value() throw on an error (only start-up code should call it).
[[noreturn]] inline void throw_exception_from_error(const error& e,
                                                    const boost::source_location& loc) {
    boost::throw_exception(boost::system::system_error(e.code, e.detail), loc);
}

template <class T>
using result = boost::system::result<T, error>;

}  // namespace devlist

template <>
struct boost::system::is_error_code_enum<devlist::errc> : std::true_type {};
