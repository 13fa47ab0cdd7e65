// systemd credentials (LoadCredential=): the secrets a service manager hands devlistd as files in
// $CREDENTIALS_DIRECTORY, read-only and visible to the service alone. devlistd looks there for a
// secret whose *_file key the configuration leaves unset.
//
// Plain functions; thread-safe.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

namespace devlist::daemon {

// The names devlistd looks for (LoadCredential=NAME:PATH).
inline constexpr std::string_view credential_access_token = "access_token";
inline constexpr std::string_view credential_password = "password";
inline constexpr std::string_view credential_sealing_key = "sealing_key";

// directory/name if that file exists and holds something besides line breaks. A blank one
// counts as absent: the units give each credential a line break as its SetCredential= default,
// which makes a missing source file no error (systemd 252 refuses an empty default).
std::optional<std::filesystem::path> find_credential(const std::filesystem::path& directory,
                                                     std::string_view name);

}  // namespace devlist::daemon
