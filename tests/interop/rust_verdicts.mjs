// The rust crypto machine's verdicts on a /keys/query answer.
//
// A fresh OlmMachine (its own user, in-memory store) tracks the users of the answer, sends the
// key query it then wants, and gets the answer back as the homeserver's response. What it kept
// is its verdict: a device it returns from getUserDevices was accepted, and isCrossSignedByOwner
// says whether the owner's self-signing key (checked against the owner's master key) signed it.
// Fresh each time, so that no earlier answer colours the verdict (the rust machine, like
// devlistd, pins keys it has seen).

import {
    DeviceId,
    OlmMachine,
    RequestType,
    UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";

const JUDGE_USER = "@carol:example.org";
const JUDGE_DEVICE = "CAROLDEV";

// Rows {user, device, accepted, cross_signed}, sorted by user then device: one for every device
// the answer lists under device_keys (by its map keys) and one for every device the machine
// holds afterwards, so that a device filed under another name shows up too.
export async function rustVerdicts(answerText) {
    const answer = JSON.parse(answerText);
    const users = Object.keys(answer.device_keys ?? {});
    const judge = await OlmMachine.initialize(new UserId(JUDGE_USER), new DeviceId(JUDGE_DEVICE));
    try {
        await judge.updateTrackedUsers(users.map((u) => new UserId(u)));
        const query = await pendingKeyQuery(judge, users);
        await judge.markRequestAsSent(query.id, RequestType.KeysQuery, answerText);

        const rows = new Map();
        const row = (user, device) => {
            const key = JSON.stringify([user, device]);
            if (!rows.has(key)) {
                rows.set(key, { user, device, accepted: false, cross_signed: false });
            }
            return rows.get(key);
        };
        for (const user of users) {
            for (const device of Object.keys(answer.device_keys[user])) row(user, device);
            const held = await judge.getUserDevices(new UserId(user));
            for (const device of held.devices()) {
                const r = row(user, device.deviceId.toString());
                r.accepted = true;
                r.cross_signed = device.isCrossSignedByOwner();
                device.free();
            }
            held.free();
        }
        return [...rows.values()].sort(
            (a, b) => a.user.localeCompare(b.user) || a.device.localeCompare(b.device),
        );
    } finally {
        judge.close();
    }
}

// The KeysQuery request the machine wants sent; it must ask for every user of the answer, or
// the machine's verdict would not be about this answer.
async function pendingKeyQuery(machine, users) {
    const queries = (await machine.outgoingRequests()).filter(
        (r) => r.type === RequestType.KeysQuery,
    );
    for (const query of queries) {
        const asked = Object.keys(JSON.parse(query.body).device_keys ?? {});
        if (users.every((u) => asked.includes(u))) return query;
    }
    throw new Error(
        `the rust machine sent no key query covering ${users.join(", ")}: ` +
            queries.map((q) => q.body).join(" | "),
    );
}
