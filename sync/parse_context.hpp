// A reusable JSON parsing context for the sync/parse_* functions.
//
// Keeping one per loop matters: a warm parser handles a 13.5 MB /keys/query answer in a few
// milliseconds where a cold one spends most of its time allocating. Not thread-safe: use one
// context per thread (devlistd has one io thread, so one context).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace devlist::sync {

class parse_context {
  public:
    // max_depth bounds nesting (hostile servers send deep arrays); bodies themselves are
    // size-limited by the HTTP client. capacity is the body size prepared for at once (it grows
    // on demand).
    static constexpr std::size_t default_max_depth = 128;
    explicit parse_context(std::size_t max_depth = default_max_depth,
                           std::size_t capacity = std::size_t{1} << 20);
    ~parse_context();
    parse_context(const parse_context&) = delete;
    parse_context& operator=(const parse_context&) = delete;

    struct impl;
    impl& get() { return *impl_; }

  private:
    std::unique_ptr<impl> impl_;
};

// The spare bytes a response body should have after its end (std::string::capacity()) so that
// parsing needs no copy. Bodies without them are copied once.
std::size_t json_padding();

}  // namespace devlist::sync
