// lib.mjs — shared helpers for the Chromium end-to-end scenarios.
// Why: every scenario launches the same Debian Chromium with fake media, opens one
// isolated context per participant, and polls window.theraroom (static/js/join.js) to
// decide whether media really flows. Failures print each page's console log.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * A speech-like fake microphone: a voiced tone (150 Hz with harmonics) whose loudness
 * rises and falls four times a second, as syllables do. Chromium's own fake microphone
 * only beeps briefly once a second, which the server rightly does not count as speech;
 * this lets the scenarios see active speakers. Written once per run as 16-bit mono WAV
 * (Chromium loops it).
 */
export function voiceWav(seconds = 6, rate = 16000) {
  const file = path.join(os.tmpdir(), `theraroom-e2e-voice-${rate}.wav`);
  if (fs.existsSync(file)) return file;
  const n = seconds * rate;
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0); buf.writeUInt32LE(36 + n * 2, 4); buf.write('WAVE', 8);
  buf.write('fmt ', 12); buf.writeUInt32LE(16, 16); buf.writeUInt16LE(1, 20); buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24); buf.writeUInt32LE(rate * 2, 28); buf.writeUInt16LE(2, 32); buf.writeUInt16LE(16, 34);
  buf.write('data', 36); buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const envelope = 0.35 + 0.65 * Math.abs(Math.sin(Math.PI * 4 * t));
    const f = 150 + 30 * Math.sin(2 * Math.PI * 0.5 * t);
    let v = 0;
    for (let h = 1; h <= 5; h++) v += Math.sin(2 * Math.PI * f * h * t) / h;
    buf.writeInt16LE(Math.round(Math.max(-1, Math.min(1, 0.3 * envelope * v)) * 32767), 44 + i * 2);
  }
  fs.writeFileSync(file, buf);
  return file;
}

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  // scripts/e2e.sh THERAROOM_E2E_TLS=1: the server's certificate is self-signed.
  ...((process.env.BASE_URL || '').startsWith('https:') ? ['--ignore-certificate-errors'] : []),
];

export function env() {
  const base = process.env.BASE_URL;
  const demoRaw = process.env.DEMO_JSON;
  if (!base || !demoRaw) throw new Error('set BASE_URL (e.g. http://127.0.0.1:8080) and DEMO_JSON (output of `theraroom demo --json`, or a path to it)');
  const text = demoRaw.trim().startsWith('{') ? demoRaw : fs.readFileSync(demoRaw, 'utf8');
  return { base: base.replace(/\/+$/, ''), demo: JSON.parse(text) };
}

export function log(...a) {
  console.error(`[${new Date().toISOString().slice(11, 23)}]`, ...a);
}

export async function launch() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (apt-get install -y chromium)`);
  const args = [...CHROMIUM_ARGS, `--use-file-for-fake-audio-capture=${voiceWav()}`];
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

const allPages = [];

/** One participant = one isolated browser context (own sessionStorage, own "user"). */
export async function newPage(browser, name, { viewport = { width: 640, height: 480 }, deviceScaleFactor = 1 } = {}) {
  const context = await browser.newContext({ viewport, deviceScaleFactor });
  const page = await context.newPage();
  const p = { name, context, page, logs: [] };
  const push = (line) => {
    p.logs.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
    if (p.logs.length > 400) p.logs.shift();
  };
  page.on('console', (m) => push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => push(`PAGE ERROR: ${e.stack || e.message}`));
  page.on('requestfailed', (r) => push(`request failed: ${r.method()} ${r.url()} ${r.failure() && r.failure().errorText}`));
  page.on('websocket', (ws) => {
    push(`websocket open ${ws.url()}`);
    ws.on('close', () => push('websocket closed'));
  });
  allPages.push(p);
  return p;
}

/** Print every page's collected console output (call on failure). */
export function dumpLogs(pages = allPages) {
  for (const p of pages) {
    console.error(`\n----- console of ${p.name} (${p.logs.length} lines) -----`);
    for (const l of p.logs) console.error(l);
  }
}

export async function hookState(p) {
  return p.page.evaluate(() => {
    const t = window.theraroom;
    if (!t) return null;
    return { state: t.state, participantId: t.participantId, personId: t.personId, host: t.host,
      errorCode: t.errorCode, resumed: t.resumed, timings: t.timings, remote: t.remoteParticipants(),
      message: (document.getElementById('message') || {}).innerText || '' };
  }).catch((e) => ({ state: 'unavailable', error: String(e) }));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Wait until window.theraroom.state === 'joined'; fails fast on 'error'/'ended'. */
export async function waitForJoined(p, { timeout = 20000 } = {}) {
  const end = Date.now() + timeout;
  let s;
  while (Date.now() < end) {
    s = await hookState(p);
    if (s && s.state === 'joined') return s;
    if (s && (s.state === 'error' || s.state === 'ended')) {
      throw new Error(`${p.name}: expected to join, got state ${s.state} (${s.errorCode}): ${s.message}`);
    }
    await sleep(200);
  }
  throw new Error(`${p.name}: not joined after ${timeout} ms (last: ${JSON.stringify(s)})`);
}

/** Wait until the page sits in the waiting room (state 'waiting'); fails fast on 'error'/'ended'/'joined'. */
export async function waitForWaiting(p, { timeout = 20000 } = {}) {
  const end = Date.now() + timeout;
  let s;
  while (Date.now() < end) {
    s = await hookState(p);
    if (s && s.state === 'waiting') return s;
    if (s && ['error', 'ended', 'joined'].includes(s.state)) {
      throw new Error(`${p.name}: expected to wait, got state ${s.state} (${s.errorCode}): ${s.message}`);
    }
    await sleep(200);
  }
  throw new Error(`${p.name}: not waiting after ${timeout} ms (last: ${JSON.stringify(s)})`);
}

/** The host page's waiting-room queue (window.theraroom.waiting()). */
export async function queueOf(p) {
  return p.page.evaluate(() => window.theraroom.waiting());
}

/** Wait until the host page's queue holds `pid`; returns the queue. */
export async function waitForQueued(host, pid, { timeout = 15000 } = {}) {
  const end = Date.now() + timeout;
  let q = [];
  while (Date.now() < end) {
    q = await queueOf(host);
    if (q.some((w) => w.participant_id === pid)) return q;
    await sleep(200);
  }
  throw new Error(`${host.name}: ${pid} not in the waiting-room queue after ${timeout} ms (queue: ${JSON.stringify(q)})`);
}

/** The guest waits, the host sees it queued and admits it, the guest joins. */
export async function admitGuest(host, guest) {
  const w = await waitForWaiting(guest);
  await waitForQueued(host, w.participantId);
  await host.page.evaluate((pid) => window.theraroom.admit(pid), w.participantId);
  return waitForJoined(guest);
}

/** Save a screenshot to $E2E_SCREENSHOTS/<file>.png when that variable is set (docs/screenshots). */
export async function screenshot(p, file, viewport, { fullPage = false } = {}) {
  const dir = process.env.E2E_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  if (viewport) {
    await p.page.setViewportSize(viewport);
    await sleep(600); // layout + a few video frames at the new size
  }
  await p.page.screenshot({ path: `${dir}/${file}.png`, fullPage });
  log('screenshot', `${dir}/${file}.png`);
}

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 800 };

/** Wait for a given state (e.g. 'error' with a code) on a page. */
export async function waitForState(p, state, { timeout = 20000 } = {}) {
  const end = Date.now() + timeout;
  let s;
  while (Date.now() < end) {
    s = await hookState(p);
    if (s && s.state === state) return s;
    await sleep(200);
  }
  throw new Error(`${p.name}: state ${state} not reached after ${timeout} ms (last: ${JSON.stringify(s)})`);
}

export async function stats(p) {
  return p.page.evaluate(() => window.theraroom.stats());
}

/**
 * Wait until `n` remote participants show video framesDecoded growing by at least
 * minFramesGrowth between two samples `interval` ms apart, and audio bytesReceived > 0.
 * Returns the last sample.
 */
export async function waitForRemoteVideos(p, n, { minFramesGrowth = 5, interval = 1000, timeout = 30000 } = {}) {
  const end = Date.now() + timeout;
  let prev = null;
  let last = null;
  while (Date.now() < end) {
    const cur = await stats(p);
    if (prev) {
      const before = new Map(prev.map((s) => [s.participant_id, s]));
      const good = cur.filter((s) => {
        const b = before.get(s.participant_id);
        return b && s.video.framesDecoded - b.video.framesDecoded >= minFramesGrowth && s.audio.bytesReceived > 0;
      });
      last = { sample: cur, flowing: good.map((s) => s.participant_id) };
      if (good.length >= n) return cur;
    }
    prev = cur;
    await sleep(interval);
  }
  const st = await hookState(p);
  throw new Error(`${p.name}: expected ${n} remote participant(s) with growing video + audio within ${timeout} ms; ` +
    `last stats ${JSON.stringify(last)}; state ${JSON.stringify(st)}`);
}

/** Wait until `pid`'s screen video (stats().screen) decodes a growing number of frames. */
export async function waitForScreen(p, pid, { minFramesGrowth = 5, interval = 1000, timeout = 30000 } = {}) {
  const end = Date.now() + timeout;
  let prev = null;
  let cur = null;
  while (Date.now() < end) {
    cur = (await stats(p)).find((s) => s.participant_id === pid);
    if (prev && cur && cur.screen.framesDecoded - prev.screen.framesDecoded >= minFramesGrowth) return cur;
    prev = cur;
    await sleep(interval);
  }
  throw new Error(`${p.name}: no growing screen video from ${pid} within ${timeout} ms (last ${JSON.stringify(cur)})`);
}

/** Sum of everything the page received (video, screen, audio) from anyone. */
export async function receivedTotals(p) {
  const all = await stats(p);
  return all.reduce((a, s) => ({
    frames: a.frames + s.video.framesDecoded + s.screen.framesDecoded,
    bytes: a.bytes + s.video.bytesReceived + s.screen.bytesReceived + s.audio.bytesReceived,
  }), { frames: 0, bytes: 0 });
}

/** REST call with a bearer token from Node (the harness' own client of the API). */
export async function rest(base, path, { method = 'GET', token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text.slice(0, 300)}`);
  return data;
}

export async function createSession(base, token, body) {
  const s = await rest(base, '/api/sessions', { method: 'POST', token, body });
  if (!s || !s.id || !s.join_url) throw new Error(`POST /api/sessions: unexpected body ${JSON.stringify(s)}`);
  return s;
}

/** Run a scenario: launch, run, print failure details, exit code. */
export async function scenario(name, fn) {
  const started = Date.now();
  let browser;
  try {
    browser = await launch();
    const result = await fn(browser);
    console.log(JSON.stringify({ scenario: name, ok: true, ms: Date.now() - started, ...(result || {}) }));
    await browser.close();
    process.exit(0);
  } catch (e) {
    console.error(`\nFAIL ${name}: ${e && e.message}`);
    for (const p of allPages) {
      try { console.error(`${p.name}: ${JSON.stringify(await hookState(p))}`); } catch {}
    }
    dumpLogs();
    if (process.env.E2E_ARTIFACTS) {
      fs.mkdirSync(process.env.E2E_ARTIFACTS, { recursive: true });
      for (const p of allPages) {
        await p.page.screenshot({ path: `${process.env.E2E_ARTIFACTS}/${name}-${p.name.replace(/\W+/g, '_')}.png` }).catch(() => {});
      }
    }
    console.log(JSON.stringify({ scenario: name, ok: false, error: String(e && e.message) }));
    try { await browser?.close(); } catch {}
    process.exit(1);
  }
}
