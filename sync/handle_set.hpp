// An open-addressing hash set of 32-bit handles whose keys live elsewhere (the device-list
// tracker's users are handles into its own table, keyed by their user ID strings).
//
// Why not std::unordered_map: the tracker holds one entry per user of every shared room, up to
// hundreds of thousands; a node-based map costs a heap node (and a copy of the key) per entry,
// which dominated both its memory and the time to fill it at start. Here an entry is 8 bytes in
// one array: the handle and 32 bits of its key's hash (so growing never needs the keys, and most
// mismatches are rejected without touching them).
//
// Linear probing, deletion by backward shift (no tombstones), load at most 1/2 (short probe
// runs: most lookups at start are misses, which walk a whole run). Internal to
// sync/; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace devlist::sync::detail {

class handle_set {
  public:
    static constexpr std::uint32_t npos = 0xffffffffu;

    std::size_t size() const noexcept { return size_; }

    void clear() noexcept {
        entries_.clear();
        entries_.shrink_to_fit();
        size_ = 0;
    }

    // The handle whose key has hash `hash` and for which `same(handle)` holds, or npos.
    template <class Same>
    std::uint32_t find(std::size_t hash, Same&& same) const {
        if (entries_.empty()) return npos;
        const std::uint32_t h = fold(hash);
        for (std::size_t i = h & mask(); entries_[i].handle != npos; i = (i + 1) & mask()) {
            if (entries_[i].hash == h && same(entries_[i].handle)) return entries_[i].handle;
        }
        return npos;
    }

    // Adds `handle`, whose key must not be in the set yet.
    void insert(std::size_t hash, std::uint32_t handle) {
        if ((size_ + 1) * 2 > entries_.size()) grow();
        place({fold(hash), handle});
        ++size_;
    }

    // Removes the handle found as by find(); false if there is none.
    template <class Same>
    bool erase(std::size_t hash, Same&& same) {
        if (entries_.empty()) return false;
        const std::uint32_t h = fold(hash);
        std::size_t i = h & mask();
        for (; entries_[i].handle != npos; i = (i + 1) & mask()) {
            if (entries_[i].hash == h && same(entries_[i].handle)) break;
        }
        if (entries_[i].handle == npos) return false;
        // Backward shift: pull later entries of the probe run into the hole so that every entry
        // stays reachable from its home position.
        for (std::size_t j = (i + 1) & mask(); entries_[j].handle != npos; j = (j + 1) & mask()) {
            const std::size_t home = entries_[j].hash & mask();
            // Move j into the hole at i unless its home lies cyclically in (i, j].
            const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays) {
                entries_[i] = entries_[j];
                i = j;
            }
        }
        entries_[i] = entry{};
        --size_;
        return true;
    }

    // Calls `f(handle)` for every handle, in no particular order. `f` must not change the set.
    template <class F>
    void for_each(F&& f) const {
        for (const entry& e : entries_) {
            if (e.handle != npos) f(e.handle);
        }
    }

  private:
    struct entry {
        std::uint32_t hash = 0;
        std::uint32_t handle = npos;
    };

    static std::uint32_t fold(std::size_t hash) noexcept {
        // Mixed, so that consecutive integer keys (hashed to themselves by some callers) spread.
        std::uint64_t x = static_cast<std::uint64_t>(hash) * 0x9e3779b97f4a7c15ull;
        return static_cast<std::uint32_t>(x >> 32);
    }
    std::size_t mask() const noexcept { return entries_.size() - 1; }

    void place(entry e) {
        std::size_t i = e.hash & mask();
        while (entries_[i].handle != npos)
            i = (i + 1) & mask();
        entries_[i] = e;
    }

    void grow() {
        std::vector<entry> old;
        old.swap(entries_);
        entries_.assign(old.empty() ? 16 : old.size() * 2, entry{});
        for (const entry& e : old) {
            if (e.handle != npos) place(e);
        }
    }

    std::vector<entry> entries_;
    std::size_t size_ = 0;
};

}  // namespace devlist::sync::detail
