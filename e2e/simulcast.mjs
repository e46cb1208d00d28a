// simulcast.mjs — a therapist publishes camera video in simulcast layers to two guests.
// One guest's downlink is shaped to 300 kbit/s (tc htb on `lo` inside the test's network
// namespace, for the UDP port of that guest's subscriber connection only): it must fall
// to a low layer within 10 s (its frameHeight drops) and keep receiving audio with under
// 2 % loss, while the other guest keeps the top layer. With the limit lifted, it must be
// back on the top layer within 20 s. A hidden tile gets no video.
// Needs root in the namespace (scripts/e2e.sh runs it under `unshare -n`).
// Env: BASE_URL, DEMO_JSON (see lib.mjs). Prints one JSON line on stdout.
import { execFileSync } from 'node:child_process';
import { env, scenario, newPage, waitForJoined, waitForRemoteVideos, createSession, rest, log, sleep, stats } from './lib.mjs';

const { base, demo } = env();
const token = demo.therapists[0].token;
const LIMIT = '300kbit';

function tc(...args) {
  execFileSync('tc', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Shapes what is sent to UDP port `port` on loopback to LIMIT (everything else free). */
function shape(port) {
  tc('qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '20');
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', LIMIT, 'ceil', LIMIT, 'burst', '15k');
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '10gbit');
  tc('qdisc', 'add', 'dev', 'lo', 'parent', '1:10', 'handle', '10:', 'pfifo', 'limit', '30');
  tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'u32',
    'match', 'ip', 'protocol', '17', '0xff', 'match', 'ip', 'dport', String(port), '0xffff', 'flowid', '1:10');
}

function unshape() {
  try { tc('qdisc', 'del', 'dev', 'lo', 'root'); } catch { /* not shaped */ }
}

/** The therapist's video as `p` receives it: height, frames and audio counters. */
async function therapistView(p, therapistId) {
  const s = (await stats(p)).find((x) => x.participant_id === therapistId);
  if (!s) throw new Error(`${p.name}: no stats for the therapist`);
  return { height: s.video.frameHeight, frames: s.video.framesDecoded, audioRx: s.audio.packetsReceived, audioLost: s.audio.packetsLost };
}

/** Waits until `test(view)` holds; returns [view, ms waited]. */
async function waitFor(p, therapistId, what, test, timeout) {
  const start = Date.now();
  let v;
  while (Date.now() - start < timeout) {
    v = await therapistView(p, therapistId);
    if (test(v)) return [v, Date.now() - start];
    await sleep(250);
  }
  throw new Error(`${p.name}: ${what} not within ${timeout} ms: ${JSON.stringify(v)}`);
}

scenario('simulcast', async (browser) => {
  const s = await createSession(base, token, { session_name: 'e2e simulcast', max_participants: 3, waiting_room: false });
  unshape();
  try {
    const th = await newPage(browser, 'therapist');
    await th.page.goto(`${base}${s.join_url}?autojoin=1&small=0&hd=1#access_token=${encodeURIComponent(token)}`);
    await waitForJoined(th);
    const therapistId = await th.page.evaluate(() => window.theraroom.participantId);
    // On 2 loaded cores Chromium would otherwise scale the camera down for CPU, and frame
    // heights would no longer tell the layers apart.
    await th.page.evaluate(() => window.theraroom._maintainResolution());
    const guests = [];
    for (const name of ['narrow', 'wide']) {
      // A HiDPI screen: the therapist's tile is over 1,000 device pixels wide, which
      // calls for the top layer.
      const p = await newPage(browser, name, { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 2 });
      await p.page.goto(`${base}${s.join_url}?name=${name}&autojoin=1&small=1`);
      guests.push(p);
    }
    await Promise.all(guests.map((p) => waitForJoined(p)));
    await Promise.all(guests.map((p) => waitForRemoteVideos(p, 2, { timeout: 45000 })));
    const [narrow, wide] = guests;
    // The guests' own cameras and microphones off: the narrow link carries the therapist,
    // who stays the one speaker (speaker view keeps the therapist's tile large on both
    // guests' pages, so the size they show it at keeps calling for the top layer).
    for (const g of guests) {
      await g.page.click('#cam-btn');
      await g.page.click('#mic-btn');
    }
    const layers = await th.page.evaluate(() => window.theraroom.publishedLayers && window.theraroom.publishedLayers());
    log('therapist publishes', JSON.stringify(layers));
    const [top] = await waitFor(wide, therapistId, 'top layer', (v) => v.height >= 540, 30000);
    await waitFor(narrow, therapistId, 'top layer', (v) => v.height >= top.height, 30000);
    log('both on the top layer', top.height);

    const port = await narrow.page.evaluate(() => window.theraroom.subscriberPort());
    if (!port) throw new Error('no subscriber port for the narrow guest');
    shape(port);
    log('shaped', LIMIT, 'to port', port);
    const [low, downMs] = await waitFor(narrow, therapistId, 'a lower layer', (v) => v.height > 0 && v.height < top.height, 10000);
    log('narrow guest on a lower layer', low.height, 'after', downMs, 'ms');
    // frameHeight is the height of the last decoded frame. Once the queue the burst
    // before the switch left in the shaper has drained (3 s), watch 8 s of the
    // constrained call: audio must keep flowing, with under 2 % loss.
    await sleep(3000);
    const before = await therapistView(narrow, therapistId);
    // Meanwhile the wide guest's picture: sampled twice a second.
    const wideHeights = [];
    for (let i = 0; i < 16; i++) {
      await sleep(500);
      wideHeights.push((await therapistView(wide, therapistId)).height);
    }
    const after = await therapistView(narrow, therapistId);
    const rx = after.audioRx - before.audioRx;
    const lost = after.audioLost - before.audioLost;
    const lossPct = (100 * lost) / Math.max(1, rx + lost);
    log('narrow guest audio while constrained', JSON.stringify({ rx, lost, lossPct }));
    if (rx < 200) throw new Error(`narrow guest's audio stalled: ${rx} packets in ~10 s`);
    if (lossPct >= 2) throw new Error(`narrow guest lost ${lossPct.toFixed(2)} % of audio`);
    if (after.frames <= before.frames) throw new Error('narrow guest decodes no video at all');
    log('wide guest heights while the other is constrained', JSON.stringify(wideHeights));
    const onTop = wideHeights.filter((h) => h >= top.height).length;
    if (onTop < 12) throw new Error(`the wide guest left the top layer: ${JSON.stringify(wideHeights)}`);

    unshape();
    log('limit lifted');
    const [, upMs] = await waitFor(narrow, therapistId, 'the top layer again', (v) => v.height >= top.height, 20000);
    log('narrow guest back on the top layer after', upMs, 'ms');

    // A hidden tile: no video frames while it is hidden.
    const tile = '.tile:not(.self):not(.screen)';
    await wide.page.evaluate((sel) => { for (const t of document.querySelectorAll(sel)) t.style.display = 'none'; }, tile);
    await sleep(1500);
    const h0 = await therapistView(wide, therapistId);
    await sleep(3000);
    const h1 = await therapistView(wide, therapistId);
    log('hidden tile frames in 3 s', h1.frames - h0.frames);
    if (h1.frames - h0.frames > 3) throw new Error(`a hidden tile still decodes video: ${h1.frames - h0.frames} frames`);
    return { top_height: top.height, low_height: low.height, down_ms: downMs, up_ms: upMs, audio_loss_pct: Number(lossPct.toFixed(2)) };
  } finally {
    unshape();
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token }).catch(() => {});
  }
});
