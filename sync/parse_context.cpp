#include "sync/parse_context.hpp"

#include "sync/parse_json_detail.hpp"

namespace devlist::sync {

parse_context::parse_context(std::size_t max_depth, std::size_t capacity)
    : impl_(std::make_unique<impl>()) {
    // The capacity grows on demand (iterate() reallocates, keeping max_depth); the depth bound
    // stays. Allocation failure here only means iterate() tries again later.
    if (impl_->parser.allocate(capacity, max_depth) != simdjson::SUCCESS) return;
    if (impl_->inner.allocate(1u << 16, max_depth) != simdjson::SUCCESS) return;
}

parse_context::~parse_context() = default;

std::size_t json_padding() {
    return simdjson::SIMDJSON_PADDING;
}

}  // namespace devlist::sync
