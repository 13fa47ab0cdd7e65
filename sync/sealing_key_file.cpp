#include "sync/sealing_key_file.hpp"

#include <string>
#include <system_error>

namespace devlist::sync {

result<std::shared_ptr<const crypto::sealing_key>> load_or_create_sealing_key(
    const std::optional<std::filesystem::path>& configured, const std::filesystem::path& database,
    storage::store& store, const log_function& log) {
    std::filesystem::path path = configured.value_or(database.string() + ".key");
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
        auto key = crypto::sealing_key::load_file(path);
        if (!key) return error{errc::invalid_argument, "sealing_key_file: " + key.error().detail};
        return std::make_shared<const crypto::sealing_key>(std::move(*key));
    }
    if (configured) {
        return error{errc::invalid_argument,
                     "sealing_key_file: " + path.string() + " does not exist"};
    }
    auto identity = store.account().load();
    if (!identity) return identity.error();
    if (*identity) {
        return error{errc::invalid_argument,
                     "the database holds sealed private keys but their sealing key " +
                         path.string() +
                         " is missing — restore it from the backup of the database"};
    }
    auto key = crypto::sealing_key::generate();
    if (auto w = key.write_new_file(path); !w) return w.error();
    if (log) {
        log(log_level::notice, "created the sealing key " + path.string() +
                                   " (mode 0600); back it up together with the database");
    }
    return std::make_shared<const crypto::sealing_key>(std::move(key));
}

}  // namespace devlist::sync
