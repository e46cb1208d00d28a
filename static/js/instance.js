// instance.js — this page instance's `join.instance` id (signaling/PROTOCOL.md, "People,
// devices and instances").
// Why: a reload of the same tab must come back as the same participant (same id, kept in
// sessionStorage), while a second window or device is another participant (a new id).

const KEY = 'theraroom.instance';
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const VALID = /^[A-Za-z0-9_-]{1,64}$/;

function randomId(len = 16) {
  const bytes = new Uint8Array(len);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => ALPHABET[b % ALPHABET.length]).join('');
}

/** The instance id of this tab: created once, then the same for every reload. */
export function instanceId() {
  try {
    const kept = sessionStorage.getItem(KEY);
    if (kept && VALID.test(kept)) return kept;
    const fresh = randomId();
    sessionStorage.setItem(KEY, fresh);
    return fresh;
  } catch {
    return randomId(); // storage blocked: every load is a new instance, which is still valid
  }
}
