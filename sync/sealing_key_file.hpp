// The file of the key that seals private keys at rest, as devlistd and the library find it.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "crypto/seal.hpp"
#include "devlist/error.hpp"
#include "storage/store.hpp"
#include "sync/log.hpp"

namespace devlist::sync {

// The configured file, or "<database>.key", which is created (mode 0600) on the first start
// only: a database that already holds sealed keys without its key is an error, never a reason
// to make a new key (the old private keys would be lost). errc::invalid_argument names the
// problem; a created key is logged (notice) with the advice to back it up.
result<std::shared_ptr<const crypto::sealing_key>> load_or_create_sealing_key(
    const std::optional<std::filesystem::path>& configured, const std::filesystem::path& database,
    storage::store& store, const log_function& log);

}  // namespace devlist::sync
