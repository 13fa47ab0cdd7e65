// Interop test: devlistd's key verifier against the matrix-rust-sdk crypto machine.
//
// Usage: node interop_test.mjs PATH/TO/devlist-interop-verify
//        (ctest runs it through run.sh; DEVLIST_INTEROP_KEEP=1 keeps the generated answers)
//
// make_keys.mjs creates real device and cross-signing keys with the rust machine, writes the
// genuine /keys/query answer and corrupted variants of it, and records the rust machine's
// verdicts. For every variant this test then asserts, row by row (user, device):
//   1. devlistd's verdict (accepted, cross_signed) equals the rust machine's, except where a
//      divergence is listed below with its reason;
//   2. both verdicts equal the outcome the variant is built to produce, so that two
//      implementations agreeing on a wrong verdict still fail.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

const verifyTool = process.argv[2];
if (!verifyTool) {
    console.error("usage: node interop_test.mjs PATH/TO/devlist-interop-verify");
    process.exit(2);
}

const ALICE = "@alice:example.org";
const BOB = "@bob:example.org";

const crossSigned = { accepted: true, cross_signed: true };
const notCrossSigned = { accepted: true, cross_signed: false };
const rejected = { accepted: false, cross_signed: false };

// An expected row where both implementations must agree.
const row = (user, device, verdict) => ({ user, device, rust: verdict, devlistd: verdict });
// An expected row where they differ on purpose; `why` says which rule makes the difference.
const divergent = (user, device, { rust, devlistd, why }) => ({
    user,
    device,
    rust,
    devlistd,
    why,
});

const bobUntouched = row(BOB, "BOBDEV", notCrossSigned); // Bob has no cross-signing identity

// The outcome each variant is built to produce, as complete row lists: a device an
// implementation holds beyond these (one filed under another name, say) fails the test too.
// `ids` are the manifest's, for device IDs that exist only once the keys do.
const EXPECTED = {
    genuine: () => [row(ALICE, "ALICEDEV", crossSigned), bobUntouched],
    self_signature_flipped: () => [row(ALICE, "ALICEDEV", rejected), bobUntouched],
    algorithm_changed_after_signing: () => [row(ALICE, "ALICEDEV", rejected), bobUntouched],
    unknown_field_added_after_signing: () => [row(ALICE, "ALICEDEV", rejected), bobUntouched],
    user_id_mismatch: () => [row(ALICE, "ALICEDEV", crossSigned), row(ALICE, "BOBDEV", rejected)],
    device_id_mismatch: () => [row(ALICE, "NOTALICEDEV", rejected), bobUntouched],
    // A broken link from the master key to the self-signing key leaves the devices valid but not
    // cross-signed.
    self_signing_key_signature_flipped: () => [
        row(ALICE, "ALICEDEV", notCrossSigned),
        bobUntouched,
    ],
    self_signing_key_signed_by_other_master: () => [
        row(ALICE, "ALICEDEV", notCrossSigned),
        bobUntouched,
    ],
    cross_signature_corrupted: () => [row(ALICE, "ALICEDEV", notCrossSigned), bobUntouched],
    device_id_collides_with_self_signing_key: (ids) => [
        row(ALICE, "ALICEDEV", crossSigned),
        divergent(ALICE, ids.collidingDevice, {
            rust: notCrossSigned,
            devlistd: rejected,
            why:
                "device IDs and cross-signing key IDs share one namespace; the spec says " +
                "clients MUST refuse to verify a user whose device ID collides with a " +
                "cross-signing key. devlistd refuses the colliding device (DESIGN.md), the " +
                "pinned rust machine keeps it",
        }),
        bobUntouched,
    ],
    unsigned_changed: () => [row(ALICE, "ALICEDEV", crossSigned), bobUntouched],
};

// Why devlistd must reject a row, where a rejection for another reason would hide a bug (the
// colliding device's ID is a base64 key: a stricter ID check could reject it first).
const DEVLISTD_REASON = {
    device_id_collides_with_self_signing_key: /collides with a cross-signing key/,
};

let workDir;
let manifest;

before(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), "devlist-interop-"));
    await run(process.execPath, [path.join(here, "make_keys.mjs"), workDir], { timeout: 60_000 });
    manifest = JSON.parse(await readFile(path.join(workDir, "manifest.json"), "utf8"));
    const { matrix_sdk_crypto, vodozemac } = manifest.rust;
    console.log(`# rust machine: matrix-sdk-crypto ${matrix_sdk_crypto}, vodozemac ${vodozemac}`);
});

after(async () => {
    if (!workDir) return;
    if (process.env.DEVLIST_INTEROP_KEEP) {
        console.log(`# generated answers kept in ${workDir}`);
    } else {
        await rm(workDir, { recursive: true, force: true });
    }
});

const rowKey = (r) => `${r.user} ${r.device}`;
const verdictOf = (r) => (r ? { accepted: r.accepted, cross_signed: r.cross_signed } : rejected);
const sameVerdict = (a, b) => a.accepted === b.accepted && a.cross_signed === b.cross_signed;
const show = (v) =>
    v.accepted ? (v.cross_signed ? "accepted, cross-signed" : "accepted") : "rejected";

function byKey(rows) {
    const map = new Map();
    for (const r of rows) {
        assert.ok(!map.has(rowKey(r)), `duplicate row ${rowKey(r)}`);
        map.set(rowKey(r), r);
    }
    return map;
}

// A side-by-side table of everything known about one variant, for failure messages.
function table(keys, rust, devlistd, expected) {
    const lines = [...keys].sort().map((k) => {
        const d = devlistd.get(k);
        const reason = d?.reason ? ` (${d.reason})` : "";
        const e = expected.get(k);
        const want = e ? `rust ${show(e.rust)}, devlistd ${show(e.devlistd)}` : "no row";
        const why = e?.why ? ` [intended divergence: ${e.why}]` : "";
        const r = verdictOf(rust.get(k));
        const seen = `rust ${show(r)} | devlistd ${show(verdictOf(d))}${reason}`;
        return `  ${k}: ${seen} | expected ${want}${why}`;
    });
    return lines.join("\n");
}

test("make_keys.mjs produced exactly the variants this test expects", () => {
    assert.deepEqual(manifest.variants.map((v) => v.name).sort(), Object.keys(EXPECTED).sort());
});

for (const [name, expectedRows] of Object.entries(EXPECTED)) {
    test(`${name}: devlistd and the rust machine give the expected verdicts`, async () => {
        const entry = manifest.variants.find((v) => v.name === name);
        assert.ok(entry, `variant ${name} was not generated`);
        const answerPath = path.join(workDir, entry.answer);
        const rust = byKey(JSON.parse(await readFile(path.join(workDir, entry.rust), "utf8")));
        const { stdout } = await run(verifyTool, [answerPath], { timeout: 30_000 });
        const devlistd = byKey(JSON.parse(stdout));
        const expected = byKey(expectedRows(manifest.ids));

        const keys = new Set([...rust.keys(), ...devlistd.keys(), ...expected.keys()]);
        const problems = [];
        for (const k of keys) {
            const e = expected.get(k);
            const r = verdictOf(rust.get(k));
            const d = verdictOf(devlistd.get(k));
            if (!e) {
                // A device nobody expects: an implementation may list it, but never accept it.
                if (r.accepted) problems.push(`${k}: the rust machine accepted an unknown device`);
                if (d.accepted) problems.push(`${k}: devlistd accepted an unknown device`);
                continue;
            }
            if (!e.why && !sameVerdict(r, d)) {
                problems.push(`${k}: devlistd says ${show(d)}, the rust machine says ${show(r)}`);
            }
            if (!sameVerdict(r, e.rust)) {
                problems.push(`${k}: the rust machine says ${show(r)}, expected ${show(e.rust)}`);
            }
            if (!sameVerdict(d, e.devlistd)) {
                problems.push(`${k}: devlistd says ${show(d)}, expected ${show(e.devlistd)}`);
            }
            // Both lists carry every device the answer lists, whatever the verdict.
            if (!rust.has(k)) problems.push(`${k}: no rust row`);
            if (!devlistd.has(k)) problems.push(`${k}: no devlistd row`);
        }
        const reason = DEVLISTD_REASON[name];
        if (reason) {
            const refused = [...devlistd.values()].filter((r) => !r.accepted);
            if (!refused.some((r) => reason.test(r.reason ?? ""))) {
                problems.push(`devlistd refused no device for the reason ${reason}`);
            }
        }
        assert.deepEqual(
            problems,
            [],
            `${name}: ${entry.description}\n${table(keys, rust, devlistd, expected)}`,
        );
    });
}
