// chat.mjs — chat between a waiting guest and the therapist (private, both ways), then in
// the room (both ways), shown as text (never HTML), over-the-limit messages refused
// inline, and afterwards the chat text (a unique marker) is nowhere in the server's data
// directory: not in server.log, not in the SQLite files.
// Env: BASE_URL, DEMO_JSON (see lib.mjs), THERAROOM_E2E_DATA_DIR (the server's data dir).
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { env, scenario, newPage, waitForJoined, waitForWaiting, waitForQueued, createSession, rest, log, sleep } from './lib.mjs';

const { base, demo } = env();
const token = demo.therapists[0].token;
const dataDir = process.env.THERAROOM_E2E_DATA_DIR;
const marker = `chatmark${crypto.randomBytes(8).toString('hex')}`;

async function chatLog(p) {
  return p.page.evaluate(() => window.theraroom.chatLog());
}

async function send(p, text, to) {
  const r = await p.page.evaluate(([t, x]) => window.theraroom.sendChat(t, x || undefined), [text, to || null]);
  if (!r.ok) throw new Error(`${p.name}: sending "${text}" failed: ${r.error}`);
}

/** Wait until `p` received a message containing `text`; returns it. */
async function received(p, text, { timeout = 10000 } = {}) {
  const end = Date.now() + timeout;
  let log_ = [];
  while (Date.now() < end) {
    log_ = await chatLog(p);
    const m = log_.find((x) => !x.mine && x.text.includes(text));
    if (m) return m;
    await sleep(150);
  }
  throw new Error(`${p.name}: no chat message with "${text}" within ${timeout} ms (log ${JSON.stringify(log_)})`);
}

/** Every file under `dir` (recursively). */
function filesUnder(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const f = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(f));
    else if (e.isFile()) out.push(f);
  }
  return out;
}

scenario('chat', async (browser) => {
  if (!dataDir) throw new Error('THERAROOM_E2E_DATA_DIR is not set: the scenario must read the server\'s data directory (scripts/e2e.sh exports it)');
  if (!fs.existsSync(dataDir)) throw new Error(`THERAROOM_E2E_DATA_DIR=${dataDir} does not exist`);
  const s = await createSession(base, token, { session_name: 'e2e chat', waiting_room: true });
  log('session', s.id, 'marker', marker);
  const result = {};
  try {
    const th = await newPage(browser, 'therapist');
    await th.page.goto(`${base}${s.join_url}?autojoin=1#access_token=${encodeURIComponent(token)}`);
    const thJoined = await waitForJoined(th);
    const gu = await newPage(browser, 'guest');
    await gu.page.goto(`${base}${s.join_url}?name=Chatty%20Guest&autojoin=1`);
    const w = await waitForWaiting(gu);
    await waitForQueued(th, w.participantId);

    // ---- waiting room: guest → hosts, host → the waiting guest privately ----
    await send(gu, `${marker} hello from the waiting room`);
    const atHost = await received(th, `${marker} hello from the waiting room`);
    if (atHost.from !== w.participantId || atHost.from_name !== 'Chatty Guest') throw new Error(`host got ${JSON.stringify(atHost)}`);
    await send(th, `${marker} I will let you in shortly`, w.participantId);
    const atGuest = await received(gu, `${marker} I will let you in shortly`);
    if (!atGuest.private || atGuest.from !== thJoined.participantId) throw new Error(`waiting guest got ${JSON.stringify(atGuest)}`);
    if (!(await gu.page.locator('#chat .chat-note').isVisible())) throw new Error('"Messages are not saved" note not visible');
    result.waiting_room_chat = 'both ways';

    // ---- admitted: room chat both ways, rendered as text ----
    await th.page.evaluate((pid) => window.theraroom.admit(pid), w.participantId);
    await waitForJoined(gu);
    await send(th, `${marker} welcome <b>in</b>`);
    await received(gu, `${marker} welcome <b>in</b>`);
    await send(gu, `${marker} thanks`);
    const back = await received(th, `${marker} thanks`);
    if (back.private) throw new Error('a room message arrived marked private');
    const shown = await gu.page.evaluate(() => {
      const items = [...document.querySelectorAll('#chat .chat-text')];
      return { html: items.some((n) => n.querySelector('b')), text: items.map((n) => n.textContent) };
    });
    if (shown.html || !shown.text.some((t) => t.includes('<b>in</b>'))) throw new Error(`chat must show text, not HTML: ${JSON.stringify(shown)}`);
    result.room_chat = 'both ways';

    // ---- unread badge: the guest's panel closed, a message arrives ----
    if (!(await gu.page.locator('#chat.open').count())) await gu.page.click('#chat-btn'); // read what came so far
    await gu.page.click('#chat-btn'); // close
    if (await gu.page.locator('#chat-badge').isVisible()) throw new Error('unread badge visible right after reading');
    await send(th, `${marker} are you there`);
    await received(gu, `${marker} are you there`);
    const badge = await gu.page.locator('#chat-badge').innerText();
    if (badge.trim() !== '1') throw new Error(`unread badge shows "${badge}", expected 1`);

    // ---- over the limit: refused inline, nothing sent ----
    const long = await gu.page.evaluate((m) => window.theraroom.sendChat(m + 'x'.repeat(1001)), marker);
    if (long.ok || long.error !== 'invalid_chat') throw new Error(`a 1,000+ character message was not refused: ${JSON.stringify(long)}`);
    const err = await gu.page.locator('#chat .chat-error').innerText();
    if (!err.includes('1,000')) throw new Error(`inline error for a long message: "${err}"`);

    // ---- too fast: the server drops some with rate_limited, shown inline ----
    await gu.page.evaluate((m) => { for (let i = 0; i < 9; i++) window.theraroom.sendChat(`${m} burst ${i}`); }, marker);
    await gu.page.waitForFunction(() => /too fast/.test(document.querySelector('#chat .chat-error').textContent), null, { timeout: 10000 });
    await received(th, `${marker} burst 0`);
    const burst = (await chatLog(th)).filter((m) => m.text.includes(`${marker} burst`)).length;
    if (burst >= 9) throw new Error('all 9 burst messages arrived; the rate limit did not apply');
    result.rate_limited_delivered = burst;

    // ---- the text is nowhere on the server's disk ----
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token });
    await sleep(500); // let the server finish writing its log lines for the end
    const files = filesUnder(dataDir);
    const needle = Buffer.from(marker, 'utf8');
    const hits = files.filter((f) => fs.readFileSync(f).includes(needle));
    if (hits.length) throw new Error(`chat text found on the server's disk in: ${hits.join(', ')}`);
    if (!files.some((f) => path.basename(f) === 'server.log')) throw new Error(`no server.log under ${dataDir}: ${files.join(', ')}`);
    result.files_checked = files.length;
    return result;
  } finally {
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token }).catch(() => {});
  }
});
