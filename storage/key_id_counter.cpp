#include "storage/key_id_counter.hpp"

#include <cassert>

namespace devlist::storage {

result<std::int64_t> take_key_id_values(statement_cache& stmts, std::int64_t count) {
    assert(count >= 0);
    assert(stmts.db().in_transaction());
    auto first = stmts.query_one(
        "UPDATE key_id_counter SET next_value = next_value + ?1 WHERE id = 1 "
        "RETURNING next_value - ?1",
        read_int64, count);
    if (!first) return first.error();
    if (!*first) return error{errc::storage_corrupt, "the key ID counter row is missing"};
    return **first;
}

}  // namespace devlist::storage
