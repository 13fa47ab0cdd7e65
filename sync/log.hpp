// The engine's log output: an injected function, so the daemon can write journald lines and a
// bot embedding the library can route lines into its own logger. Lines never contain secrets.
#pragma once

#include <functional>
#include <string_view>

namespace devlist::sync {

enum class log_level { debug, info, notice, warning, error };

using log_function = std::function<void(log_level, std::string_view)>;

}  // namespace devlist::sync
