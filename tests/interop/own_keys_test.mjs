// Interop test: the keys devlistd publishes for its own device, judged by the matrix-rust-sdk
// crypto machine.
//
// Usage: node own_keys_test.mjs DIR
//        (ctest runs it through run.sh own-keys, after devlist-interop-own-keys wrote DIR)
//
// DIR holds what a peer of @bot:localhost got from the test homeserver once devlistd had
// published the bot's keys (see own_keys_answers.cpp): keys_query.json, claim_one_time_key.json,
// claim_fallback_key.json, and bot.json with the bot's public keys and the private halves
// devlistd handed out for the two claimed keys.
//
// Alice's machine gets the /keys/query answer and the one-time-key claim, Carol's the same query
// and the fallback-key claim. Each must accept the bot's device, see it cross-signed by its
// owner's master key (the one devlistd created), and open an Olm session: encryptToDeviceEvent
// gives a pre-key message built on the claimed key, which the bot's keys then decrypt. Negative
// checks, each on a fresh machine, corrupt one signature devlistd made and expect the rust
// machine to notice, so that the positive checks cannot pass by accident.
//
// Prints PASS or FAIL per check; exits 1 if any failed.

import crypto from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";

import {
    DeviceId,
    OlmMachine,
    OtherUserIdentity,
    RequestType,
    UserId,
    getVersions,
    initAsync,
} from "@matrix-org/matrix-sdk-crypto-wasm";

const OLM_V1 = "m.olm.v1.curve25519-aes-sha2";
const SIGNED_CURVE25519 = "signed_curve25519";

// ---- checks ----

let failures = 0;

// Runs one check: it passes unless it throws. A failed check does not stop the others, but a
// check whose premise failed (no device, say) is reported as failing too.
async function check(name, body) {
    try {
        await body();
        console.log(`PASS ${name}`);
        return true;
    } catch (e) {
        failures += 1;
        console.log(`FAIL ${name}\n     ${String(e?.message ?? e).replaceAll("\n", "\n     ")}`);
        return false;
    }
}

function expect(condition, message) {
    if (!condition) throw new Error(message);
}

function expectEqual(actual, expected, what) {
    expect(
        actual === expected,
        `${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`,
    );
}

// ---- Curve25519 and the Olm pre-key message, with node's own crypto ----

const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const X25519_SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

const unb64 = (text) => Buffer.from(text, "base64");
const b64 = (bytes) => Buffer.from(bytes).toString("base64").replace(/=+$/, "");

function x25519Private(secret) {
    expectEqual(secret.length, 32, "Curve25519 secret length");
    return crypto.createPrivateKey({
        key: Buffer.concat([X25519_PKCS8_PREFIX, secret]),
        format: "der",
        type: "pkcs8",
    });
}

function x25519PublicOf(secret) {
    const spki = crypto
        .createPublicKey(x25519Private(secret))
        .export({ format: "der", type: "spki" });
    return spki.subarray(X25519_SPKI_PREFIX.length);
}

function x25519(secret, publicKey) {
    return crypto.diffieHellman({
        privateKey: x25519Private(secret),
        publicKey: crypto.createPublicKey({
            key: Buffer.concat([X25519_SPKI_PREFIX, publicKey]),
            format: "der",
            type: "spki",
        }),
    });
}

const hkdf = (ikm, info, length) =>
    Buffer.from(crypto.hkdfSync("sha256", ikm, Buffer.alloc(0), Buffer.from(info), length));
const hmac = (key, data) => crypto.createHmac("sha256", key).update(data).digest();

// The fields of a protobuf message as Olm writes it: varints (wire type 0) and byte strings
// (wire type 2), by field number.
function protobufFields(bytes) {
    const fields = new Map();
    let pos = 0;
    const varint = () => {
        let value = 0;
        for (let shift = 0; ; shift += 7) {
            expect(pos < bytes.length && shift < 35, "truncated varint in an Olm message");
            const b = bytes[pos++];
            value += (b & 0x7f) * 2 ** shift;
            if (!(b & 0x80)) return value;
        }
    };
    while (pos < bytes.length) {
        const tag = varint();
        const field = tag >> 3;
        if ((tag & 7) === 0) {
            fields.set(field, varint());
        } else if ((tag & 7) === 2) {
            const length = varint();
            expect(pos + length <= bytes.length, "truncated field in an Olm message");
            fields.set(field, bytes.subarray(pos, pos + length));
            pos += length;
        } else {
            throw new Error(`unexpected protobuf wire type ${tag & 7} in an Olm message`);
        }
    }
    return fields;
}

const OLM_VERSION = 3;
const OLM_MAC_LENGTH = 8;

// An Olm pre-key message (type 0): the keys the sender used for the 3DH and the first message.
function parsePreKeyMessage(body) {
    const bytes = unb64(body);
    expectEqual(bytes[0], OLM_VERSION, "pre-key message version");
    const f = protobufFields(bytes.subarray(1));
    for (const [n, name] of [
        [1, "one_time_key"],
        [2, "base_key"],
        [3, "identity_key"],
        [4, "message"],
    ]) {
        expect(Buffer.isBuffer(f.get(n)), `the pre-key message has no ${name}`);
    }
    return { oneTimeKey: f.get(1), baseKey: f.get(2), identityKey: f.get(3), message: f.get(4) };
}

// Opens a pre-key message as its recipient does (Olm specification: 3DH, the root and chain
// keys from HKDF "OLM_ROOT", the message keys from HKDF "OLM_KEYS", AES-256-CBC, and an HMAC
// truncated to 8 bytes), with the recipient's identity secret and the secret of the claimed key.
function openPreKeyMessage(preKey, identitySecret, oneTimeSecret) {
    const shared = Buffer.concat([
        x25519(oneTimeSecret, preKey.identityKey),
        x25519(identitySecret, preKey.baseKey),
        x25519(oneTimeSecret, preKey.baseKey),
    ]);
    let chainKey = hkdf(shared, "OLM_ROOT", 64).subarray(32);

    const message = preKey.message;
    expectEqual(message[0], OLM_VERSION, "message version");
    expect(message.length > 1 + OLM_MAC_LENGTH, "the inner Olm message is too short");
    const signed = message.subarray(0, message.length - OLM_MAC_LENGTH);
    const mac = message.subarray(message.length - OLM_MAC_LENGTH);
    const f = protobufFields(signed.subarray(1));
    const chainIndex = f.get(2) ?? 0;
    const ciphertext = f.get(4);
    expect(Buffer.isBuffer(ciphertext), "the inner Olm message has no ciphertext");
    expect(chainIndex < 100, `unexpected chain index ${chainIndex}`);
    for (let i = 0; i < chainIndex; ++i) chainKey = hmac(chainKey, Buffer.from([2]));

    const keys = hkdf(hmac(chainKey, Buffer.from([1])), "OLM_KEYS", 80);
    const expectedMac = hmac(keys.subarray(32, 64), signed).subarray(0, OLM_MAC_LENGTH);
    expect(
        crypto.timingSafeEqual(mac, expectedMac),
        "the message's MAC does not verify with the keys derived from devlistd's secrets",
    );
    const aesKey = keys.subarray(0, 32);
    const decipher = crypto.createDecipheriv("aes-256-cbc", aesKey, keys.subarray(64));
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString("utf8");
}

// ---- the rust machine ----

async function newMachine(user, device) {
    const machine = await OlmMachine.initialize(new UserId(user), new DeviceId(device));
    // Acknowledge the machine's own key upload as a homeserver would, so that the only requests
    // left are the ones under test.
    for (const r of await machine.outgoingRequests()) {
        if (r.type === RequestType.KeysUpload) {
            await machine.markRequestAsSent(
                r.id,
                RequestType.KeysUpload,
                JSON.stringify({ one_time_key_counts: { [SIGNED_CURVE25519]: 50 } }),
            );
        }
    }
    return machine;
}

// Tracks the bot and answers the machine's /keys/query for it with `answerText`; any other key
// query (none is expected) gets an empty answer.
async function answerKeyQuery(machine, bot, answerText) {
    await machine.updateTrackedUsers([new UserId(bot)]);
    let answered = false;
    for (const r of await machine.outgoingRequests()) {
        if (r.type !== RequestType.KeysQuery) continue;
        const asked = Object.keys(JSON.parse(r.body).device_keys ?? {});
        const covers = asked.includes(bot);
        await machine.markRequestAsSent(
            r.id,
            RequestType.KeysQuery,
            covers ? answerText : JSON.stringify({ device_keys: {}, failures: {} }),
        );
        answered ||= covers;
    }
    expect(answered, `the machine sent no /keys/query for ${bot}`);
}

// Asks the machine which one-time keys it wants and answers with `answerText`.
async function answerKeyClaim(machine, bot, device, answerText) {
    const claim = await machine.getMissingSessions([new UserId(bot)]);
    expect(claim, "getMissingSessions asked for no key, though the machine has no session");
    expectEqual(claim.type, RequestType.KeysClaim, "request type of getMissingSessions");
    const wanted = JSON.parse(claim.body).one_time_keys ?? {};
    expectEqual(
        JSON.stringify(wanted),
        JSON.stringify({ [bot]: { [device]: SIGNED_CURVE25519 } }),
        "the keys the machine claims",
    );
    await machine.markRequestAsSent(claim.id, RequestType.KeysClaim, answerText);
}

// The one key a /keys/claim answer holds for the bot's device: {keyId, key}.
function claimedKey(answer, bot, device) {
    const keys = answer.one_time_keys?.[bot]?.[device] ?? {};
    const entries = Object.entries(keys);
    expectEqual(entries.length, 1, "keys in the claim answer for the bot's device");
    const [fullId, key] = entries[0];
    expect(fullId.startsWith(`${SIGNED_CURVE25519}:`), `claimed key ${fullId} is not signed`);
    return { keyId: fullId.slice(SIGNED_CURVE25519.length + 1), key };
}

// Flips one bit of a signature; the result is still 64 bytes of valid base64, so only the
// signature check itself can catch it.
function flipSignature(signed, signer, keyId) {
    const signature = signed.signatures?.[signer]?.[keyId];
    expect(signature, `no signature ${signer} ${keyId} to corrupt`);
    const bytes = unb64(signature);
    bytes[bytes.length >> 1] ^= 0x01;
    signed.signatures[signer][keyId] = b64(bytes);
}

// ---- the scenario ----

// What devlistd handed out must be the private halves of what was claimed: derived here, the
// public keys must match.
async function handoutChecks(run) {
    const { bot } = run;
    for (const [what, c] of Object.entries(run.claims)) {
        await check(`the claimed ${what} is the one whose private half devlistd hands out`, () => {
            const { keyId, key } = claimedKey(JSON.parse(c.answerText), bot.user_id, bot.device_id);
            expectEqual(keyId, c.handout.key_id, "key ID");
            expectEqual(key.key, c.handout.public_key, "public key");
            expectEqual(key.fallback === true, c.fallback, `"fallback": true in the claimed key`);
            expectEqual(
                b64(x25519PublicOf(unb64(c.handout.private_key))),
                c.handout.public_key,
                "public key of the handed-out private key",
            );
        });
    }
    await check("the bot's Curve25519 identity secret matches its published key", () => {
        expectEqual(b64(x25519PublicOf(unb64(bot.curve25519_secret))), bot.curve25519, "key");
    });
}

// A peer's machine gets the /keys/query answer and the claim of `peer.what`, and must accept the
// device, see it cross-signed, and open a session devlistd's keys can read.
async function sessionChecks(run, peer) {
    const { bot } = run;
    const BOT = bot.user_id;
    const DEVICE = bot.device_id;
    const { answerText, handout } = run.claims[peer.what];
    const label = `${peer.user} (${peer.what})`;
    const machine = await newMachine(peer.user, peer.device);
    let device;
    try {
        const accepted = await check(`${label}: accepts devlistd's device`, async () => {
            await answerKeyQuery(machine, BOT, run.queryText);
            device = await machine.getDevice(new UserId(BOT), new DeviceId(DEVICE));
            expect(device, `the machine holds no device ${DEVICE} of ${BOT}`);
            expectEqual(device.ed25519Key?.toBase64(), bot.ed25519, "ed25519 key");
            expectEqual(device.curve25519Key?.toBase64(), bot.curve25519, "curve25519 key");
        });
        await check(`${label}: the device is cross-signed by its owner, not trusted`, () => {
            expect(accepted, "no device (see above)");
            expect(device.isCrossSignedByOwner(), "isCrossSignedByOwner() is false");
            expect(!device.isLocallyTrusted(), "isLocallyTrusted() is true");
            // The peer has not verified the bot's identity: signed by its owner, not trusted.
            expect(!device.isCrossSigningTrusted(), "isCrossSigningTrusted() is true");
        });
        await check(`${label}: the bot's identity has devlistd's master key`, async () => {
            const identity = await machine.getIdentity(new UserId(BOT));
            expect(identity, `getIdentity(${BOT}) is undefined`);
            expect(identity instanceof OtherUserIdentity, "not an OtherUserIdentity");
            const master = JSON.parse(identity.masterKey);
            const masterPublic = bot.cross_signing.master;
            expectEqual(master.keys?.[`ed25519:${masterPublic}`], masterPublic, "master key");
            expectEqual(
                JSON.stringify(master.keys),
                JSON.stringify(run.query.master_keys?.[BOT]?.keys),
                "master key as served",
            );
            const selfSigning = JSON.parse(identity.selfSigningKey);
            expectEqual(
                selfSigning.keys?.[run.selfSigningId],
                bot.cross_signing.self_signing,
                "self-signing key",
            );
        });

        let content;
        const encrypted = await check(`${label}: encryptToDeviceEvent succeeds`, async () => {
            expect(accepted, "no device (see above)");
            await answerKeyClaim(machine, BOT, DEVICE, answerText);
            const again = await machine.getMissingSessions([new UserId(BOT)]);
            expect(again == null, `the machine still wants a key after the claim: ${again?.body}`);
            content = JSON.parse(await device.encryptToDeviceEvent("m.dummy", {}));
        });
        let preKey;
        await check(`${label}: the result is a pre-key message to devlistd's device`, () => {
            expect(encrypted, "nothing encrypted (see above)");
            expectEqual(content.algorithm, OLM_V1, "algorithm");
            const peerKey = machine.identityKeys.curve25519.toBase64();
            expectEqual(content.sender_key, peerKey, "sender_key");
            expectEqual(
                JSON.stringify(Object.keys(content.ciphertext ?? {})),
                JSON.stringify([bot.curve25519]),
                "ciphertext recipients",
            );
            const message = content.ciphertext[bot.curve25519];
            expectEqual(message.type, 0, "Olm message type (0: pre-key)");
            preKey = parsePreKeyMessage(message.body);
            expectEqual(b64(preKey.oneTimeKey), handout.public_key, `the message's ${peer.what}`);
            expectEqual(b64(preKey.identityKey), peerKey, "the message's sender identity key");
        });
        await check(`${label}: devlistd's keys decrypt the message`, () => {
            expect(preKey, "no pre-key message (see above)");
            const plaintext = JSON.parse(
                openPreKeyMessage(
                    preKey,
                    unb64(bot.curve25519_secret),
                    unb64(handout.private_key),
                ),
            );
            expectEqual(plaintext.type, "m.dummy", "event type");
            expectEqual(plaintext.sender, peer.user, "sender");
            expectEqual(plaintext.sender_device_keys?.device_id, peer.device, "sender device");
            expectEqual(plaintext.recipient, BOT, "recipient");
            expectEqual(plaintext.recipient_keys?.ed25519, bot.ed25519, "recipient_keys.ed25519");
            expectEqual(
                plaintext.keys?.ed25519,
                machine.identityKeys.ed25519.toBase64(),
                "keys.ed25519 (the sender's)",
            );
        });
    } finally {
        device?.free();
        machine.close();
    }
}

// One signature devlistd made, corrupted, on a fresh machine each: the rust machine must notice.
async function negativeChecks(run) {
    const BOT = run.bot.user_id;
    const DEVICE = run.bot.device_id;
    const corruptedQuery = (signerKeyId) => {
        const answer = structuredClone(run.query);
        flipSignature(answer.device_keys[BOT][DEVICE], BOT, signerKeyId);
        return JSON.stringify(answer);
    };
    const withMachine = async (user, device, body) => {
        const machine = await newMachine(user, device);
        try {
            await body(machine);
        } finally {
            machine.close();
        }
    };
    const botDevice = (machine) => machine.getDevice(new UserId(BOT), new DeviceId(DEVICE));

    await check("corrupt: the device's self-signature flipped: the device is refused", () =>
        withMachine("@dave:localhost", "DAVEDEV", async (machine) => {
            await answerKeyQuery(machine, BOT, corruptedQuery(`ed25519:${DEVICE}`));
            const device = await botDevice(machine);
            expect(!device, "the rust machine accepted a device whose self-signature is broken");
        }),
    );
    await check("corrupt: the device's cross-signature flipped: not cross-signed by its owner", () =>
        withMachine("@erin:localhost", "ERINDEV", async (machine) => {
            await answerKeyQuery(machine, BOT, corruptedQuery(run.selfSigningId));
            const device = await botDevice(machine);
            expect(device, "the device itself is still valid, yet it was refused");
            const crossSigned = device.isCrossSignedByOwner();
            device.free();
            expect(!crossSigned, "the device is still cross-signed by its owner");
        }),
    );
    await check("corrupt: the one-time key's signature flipped in the claim: no session", () =>
        withMachine("@frank:localhost", "FRANKDEV", async (machine) => {
            await answerKeyQuery(machine, BOT, run.queryText);
            const answer = JSON.parse(run.claims["one-time key"].answerText);
            const { keyId } = claimedKey(answer, BOT, DEVICE);
            const key = answer.one_time_keys[BOT][DEVICE][`${SIGNED_CURVE25519}:${keyId}`];
            flipSignature(key, BOT, `ed25519:${DEVICE}`);
            await answerKeyClaim(machine, BOT, DEVICE, JSON.stringify(answer));
            const device = await botDevice(machine);
            expect(device, "no device");
            let opened = true;
            try {
                await device.encryptToDeviceEvent("m.dummy", {});
            } catch {
                opened = false;
            } finally {
                device.free();
            }
            expect(!opened, "the rust machine opened a session from a key with a broken signature");
        }),
    );
}

async function main() {
    const dir = process.argv[2];
    if (!dir) {
        console.error("usage: node own_keys_test.mjs DIR");
        process.exit(2);
    }
    const read = (name) => readFile(path.join(dir, name), "utf8");
    const bot = JSON.parse(await read("bot.json"));
    const queryText = await read("keys_query.json");
    const run = {
        bot,
        queryText,
        query: JSON.parse(queryText),
        selfSigningId: `ed25519:${bot.cross_signing.self_signing}`,
        claims: {
            "one-time key": {
                answerText: await read("claim_one_time_key.json"),
                handout: bot.one_time_key,
                fallback: false,
            },
            "fallback key": {
                answerText: await read("claim_fallback_key.json"),
                handout: bot.fallback_key,
                fallback: true,
            },
        },
    };

    await initAsync();
    const versions = getVersions();
    console.log(
        `# rust machine: matrix-sdk-crypto ${versions.matrix_sdk_crypto}, ` +
            `vodozemac ${versions.vodozemac}; devlistd's device ${bot.user_id} ${bot.device_id}`,
    );

    await handoutChecks(run);
    // Alice opens a session from the one-time key, Carol from the fallback key.
    const alice = { user: "@alice:localhost", device: "ALICEDEV", what: "one-time key" };
    const carol = { user: "@carol:localhost", device: "CAROLDEV", what: "fallback key" };
    await sessionChecks(run, alice);
    await sessionChecks(run, carol);
    await negativeChecks(run);

    console.log(failures === 0 ? "# all checks passed" : `# ${failures} check(s) FAILED`);
    process.exit(failures === 0 ? 0 : 1);
}

await main();
