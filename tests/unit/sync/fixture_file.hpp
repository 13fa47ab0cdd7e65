// Reads a file from tests/fixtures for the sync parser tests.
#pragma once

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace devlist::test {

inline std::string read_fixture(const std::string& relative) {
    std::ifstream in(std::string(DEVLIST_FIXTURES_DIR) + "/" + relative, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open fixture " + relative);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace devlist::test
