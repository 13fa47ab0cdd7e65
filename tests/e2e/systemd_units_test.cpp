// Issue 6: the files in systemd/ as systemd's own tools read them — `systemd-analyze verify`
// finds no problem in the units, `systemd-analyze security` rates both services at most 1.5,
// sysusers and tmpfiles make the user and the folders — the example configuration documents
// every key, and `cmake --install` and CPack put everything where Debian expects it.
//
// The units name /usr/sbin/devlistd; the tests check copies that name the devlistd built here,
// since systemd-analyze verify refuses a unit whose program does not exist.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/config.hpp"
#include "daemon/config_report.hpp"
#include "tests/e2e/daemon_process.hpp"
#include "tests/e2e/temp_dir.hpp"

namespace devlist::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

const std::filesystem::path source_dir = DEVLIST_SOURCE_DIR;
const std::vector<std::string> units = {"devlistd.service", "devlistd@.service", "devlistd.socket",
                                        "devlistd@.socket"};
const std::vector<std::string> config_keys = {
    "homeserver",         "user_id",       "device_id",        "access_token_file",
    "password_file",      "database",      "ca_file",          "device_display_name",
    "sync_timeout_ms",    "log_level",     "sealing_key_file", "one_time_key_target",
    "one_time_keys_kept", "cross_signing", "socket",           "socket_mode",
    "socket_group",       "allowed_uids",  "allowed_gids",     "key_access_uids",
    "key_access_gids"};

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

struct finished {
    process_exit exit;
    std::string output;
};

// Runs a program to its end (output: standard output and error).
finished run(const std::filesystem::path& executable, std::vector<std::string> args,
             std::map<std::string, std::optional<std::string>> env = {},
             std::chrono::seconds patience = 60s) {
    process_options o;
    o.executable = executable;
    o.arguments = std::move(args);
    o.environment = std::move(env);
    daemon_process p(std::move(o));
    auto e = p.wait_exit(clock::now() + patience);
    if (!e) {
        ADD_FAILURE() << executable << " did not end";
        return {p.kill(), p.output()};
    }
    return {*e, p.output()};
}

class systemd_units_test : public ::testing::Test {
  protected:
    temp_dir dir{"devlist-units"};

    // The units as they would be installed, naming the devlistd built here, plus one instance
    // of each template ("demo").
    void copy_units() {
        for (const auto& unit : units) {
            std::string text = read_file(source_dir / "systemd" / unit);
            const std::string packaged = "/usr/sbin/devlistd";
            auto at = text.find(packaged);
            if (unit.ends_with(".service")) {
                ASSERT_NE(at, std::string::npos) << unit;
            }
            if (at != std::string::npos) text.replace(at, packaged.size(), DEVLISTD_PATH);
            dir.write_file(unit, text);
            if (auto template_at = unit.find("@."); template_at != std::string::npos) {
                dir.write_file(unit.substr(0, template_at) + "@demo" + unit.substr(template_at + 1),
                               text);
            }
        }
    }
};

TEST_F(systemd_units_test, systemd_analyze_verify_reports_no_problem) {
    ASSERT_NO_FATAL_FAILURE(copy_units());
    for (const auto& set :
         std::vector<std::vector<std::string>>{{"devlistd.service", "devlistd.socket"},
                                               {"devlistd@demo.service", "devlistd@demo.socket"},
                                               {"devlistd@.service"}}) {
        std::vector<std::string> args{"verify"};
        for (const auto& unit : set)
            args.push_back((dir / unit).string());
        auto r = run(SYSTEMD_ANALYZE_PATH, args);
        // verify warns about many problems without failing: any output is a problem.
        EXPECT_TRUE(r.exit.exited_with(0)) << r.exit << "\n" << r.output;
        EXPECT_EQ(r.output, "") << set.front();
    }
}

TEST_F(systemd_units_test, systemd_analyze_security_rates_both_services_ok) {
    ASSERT_NO_FATAL_FAILURE(copy_units());
    for (const std::string unit : {"devlistd.service", "devlistd@demo.service"}) {
        // --threshold is in tenths: fails above an exposure of 1.5.
        auto r = run(SYSTEMD_ANALYZE_PATH,
                     {"security", "--offline=yes", "--threshold=15", (dir / unit).string()});
        EXPECT_TRUE(r.exit.exited_with(0)) << unit << ": " << r.exit << "\n" << r.output;
        const std::string marker = "Overall exposure level for " + unit + ": ";
        auto at = r.output.find(marker);
        ASSERT_NE(at, std::string::npos) << r.output;
        const double score = std::strtod(r.output.c_str() + at + marker.size(), nullptr);
        EXPECT_LE(score, 1.5) << r.output;
        RecordProperty("exposure " + unit, std::to_string(score));
        std::cout << marker << score << "\n";
    }
}

TEST_F(systemd_units_test, sysusers_and_tmpfiles_make_the_user_and_the_folders) {
    if (::geteuid() != 0) GTEST_SKIP() << "systemd-tmpfiles --root needs root to chown";
    const auto root = dir / "root";
    std::filesystem::create_directories(root / "etc");
    auto users = run(
        SYSTEMD_SYSUSERS_PATH,
        {"--root=" + root.string(), (source_dir / "systemd/sysusers.d/devlistd.conf").string()});
    ASSERT_TRUE(users.exit.exited_with(0)) << users.output;
    const std::string passwd = read_file(root / "etc/passwd");
    auto line_at = passwd.find("devlistd:x:");
    ASSERT_NE(line_at, std::string::npos) << passwd;
    const std::string line = passwd.substr(line_at, passwd.find('\n', line_at) - line_at);
    EXPECT_NE(line.find(":/var/lib/devlistd:"), std::string::npos) << line;
    EXPECT_NE(line.find("nologin"), std::string::npos) << line;
    const auto uid = static_cast<uid_t>(std::stoul(line.substr(line.find(":x:") + 3)));

    auto folders =
        run(SYSTEMD_TMPFILES_PATH, {"--root=" + root.string(), "--create",
                                    (source_dir / "systemd/tmpfiles.d/devlistd.conf").string()});
    ASSERT_TRUE(folders.exit.exited_with(0)) << folders.output;
    const auto expect_folder = [&](const char* path, unsigned mode, uid_t owner) {
        struct stat st {};
        ASSERT_EQ(::stat((root / path).c_str(), &st), 0) << path;
        EXPECT_TRUE(S_ISDIR(st.st_mode)) << path;
        EXPECT_EQ(st.st_mode & 07777, mode) << path;
        EXPECT_EQ(st.st_uid, owner) << path;
        EXPECT_EQ(st.st_gid, uid) << path;  // sysusers gives the group the user's number
    };
    expect_folder("etc/devlistd", 0750, 0);
    expect_folder("var/lib/devlistd", 0750, uid);
    expect_folder("run/devlistd", 0755, uid);
}

TEST_F(systemd_units_test, the_example_and_the_readme_document_every_key) {
    const std::string example = read_file(source_dir / "systemd/devlistd.toml.example");
    const std::string readme = read_file(source_dir / "README.md");
    for (const auto& key : config_keys) {
        EXPECT_TRUE(example.find("\n" + key + " = ") != std::string::npos ||
                    example.find("\n#" + key + " = ") != std::string::npos)
            << key << " is not in the example";
        EXPECT_NE(readme.find("`" + key + "`"), std::string::npos) << key << " is not in README";
    }
    // The effective configuration names no key beyond these.
    daemon::config c;
    c.database = "/var/lib/devlistd/devlistd.db";
    c.key_access_uids.emplace();
    c.key_access_gids.emplace();
    std::istringstream lines(daemon::describe_config(c, {}, "x.toml"));
    for (std::string line; std::getline(lines, line);) {
        auto eq = line.find(" = ");
        if (line.starts_with("#") || eq == std::string::npos) continue;
        EXPECT_NE(std::find(config_keys.begin(), config_keys.end(), line.substr(0, eq)),
                  config_keys.end())
            << line;
    }
}

TEST_F(systemd_units_test, the_example_configuration_is_valid) {
    // As shipped, with the one secret it needs named (under systemd: a credential instead).
    std::string example = read_file(source_dir / "systemd/devlistd.toml.example");
    const std::string commented = "#password_file = \"/etc/devlistd/password\"";
    auto at = example.find(commented);
    ASSERT_NE(at, std::string::npos);
    example.replace(at, commented.size(), "password_file = \"password\"");
    dir.write_file("password", "example-password\n");
    dir.write_file("devlistd.toml", example);
    auto r = run(DEVLISTD_PATH, {"--check-config", "--config", (dir / "devlistd.toml").string()});
    EXPECT_TRUE(r.exit.exited_with(0)) << r.exit << "\n" << r.output;
}

// The install tree, staged with DESTDIR as a package build does.
TEST_F(systemd_units_test, cmake_install_puts_everything_where_debian_expects_it) {
    const auto stage = dir / "stage";
    auto r = run(CMAKE_COMMAND_PATH, {"--install", DEVLIST_BINARY_DIR, "--prefix", "/usr"},
                 {{"DESTDIR", stage.string()}});
    ASSERT_TRUE(r.exit.exited_with(0)) << r.output;
    for (const char* file :
         {"usr/sbin/devlistd", "usr/bin/devlistctl", "usr/lib/systemd/system/devlistd.service",
          "usr/lib/systemd/system/devlistd@.service", "usr/lib/systemd/system/devlistd.socket",
          "usr/lib/systemd/system/devlistd@.socket", "usr/lib/sysusers.d/devlistd.conf",
          "usr/lib/tmpfiles.d/devlistd.conf",
          "usr/share/doc/devlistd/examples/devlistd.toml.example",
          "usr/share/doc/devlistd/README.md"}) {
        EXPECT_TRUE(std::filesystem::is_regular_file(stage / file)) << file;
    }
    EXPECT_NE(read_file(stage / "usr/lib/systemd/system/devlistd.service")
                  .find("ExecStart=/usr/sbin/devlistd --config /etc/devlistd/devlistd.toml"),
              std::string::npos);

    // Another prefix: the units name the devlistd installed there.
    auto other = run(CMAKE_COMMAND_PATH, {"--install", DEVLIST_BINARY_DIR, "--prefix", "/opt/dl"},
                     {{"DESTDIR", (dir / "other").string()}});
    ASSERT_TRUE(other.exit.exited_with(0)) << other.output;
    EXPECT_NE(read_file(dir / "other/opt/dl/lib/systemd/system/devlistd@.service")
                  .find("ExecStart=/opt/dl/sbin/devlistd --config /etc/devlistd/%i.toml"),
              std::string::npos);
}

// cpack builds `all` first (nothing to do after a full build) and installs into its own stage.
TEST_F(systemd_units_test, cpack_makes_a_debian_package_of_those_files) {
    const auto out = dir / "package";
    auto r = run(CPACK_COMMAND_PATH,
                 {"-G", "DEB", "--config", std::string(DEVLIST_BINARY_DIR) + "/CPackConfig.cmake",
                  "-B", out.string()},
                 {}, 600s);
    ASSERT_TRUE(r.exit.exited_with(0)) << r.output;
    std::optional<std::filesystem::path> deb;
    for (const auto& entry : std::filesystem::directory_iterator(out)) {
        if (entry.path().extension() == ".deb") deb = entry.path();
    }
    ASSERT_TRUE(deb) << r.output;
    EXPECT_TRUE(deb->filename().string().starts_with("devlistd_")) << *deb;

    auto contents = run(DPKG_DEB_PATH, {"--contents", deb->string()});
    ASSERT_TRUE(contents.exit.exited_with(0)) << contents.output;
    for (const char* file :
         {"./usr/sbin/devlistd", "./usr/bin/devlistctl",
          "./usr/lib/systemd/system/devlistd.service", "./usr/lib/systemd/system/devlistd@.service",
          "./usr/lib/systemd/system/devlistd.socket", "./usr/lib/systemd/system/devlistd@.socket",
          "./usr/lib/sysusers.d/devlistd.conf", "./usr/lib/tmpfiles.d/devlistd.conf",
          "./usr/share/doc/devlistd/examples/devlistd.toml.example"}) {
        EXPECT_NE(contents.output.find(std::string(file) + "\n"), std::string::npos)
            << file << " is not in\n"
            << contents.output;
    }
    auto fields = run(DPKG_DEB_PATH, {"--field", deb->string(), "Package", "Depends"});
    ASSERT_TRUE(fields.exit.exited_with(0)) << fields.output;
    EXPECT_NE(fields.output.find("Package: devlistd\n"), std::string::npos) << fields.output;
    for (const char* library : {"libsystemd0", "libsodium23", "libsqlite3-0"}) {
        EXPECT_NE(fields.output.find(library), std::string::npos) << fields.output;
    }
    auto info = run(DPKG_DEB_PATH, {"--info", deb->string()});
    EXPECT_NE(info.output.find("postinst"), std::string::npos) << info.output;
}

}  // namespace
}  // namespace devlist::test
