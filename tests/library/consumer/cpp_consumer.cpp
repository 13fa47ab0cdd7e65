// A C++ program on the installed façade: it compiles against the installed headers alone, links,
// and errors made inside the library compare equal to errc values here.
#include <boost/asio/io_context.hpp>

#include <devlist/engine.hpp>
#include <devlist/json.hpp>

#include <cstdio>
#include <string>

int main() {
    auto config = devlist::parse_engine_config("user_id = 1\n", "/");
    if (config || !(config.error() == devlist::errc::invalid_argument)) {
        std::fprintf(stderr, "expected invalid_argument for a bad configuration\n");
        return 1;
    }
    devlist::user_devices answer;
    answer.user_id = "@alice:example.org";
    const std::string json = devlist::to_json(answer);
    if (json.find(R"("user_id":"@alice:example.org")") == std::string::npos) {
        std::fprintf(stderr, "unexpected JSON: %s\n", json.c_str());
        return 1;
    }
    boost::asio::io_context io;
    devlist::engine_config bad;
    bad.user_id = "not a user ID";
    auto engine = devlist::engine::create(io.get_executor(), bad);
    if (engine || !(engine.error() == devlist::errc::invalid_argument)) {
        std::fprintf(stderr, "expected invalid_argument for a bad user ID\n");
        return 1;
    }
    std::printf("libdevlist %s: %s\n", devlist::library_version(), json.c_str());
    return 0;
}
