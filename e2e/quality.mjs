// quality.mjs — therapist + guest: both tiles carry the server's connection verdict, and
// a guest who switches to audio only (settings) stops receiving video while audio keeps
// flowing and the therapist still sees the guest; switching back brings video back. A
// remote tile taken off the screen gets no video until it shows again.
// Env: BASE_URL, DEMO_JSON (see lib.mjs). Prints one JSON line on stdout.
import { env, scenario, newPage, waitForJoined, waitForRemoteVideos, createSession, rest, log, sleep, stats, screenshot } from './lib.mjs';

const { base, demo } = env();
const token = demo.therapists[0].token;

/** Wait until the page's self tile and remote tile both carry a verdict. */
async function waitForVerdicts(p, { timeout = 20000 } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await p.page.evaluate(() => [...document.querySelectorAll('.tile:not(.screen)')]
      .map((t) => ({ self: t.classList.contains('self'), quality: t.dataset.quality || null })));
    if (last.length === 2 && last.every((t) => t.quality)) return last;
    await sleep(250);
  }
  throw new Error(`${p.name}: tiles without a connection verdict after ${timeout} ms: ${JSON.stringify(last)}`);
}

/** Remote video frames and audio bytes received over `ms`. */
async function growth(p, ms = 3000) {
  const a = (await stats(p))[0];
  await sleep(ms);
  const b = (await stats(p))[0];
  return { frames: b.video.framesDecoded - a.video.framesDecoded, audio: b.audio.bytesReceived - a.audio.bytesReceived };
}

async function setAudioOnly(p, on) {
  await p.page.click('#settings-btn');
  const box = p.page.locator('#audio-only-toggle');
  if ((await box.isChecked()) !== on) await box.click();
  await p.page.click('#settings .dialog-actions .btn');
}

scenario('quality', async (browser) => {
  const s = await createSession(base, token, { session_name: 'e2e quality', waiting_room: false });
  try {
    const th = await newPage(browser, 'therapist');
    const gu = await newPage(browser, 'guest');
    await th.page.goto(`${base}${s.join_url}?autojoin=1#access_token=${encodeURIComponent(token)}`);
    await waitForJoined(th);
    await gu.page.goto(`${base}${s.join_url}?name=Guest%20Q&autojoin=1`);
    await waitForJoined(gu);
    await Promise.all([waitForRemoteVideos(th, 1), waitForRemoteVideos(gu, 1)]);
    const verdicts = await Promise.all([waitForVerdicts(th), waitForVerdicts(gu)]);
    log('verdicts', JSON.stringify(verdicts));
    for (const v of verdicts.flat()) {
      if (v.quality !== 'excellent' && v.quality !== 'good') throw new Error(`loopback judged ${v.quality}`);
    }
    for (const p of [th, gu]) {
      if (await p.page.$('.tile.self.no-video')) throw new Error(`${p.name}: own camera shows the avatar, not the video`);
    }

    await setAudioOnly(gu, true);
    await sleep(1500);
    const paused = await growth(gu);
    const other = await growth(th);
    log('audio only', JSON.stringify({ paused, other }));
    if (paused.frames > 3) throw new Error(`guest still decodes video in audio only: ${paused.frames} frames in 3 s`);
    if (paused.audio <= 0) throw new Error('guest lost audio in audio only');
    if (other.frames < 20) throw new Error(`therapist should still see the guest: ${other.frames} frames in 3 s`);
    if (!(await gu.page.isVisible('.tile:not(.self) .badge.paused'))) throw new Error('no "Video paused" on the remote tile');
    if (!(await gu.page.isVisible('#quality #audio-only-btn'))) throw new Error('no way back from the notice');
    await screenshot(gu, 'audio-only-desktop', { width: 1280, height: 800 });
    await gu.page.setViewportSize({ width: 640, height: 480 });

    await gu.page.click('#audio-only-btn');
    await waitForRemoteVideos(gu, 1, { timeout: 15000 });
    if (await gu.page.isVisible('.tile:not(.self) .badge.paused')) throw new Error('"Video paused" stayed');

    // A remote tile that is not on screen gets no video; shown again, it does.
    const tile = '.tile:not(.self):not(.screen)';
    await gu.page.evaluate((sel) => { document.querySelector(sel).style.display = 'none'; }, tile);
    await sleep(1500);
    const hidden = await growth(gu);
    log('hidden tile', JSON.stringify(hidden));
    if (hidden.frames > 3) throw new Error(`a hidden tile still gets video: ${hidden.frames} frames in 3 s`);
    if (hidden.audio <= 0) throw new Error('a hidden tile lost its audio');
    await gu.page.evaluate((sel) => { document.querySelector(sel).style.display = ''; }, tile);
    await waitForRemoteVideos(gu, 1, { timeout: 15000 });
    return { verdicts, paused, other, hidden };
  } finally {
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token }).catch(() => {});
  }
});
