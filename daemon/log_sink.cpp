#include "daemon/log_sink.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace devlist::daemon {
namespace {

int syslog_priority(sync::log_level level) {
    switch (level) {
        case sync::log_level::debug:
            return 7;
        case sync::log_level::info:
            return 6;
        case sync::log_level::notice:
            return 5;
        case sync::log_level::warning:
            return 4;
        case sync::log_level::error:
            return 3;
    }
    return 6;
}

const char* level_name(sync::log_level level) {
    switch (level) {
        case sync::log_level::debug:
            return "debug";
        case sync::log_level::info:
            return "info";
        case sync::log_level::notice:
            return "notice";
        case sync::log_level::warning:
            return "warning";
        case sync::log_level::error:
            return "error";
    }
    return "info";
}

}  // namespace

sync::log_level to_log_level(log_level_setting setting) {
    switch (setting) {
        case log_level_setting::debug:
            return sync::log_level::debug;
        case log_level_setting::info:
            return sync::log_level::info;
        case log_level_setting::notice:
            return sync::log_level::notice;
        case log_level_setting::warning:
            return sync::log_level::warning;
        case log_level_setting::error:
            return sync::log_level::error;
    }
    return sync::log_level::info;
}

bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr) return false;
    unsigned long long device = 0;
    unsigned long long inode = 0;
    if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return st.st_dev == device && st.st_ino == inode;
}

sync::log_function make_stderr_log(std::shared_ptr<const sync::log_level> min) {
    const bool journald = stderr_is_journal();
    return [min = std::move(min), journald](sync::log_level level, std::string_view line) {
        if (level < *min) return;
        std::string out;
        if (journald) {
            out = "<" + std::to_string(syslog_priority(level)) + ">";
        } else {
            std::time_t t = std::time(nullptr);
            std::tm tm{};
            gmtime_r(&t, &tm);
            char stamp[32];
            std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", &tm);
            out = stamp;
            out += level_name(level);
            out += ": ";
        }
        out.append(line);
        out += '\n';
        std::fwrite(out.data(), 1, out.size(), stderr);
    };
}

}  // namespace devlist::daemon
