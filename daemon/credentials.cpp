#include "daemon/credentials.hpp"

#include <fstream>

namespace devlist::daemon {

std::optional<std::filesystem::path> find_credential(const std::filesystem::path& directory,
                                                     std::string_view name) {
    std::filesystem::path path = directory / name;
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    // Only the first bytes are looked at: a real secret is never a line break or two.
    char head[3] = {};
    in.read(head, sizeof head);
    const auto n = static_cast<std::size_t>(in.gcount());
    if (n == sizeof head) return path;
    for (std::size_t i = 0; i < n; ++i) {
        if (head[i] != '\n' && head[i] != '\r') return path;
    }
    return std::nullopt;
}

}  // namespace devlist::daemon
