// libsodium must be initialised once before its random generator and its optimised primitives
// are used. Every entry point of devlist_crypto that calls libsodium calls this first.
#pragma once

namespace devlist::crypto {

// Initialises libsodium on the first call; later calls cost one load of a guard variable.
// Thread-safe. Aborts if libsodium cannot initialise (no usable entropy source): nothing in
// this library can work safely without it.
void ensure_sodium_initialized() noexcept;

}  // namespace devlist::crypto
