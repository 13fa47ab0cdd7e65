// Makes /keys/query answers from real keys of the rust crypto machine, and its verdicts on them.
//
// Usage: node make_keys.mjs OUT_DIR
//
// Offline: OlmMachine instances with in-memory stores create Alice's and Bob's devices; Alice
// also bootstraps cross-signing. This script then plays the homeserver: it keeps what the
// machines upload (device keys, signing keys, and signatures merged into the objects they sign,
// plus `unsigned.device_display_name`) and writes, for each variant, the /keys/query answer a
// third user would get. Every variant but "genuine" has one deliberate defect.
//
// OUT_DIR receives, per variant, NAME.json (the answer) and NAME.rust.json (the rust machine's
// verdict rows, see rust_verdicts.mjs), and manifest.json: the variants, and the user and
// device IDs they use (some are only known once the keys exist).

import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

import {
    DeviceId,
    OlmMachine,
    RequestType,
    UserId,
    getVersions,
    initAsync,
} from "@matrix-org/matrix-sdk-crypto-wasm";

import { rustVerdicts } from "./rust_verdicts.mjs";

const ALICE = "@alice:example.org";
const BOB = "@bob:example.org";

// ---- the machines' uploads ----

async function newMachine(user, device) {
    return OlmMachine.initialize(new UserId(user), new DeviceId(device));
}

// The device_keys object the machine uploads (self-signed by the device), after which the
// upload is acknowledged as a homeserver would.
async function uploadedDeviceKeys(machine) {
    const upload = (await machine.outgoingRequests()).find(
        (r) => r.type === RequestType.KeysUpload,
    );
    if (!upload) throw new Error(`${machine.userId} ${machine.deviceId}: no keys upload request`);
    const body = JSON.parse(upload.body);
    if (!body.device_keys) throw new Error("the keys upload carries no device_keys");
    await machine.markRequestAsSent(
        upload.id,
        RequestType.KeysUpload,
        JSON.stringify({ one_time_key_counts: { signed_curve25519: 50 } }),
    );
    return body.device_keys;
}

// The one "ed25519:<pub>" entry of a cross-signing key, as the bare public key.
function publicKeyOf(crossSigningKey) {
    const values = Object.values(crossSigningKey.keys);
    if (values.length !== 1) throw new Error("a cross-signing key must hold exactly one key");
    return values[0];
}

// Merges signatures into the object they sign, as the homeserver does with
// /keys/signatures/upload.
function addSignatures(target, signatures) {
    for (const [signer, bySigner] of Object.entries(signatures)) {
        target.signatures ??= {};
        target.signatures[signer] = { ...target.signatures[signer], ...bySigner };
    }
}

// Bootstraps cross-signing and returns {master, selfSigning} as the homeserver stores them, with
// the signatures of the signature upload (the device by the self-signing key, possibly the
// master key by the device) merged into `deviceKeys` and the keys.
async function bootstrapCrossSigning(machine, deviceKeys) {
    const requests = await machine.bootstrapCrossSigning(true);
    const signing = JSON.parse(requests.uploadSigningKeysRequest.body);
    const master = signing.master_key;
    const selfSigning = signing.self_signing_key;
    const uploaded = JSON.parse(requests.uploadSignaturesRequest.body);
    const user = deviceKeys.user_id;
    for (const [keyId, signed] of Object.entries(uploaded[user] ?? {})) {
        const target =
            keyId === deviceKeys.device_id
                ? deviceKeys
                : [master, selfSigning].find((k) => publicKeyOf(k) === keyId);
        if (!target) throw new Error(`signature upload for an unknown key ${keyId}`);
        addSignatures(target, signed.signatures);
    }
    return { master, selfSigning };
}

// What /keys/query returns for a device: the upload plus the homeserver's unsigned data.
function asServed(deviceKeys, displayName) {
    return { ...structuredClone(deviceKeys), unsigned: { device_display_name: displayName } };
}

// ---- defects ----

// Flips one bit of a signature; the result is still 64 bytes of valid base64, so only the
// signature check itself can catch it.
function flipSignature(signed, signer, keyId) {
    const signature = signed.signatures?.[signer]?.[keyId];
    if (!signature) throw new Error(`no signature ${signer} ${keyId} to corrupt`);
    const bytes = Buffer.from(signature, "base64");
    bytes[bytes.length >> 1] ^= 0x01;
    signed.signatures[signer][keyId] = bytes.toString("base64").replace(/=+$/, "");
}

function answer({ aliceDevices, bobDevices, master, selfSigning }) {
    const body = {
        device_keys: { [ALICE]: aliceDevices, [BOB]: bobDevices },
        failures: {},
        master_keys: {},
        self_signing_keys: {},
    };
    if (master) body.master_keys[ALICE] = master;
    if (selfSigning) body.self_signing_keys[ALICE] = selfSigning;
    return body;
}

// ---- main ----

async function main() {
    const outDir = process.argv[2];
    if (!outDir) {
        console.error("usage: node make_keys.mjs OUT_DIR");
        process.exit(2);
    }
    await initAsync();

    const alice = await newMachine(ALICE, "ALICEDEV");
    const aliceKeys = await uploadedDeviceKeys(alice);
    const aliceCross = await bootstrapCrossSigning(alice, aliceKeys);
    const bob = await newMachine(BOB, "BOBDEV");
    const bobKeys = await uploadedDeviceKeys(bob);

    // Another cross-signing identity of Alice's, for a master key that did not sign her
    // self-signing key.
    const rogue = await newMachine(ALICE, "ROGUEDEV");
    const rogueCross = await bootstrapCrossSigning(rogue, await uploadedDeviceKeys(rogue));

    // A genuine, self-signed device of Alice's whose device ID is her self-signing key: its
    // self-signature's key ID "ed25519:<ssk>" is then the same as a cross-signature's.
    const selfSigningPublic = publicKeyOf(aliceCross.selfSigning);
    const colliding = await newMachine(ALICE, selfSigningPublic);
    const collidingKeys = await uploadedDeviceKeys(colliding);

    const selfSigningId = `ed25519:${selfSigningPublic}`;
    const masterId = `ed25519:${publicKeyOf(aliceCross.master)}`;
    const genuine = () => ({
        aliceDevices: { ALICEDEV: asServed(aliceKeys, "Alice's laptop") },
        bobDevices: { BOBDEV: asServed(bobKeys, "Bob's phone") },
        master: structuredClone(aliceCross.master),
        selfSigning: structuredClone(aliceCross.selfSigning),
    });
    // Each variant is the genuine answer with one change.
    const variant = (edit) => {
        const parts = genuine();
        edit(parts);
        return answer(parts);
    };

    const variants = {
        genuine: {
            description: "the objects as uploaded, with the homeserver's unsigned data",
            answer: variant(() => {}),
        },
        self_signature_flipped: {
            description: "one bit of ALICEDEV's self-signature flipped",
            answer: variant((p) =>
                flipSignature(p.aliceDevices.ALICEDEV, ALICE, "ed25519:ALICEDEV"),
            ),
        },
        algorithm_changed_after_signing: {
            description: "ALICEDEV's second algorithm replaced after signing",
            answer: variant((p) => {
                p.aliceDevices.ALICEDEV.algorithms[1] = "m.megolm.v2.aes-sha2";
            }),
        },
        unknown_field_added_after_signing: {
            description: "a field the signature does not cover added to ALICEDEV",
            answer: variant((p) => {
                p.aliceDevices.ALICEDEV.org_example_added = "after signing";
            }),
        },
        user_id_mismatch: {
            description: "Bob's genuine BOBDEV listed under Alice (user_id is not the map key)",
            answer: variant((p) => {
                p.aliceDevices.BOBDEV = p.bobDevices.BOBDEV;
                p.bobDevices = {};
            }),
        },
        device_id_mismatch: {
            description: "Alice's genuine ALICEDEV listed as NOTALICEDEV",
            answer: variant((p) => {
                p.aliceDevices = { NOTALICEDEV: p.aliceDevices.ALICEDEV };
            }),
        },
        self_signing_key_signature_flipped: {
            description: "one bit of the master key's signature on the self-signing key flipped",
            answer: variant((p) => flipSignature(p.selfSigning, ALICE, masterId)),
        },
        self_signing_key_signed_by_other_master: {
            description:
                "another master key of Alice's served; the self-signing key bears the first's " +
                "signature",
            answer: variant((p) => {
                p.master = structuredClone(rogueCross.master);
            }),
        },
        cross_signature_corrupted: {
            description: "one bit of the self-signing key's signature on ALICEDEV flipped",
            answer: variant((p) => flipSignature(p.aliceDevices.ALICEDEV, ALICE, selfSigningId)),
        },
        device_id_collides_with_self_signing_key: {
            description: "a second, self-signed device of Alice's whose ID is her self-signing key",
            answer: variant((p) => {
                p.aliceDevices[selfSigningPublic] = asServed(collidingKeys, "Alice's twin");
            }),
        },
        unsigned_changed: {
            description: "ALICEDEV's unsigned data changed (not covered by the signature)",
            answer: variant((p) => {
                p.aliceDevices.ALICEDEV.unsigned = {
                    device_display_name: "Renamed by the server",
                    org_example_note: "unsigned data may change freely",
                };
            }),
        },
    };

    await mkdir(outDir, { recursive: true });
    const versions = getVersions();
    const manifest = {
        // Which rust machine judged: the verdicts are those of this crypto crate.
        rust: {
            matrix_sdk_crypto: versions.matrix_sdk_crypto,
            vodozemac: versions.vodozemac,
        },
        ids: {
            alice: ALICE,
            bob: BOB,
            collidingDevice: selfSigningPublic,
        },
        variants: [],
    };
    for (const [name, { description, answer: body }] of Object.entries(variants)) {
        const answerText = JSON.stringify(body, null, 2) + "\n";
        const answerFile = `${name}.json`;
        const rustFile = `${name}.rust.json`;
        await writeFile(path.join(outDir, answerFile), answerText);
        const rows = await rustVerdicts(answerText);
        await writeFile(path.join(outDir, rustFile), JSON.stringify(rows, null, 2) + "\n");
        manifest.variants.push({ name, description, answer: answerFile, rust: rustFile });
    }
    await writeFile(path.join(outDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    for (const machine of [alice, bob, rogue, colliding]) machine.close();
}

await main();
