// The side-by-side of W2 and W2r: the same /keys/query answers (written by
// devlist_bench_workloads --write-answers DIR) ingested by the matrix-rust-sdk crypto machine
// (@matrix-org/matrix-sdk-crypto-wasm's OlmMachine, the version pinned in tests/interop).
//
//   node bench/rust_compare.mjs --answers DIR --users N [--runs R] [--devlistd FILE] [--json]
//
// The machine is driven as a client drives it: it tracks the users, its outgoing KeysQuery
// requests are answered with the part of the answer each one asked for, and only
// markRequestAsSent (parsing, verifying and storing the answer) is timed. W2r: the machine learns
// through a /sync that every user changed, and the changed answer comes back. --devlistd takes
// the JSON that devlist_bench_workloads --json printed, for the ratio lines.

import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const sdk = await import(
    pathToFileURL(
        path.join(here, "../tests/interop/node_modules/@matrix-org/matrix-sdk-crypto-wasm/node.mjs"),
    ).href
);
const { DeviceId, DeviceLists, OlmMachine, RequestType, UserId } = sdk;

function parseArgs(argv) {
    const args = { runs: 1, json: false };
    for (let i = 0; i < argv.length; ++i) {
        const a = argv[i];
        if (a === "--answers") args.answers = argv[++i];
        else if (a === "--users") args.users = Number(argv[++i]);
        else if (a === "--runs") args.runs = Number(argv[++i]);
        else if (a === "--devlistd") args.devlistd = argv[++i];
        else if (a === "--json") args.json = true;
        else throw new Error(`unknown argument ${a}`);
    }
    if (!args.answers || !args.users) {
        throw new Error("usage: rust_compare.mjs --answers DIR --users N [--runs R] [--devlistd FILE] [--json]");
    }
    return args;
}

// The part of `answer` that a KeysQuery request for `users` gets.
function subAnswer(answer, users) {
    const part = { failures: {}, device_keys: {}, master_keys: {}, self_signing_keys: {} };
    for (const u of users) {
        part.device_keys[u] = answer.device_keys[u] ?? {};
        if (answer.master_keys[u]) part.master_keys[u] = answer.master_keys[u];
        if (answer.self_signing_keys[u]) part.self_signing_keys[u] = answer.self_signing_keys[u];
    }
    return JSON.stringify(part);
}

// Answers every KeysQuery the machine wants; returns the wall and CPU seconds (the whole
// process, as devlistd's figure) spent in markRequestAsSent.
async function answerKeyQueries(machine, answer) {
    let seconds = 0;
    let cpu = 0;
    let answered = 0;
    for (let round = 0; round < 100; ++round) {
        const queries = (await machine.outgoingRequests()).filter(
            (r) => r.type === RequestType.KeysQuery,
        );
        if (queries.length === 0) break;
        for (const q of queries) {
            const users = Object.keys(JSON.parse(q.body).device_keys ?? {});
            const text = subAnswer(answer, users);
            const cpuStart = process.cpuUsage();
            const start = process.hrtime.bigint();
            await machine.markRequestAsSent(q.id, RequestType.KeysQuery, text);
            seconds += Number(process.hrtime.bigint() - start) / 1e9;
            const used = process.cpuUsage(cpuStart);
            cpu += (used.user + used.system) / 1e6;
            answered += users.filter((u) => u in answer.device_keys).length;
        }
    }
    return { seconds, cpu, answered };
}

async function countDevices(machine, users) {
    let n = 0;
    for (const u of users) {
        const held = await machine.getUserDevices(new UserId(u));
        n += held.devices().length;
        held.free();
    }
    return n;
}

async function oneRun(w2Text, w2rText) {
    const w2 = JSON.parse(w2Text);
    const w2r = JSON.parse(w2rText);
    const users = Object.keys(w2.device_keys);
    const machine = await OlmMachine.initialize(
        new UserId("@devlistd-bench:hs0.example.org"),
        new DeviceId("BENCHRUST"),
    );
    try {
        await machine.updateTrackedUsers(users.map((u) => new UserId(u)));
        const first = await answerKeyQueries(machine, w2);
        const stored = await countDevices(machine, users);
        const expected = users.reduce((n, u) => n + Object.keys(w2.device_keys[u]).length, 0);
        if (first.answered !== users.length || stored !== expected) {
            throw new Error(`W2: the machine holds ${stored} of ${expected} devices`);
        }
        await machine.receiveSyncChanges(
            "[]",
            new DeviceLists(users.map((u) => new UserId(u))),
            new Map(),
            new Set(),
        );
        const second = await answerKeyQueries(machine, w2r);
        const storedAfter = await countDevices(machine, users);
        const expectedAfter = users.reduce((n, u) => n + Object.keys(w2r.device_keys[u]).length, 0);
        if (second.answered !== users.length || storedAfter !== expectedAfter) {
            throw new Error(`W2r: the machine holds ${storedAfter} of ${expectedAfter} devices`);
        }
        return { w2: first.seconds, w2r: second.seconds, w2Cpu: first.cpu, w2rCpu: second.cpu };
    } finally {
        machine.close();
    }
}

function median(values) {
    const v = [...values].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

function seconds(s) {
    return s >= 1 ? `${s.toFixed(2)} s` : `${(s * 1000).toFixed(1)} ms`;
}

const args = parseArgs(process.argv.slice(2));
const w2Text = await readFile(path.join(args.answers, `w2-${args.users}.json`), "utf8");
const w2rText = await readFile(path.join(args.answers, `w2r-${args.users}.json`), "utf8");
const runs = [];
for (let i = 0; i < args.runs; ++i) runs.push(await oneRun(w2Text, w2rText));
const rust = {
    w2: median(runs.map((r) => r.w2)),
    w2r: median(runs.map((r) => r.w2r)),
    w2Cpu: median(runs.map((r) => r.w2Cpu)),
    w2rCpu: median(runs.map((r) => r.w2rCpu)),
};

let ours = null;
if (args.devlistd) {
    const report = JSON.parse(await readFile(args.devlistd, "utf8"));
    const find = (id) => report.figures.find((f) => f.id === id);
    ours = {
        w2: find("W2")?.seconds,
        w2r: find("W2r")?.seconds,
        w2Cpu: find("W2")?.cpu_seconds,
        w2rCpu: find("W2r")?.cpu_seconds,
        threads: report.threads,
    };
}
const label = `${args.users}x3`;
const lines = [];
const line = (id, name, rustSeconds, rustCpu, oursSeconds, oursCpu) => {
    let text = `${id} ${name}: ${seconds(rustSeconds)}, cpu ${seconds(rustCpu)}`;
    if (oursSeconds) {
        text += ` (devlistd ${seconds(oursSeconds)}, cpu ${seconds(oursCpu)}, on ${ours.threads} ` +
            `core${ours.threads > 1 ? "s" : ""}: devlistd ${(rustSeconds / oursSeconds).toFixed(1)}x ` +
            `faster by wall time, ${(rustCpu / oursCpu).toFixed(1)}x by CPU time)`;
    }
    lines.push(text);
};
line("R2", `rust-crypto-keys-query-${label}`, rust.w2, rust.w2Cpu, ours?.w2, ours?.w2Cpu);
line("R2r", `rust-crypto-keys-query-${label}-1pct-changed`, rust.w2r, rust.w2rCpu, ours?.w2r,
    ours?.w2rCpu);
if (args.json) {
    for (const l of lines) console.error(l);
    console.log(JSON.stringify({ users: args.users, runs: args.runs, rust, devlistd: ours }));
} else {
    for (const l of lines) console.log(l);
}
