// Micro-benchmarks of the /keys/query verification path and its parts.
//
// The device-keys object is what a real /keys/query answer holds per device (about 600 bytes);
// a big answer holds tens of thousands. Run a Release or RelWithDebInfo build, e.g.
//   devlist_bench_crypto --benchmark_min_time=1

#include "crypto/base64.hpp"
#include "crypto/canonical_json.hpp"
#include "crypto/curve25519.hpp"
#include "crypto/ed25519.hpp"
#include "crypto/json_value.hpp"
#include "crypto/signed_json.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

namespace devlist::crypto {
namespace {

constexpr std::string_view user_id = "@alice:example.org";
constexpr std::string_view device_id = "JLAFKJWSCS";
constexpr std::string_view key_id = "ed25519:JLAFKJWSCS";

struct device_keys_sample {
    ed25519_key_pair device = ed25519_key_pair::generate();
    std::string canonical;  // as our own sign_json writes it (keys in order)
    std::string received;   // the same object as a server may send it: other order, whitespace
    std::string signature;

    device_keys_sample() {
        json::value keys;
        keys["user_id"] = user_id;
        keys["device_id"] = device_id;
        keys["algorithms"] = json::array{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"};
        keys["keys"]["curve25519:" + std::string(device_id)] =
            curve25519_key_pair::generate().public_key().to_base64();
        keys["keys"]["ed25519:" + std::string(device_id)] = device.public_key().to_base64();
        sign_json(keys, user_id, key_id, device);
        // A cross-signing signature by the user's self-signing key, as most devices carry.
        keys["signatures"][user_id]
            ["ed25519:" + ed25519_key_pair::generate().public_key().to_base64()] =
                device.sign(std::string_view("cross-signing")).to_base64();
        keys["unsigned"]["device_display_name"] = "Alice's laptop (Element Desktop, Linux)";
        canonical = json::to_canonical(keys);
        signature = keys["signatures"][user_id][key_id].as_string();

        // Members in reverse order with a space after each separator.
        received = "{";
        const auto& members = keys.as_object();
        for (auto it = members.rbegin(); it != members.rend(); ++it) {
            if (it != members.rbegin()) received += ", ";
            json::append_canonical(json::value(it->first), received);
            received += ": ";
            json::append_canonical(it->second, received);
        }
        received += "}";
    }
};

const device_keys_sample& sample() {
    static const device_keys_sample s;
    return s;
}

void canonicalize_device_keys(benchmark::State& state, const std::string& raw) {
    canonical_options options;
    options.strip_signatures_and_unsigned = true;
    std::string out;
    for (auto _ : state) {
        auto r = canonicalize(raw, out, options);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(raw.size()));
    state.counters["input_bytes"] = static_cast<double>(raw.size());
}

void BM_canonicalize_device_keys_sorted(benchmark::State& state) {
    canonicalize_device_keys(state, sample().canonical);
}
BENCHMARK(BM_canonicalize_device_keys_sorted);

void BM_canonicalize_device_keys_unsorted(benchmark::State& state) {
    canonicalize_device_keys(state, sample().received);
}
BENCHMARK(BM_canonicalize_device_keys_unsorted);

// The hot path: the caller found the signature; canonicalise with a reused buffer and verify.
void BM_verify_json_signature_device_keys(benchmark::State& state) {
    const auto& s = sample();
    std::string scratch;
    for (auto _ : state) {
        auto r = verify_json_signature(s.received, s.signature, s.device.public_key(), &scratch);
        if (!r) state.SkipWithError("verification failed");
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_verify_json_signature_device_keys);

// Finding the signature too (parses the object into a json::value first).
void BM_verify_json_device_keys(benchmark::State& state) {
    const auto& s = sample();
    for (auto _ : state) {
        auto r = verify_json(s.received, user_id, key_id, s.device.public_key());
        if (!r) state.SkipWithError("verification failed");
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_verify_json_device_keys);

void BM_json_parse_device_keys(benchmark::State& state) {
    const auto& s = sample();
    for (auto _ : state) {
        auto v = json::parse(s.received);
        benchmark::DoNotOptimize(v);
    }
}
BENCHMARK(BM_json_parse_device_keys);

void BM_ed25519_verify(benchmark::State& state) {
    const auto& s = sample();
    const auto signature = s.device.sign(std::string_view(s.canonical));
    for (auto _ : state) {
        bool ok = ed25519_verify(s.device.public_key(), s.canonical, signature);
        benchmark::DoNotOptimize(ok);
    }
}
BENCHMARK(BM_ed25519_verify);

void BM_ed25519_sign(benchmark::State& state) {
    const auto& s = sample();
    for (auto _ : state) {
        auto signature = s.device.sign(std::string_view(s.canonical));
        benchmark::DoNotOptimize(signature);
    }
}
BENCHMARK(BM_ed25519_sign);

void BM_sign_json_device_keys(benchmark::State& state) {
    const auto& s = sample();
    for (auto _ : state) {
        auto r = sign_json(s.received, user_id, key_id, s.device);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_sign_json_device_keys);

std::vector<std::uint8_t> pattern_bytes(std::size_t n) {
    std::vector<std::uint8_t> bytes(n);
    for (std::size_t i = 0; i < n; ++i)
        bytes[i] = static_cast<std::uint8_t>(i * 37 + 11);
    return bytes;
}

void BM_base64_encode(benchmark::State& state) {
    const auto bytes = pattern_bytes(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        auto text = base64_encode(bytes);
        benchmark::DoNotOptimize(text);
    }
}
BENCHMARK(BM_base64_encode)->Arg(32)->Arg(64);

void BM_base64_decode(benchmark::State& state) {
    const std::string text = base64_encode(pattern_bytes(static_cast<std::size_t>(state.range(0))));
    for (auto _ : state) {
        auto bytes = base64_decode(text);
        benchmark::DoNotOptimize(bytes);
    }
}
BENCHMARK(BM_base64_decode)->Arg(32)->Arg(64);

void BM_base64_decode_into(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const std::string text = base64_encode(pattern_bytes(n));
    std::vector<std::uint8_t> out(n);
    for (auto _ : state) {
        auto r = base64_decode_into(text, out);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_base64_decode_into)->Arg(32)->Arg(64);

}  // namespace
}  // namespace devlist::crypto

BENCHMARK_MAIN();
