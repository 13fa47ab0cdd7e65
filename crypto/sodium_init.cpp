#include "crypto/sodium_init.hpp"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>

namespace devlist::crypto {

void ensure_sodium_initialized() noexcept {
    // A function-local static gives the once-only, thread-safe initialisation for free.
    static const bool initialized = [] {
        if (sodium_init() < 0) {
            (void)std::fputs("devlist: libsodium failed to initialise\n", stderr);
            std::abort();
        }
        return true;
    }();
    (void)initialized;
}

}  // namespace devlist::crypto
