#include "storage/statement_cache.hpp"

#include <sqlite3.h>

namespace devlist::storage {

result<statement*> statement_cache::acquire(std::string_view sql) {
    auto found = statements_.find(sql);
    if (found != statements_.end()) return &found->second;
    auto prepared = db_->prepare(sql);
    if (!prepared) return prepared.error();
    auto [inserted, _] = statements_.emplace(std::string(sql), std::move(*prepared));
    return &inserted->second;
}

std::string_view text_view(const statement& st, int column) noexcept {
    const auto* data = sqlite3_column_text(st.native_handle(), column);
    if (data == nullptr) return {};
    return {reinterpret_cast<const char*>(data),
            static_cast<std::size_t>(sqlite3_column_bytes(st.native_handle(), column))};
}

error statement_cache::missing_row(std::string_view sql) const {
    return error{errc::storage_corrupt,
                 "database " + db_->name() + ": no row from '" + std::string(sql) + "'"};
}

}  // namespace devlist::storage
