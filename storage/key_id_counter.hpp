// The monotonic counter own one-time and fallback key IDs are made from. Internal to storage/.
#pragma once

#include "devlist/error.hpp"
#include "storage/statement_cache.hpp"

#include <cstdint>

namespace devlist::storage {

// Takes `count` values from the counter inside the caller's open transaction; returns the first.
// If that transaction rolls back, the values are handed out again later; that is safe because
// keys are committed before they are uploaded, so no ID of a rolled-back transaction left the
// process.
result<std::int64_t> take_key_id_values(statement_cache& stmts, std::int64_t count);

}  // namespace devlist::storage
