// Data for the workload benchmarks, made here with real keys and real signatures: device keys
// self-signed by the device and signed by the owner's self-signing key, self-signing keys signed
// by the master key, display names under "unsigned", members in the order Synapse sends them
// (not canonical), and /sync bodies shaped like Synapse's.
//
// Every signature made is also recorded as (key, canonical message, signature), so a benchmark
// can time raw Ed25519 verification of exactly the signatures an answer carries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "crypto/ed25519.hpp"

namespace devlist::bench {

struct signed_message {
    crypto::ed25519_public_key key;
    std::string message;  // the canonical JSON that was signed
    crypto::ed25519_signature signature;
};

struct bench_device {
    std::string device_id;
    std::string json;  // the device_keys object as a server sends it (with "unsigned")
};

struct bench_user {
    std::string user_id;
    std::string master_json;
    std::string self_signing_json;
    std::vector<bench_device> devices;
    crypto::ed25519_key_pair self_signing = crypto::ed25519_key_pair::generate();
};

// The users of the /keys/query workloads: user i is "@u<i>.<word>:hs<i % 40>.example.org".
std::string bench_user_id(std::size_t index);

class key_factory {
  public:
    explicit key_factory(std::uint64_t seed) : random_(seed) {}

    // A user with master and self-signing keys and `devices` cross-signed devices.
    bench_user make_user(std::string user_id, std::size_t devices,
                         std::vector<signed_message>* signatures);
    // One more device for the user (a new login): self-signed and cross-signed.
    void add_device(bench_user& user, std::vector<signed_message>* signatures);

    // A device ID as Element makes them: ten capital letters.
    std::string device_id();
    // A plausible base64 string of `bytes` random bytes (for synthetic store contents).
    std::string random_base64(std::size_t bytes);
    std::mt19937_64& random() { return random_; }

  private:
    std::mt19937_64 random_;
};

// The body of a /keys/query answer for these users (failures empty).
std::string keys_query_answer(std::span<const bench_user> users);

// A /sync response body (incremental, joined rooms with encrypted timeline events) with
// `changed` in device_lists.changed, one-time key counts and fallback key types, padded with
// timeline events to about `target_bytes`.
std::string sync_body(const std::vector<std::string>& changed, std::size_t target_bytes,
                      std::size_t rooms, const std::string& next_batch, key_factory& keys);

// A synthetic device_keys object of realistic size (its signatures are not real: for
// background store contents that no workload verifies).
std::string synthetic_device_json(const std::string& user_id, const std::string& device_id,
                                  const std::string& ed25519, const std::string& curve25519,
                                  key_factory& keys);

}  // namespace devlist::bench
