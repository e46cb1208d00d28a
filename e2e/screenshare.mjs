// screenshare.mjs — the therapist shares a screen (Chromium's fake capture: the shared
// --use-fake-ui-for-media-stream / --use-fake-device-for-media-stream flags already make
// getDisplayMedia return a synthetic 1280x720 "screen"): the guest decodes a second video
// track marked `screen`, laid out large, while the camera keeps decoding. Stopping (the
// button, then the browser's own stop = track `ended`) removes it and renegotiates.
// With E2E_SCREENSHOTS set, saves the guest's view of the shared screen (phone + desktop).
// Env: BASE_URL, DEMO_JSON (see lib.mjs). Prints one JSON line on stdout.
import {
  env, scenario, newPage, waitForJoined, waitForRemoteVideos, waitForScreen, createSession, rest, stats,
  screenshot, log, sleep, PHONE, DESKTOP,
} from './lib.mjs';

const { base, demo } = env();
const token = demo.therapists[0].token;

async function waitForNoScreenTile(p, { timeout = 15000 } = {}) {
  await p.page.waitForFunction(() => document.querySelectorAll('#stage .tile.screen').length === 0, null, { timeout });
}

/** Once unpublished, the screen is no longer received at all (stats count live tracks only). */
async function waitForScreenGone(p, pid, { timeout = 15000 } = {}) {
  const end = Date.now() + timeout;
  let cur = null;
  while (Date.now() < end) {
    cur = (await stats(p)).find((s) => s.participant_id === pid);
    if (cur && cur.screen.framesDecoded === 0 && cur.screen.bytesReceived === 0) return;
    await sleep(300);
  }
  throw new Error(`${p.name}: still receiving a screen from ${pid}: ${JSON.stringify(cur)}`);
}

scenario('screenshare', async (browser) => {
  const s = await createSession(base, token, { session_name: 'e2e screen share', waiting_room: false });
  log('session', s.id, s.join_url);
  try {
    const th = await newPage(browser, 'therapist', { viewport: DESKTOP });
    const gu = await newPage(browser, 'guest', { viewport: DESKTOP });
    await th.page.goto(`${base}${s.join_url}?autojoin=1#access_token=${encodeURIComponent(token)}`);
    const thJoined = await waitForJoined(th);
    await gu.page.goto(`${base}${s.join_url}?name=Screen%20Watcher&autojoin=1`);
    await waitForJoined(gu);
    await Promise.all([waitForRemoteVideos(th, 1), waitForRemoteVideos(gu, 1)]);

    if (!(await th.page.locator('#share-btn').isVisible())) throw new Error('Share screen button not visible in Chromium');
    await th.page.click('#share-btn');
    const first = await waitForScreen(gu, thJoined.participantId);
    if (first.screen.frameWidth < 640) throw new Error(`screen decoded at ${first.screen.frameWidth} px wide; expected the 1280 px fake screen`);
    await waitForRemoteVideos(gu, 1); // the camera keeps flowing next to the screen
    await gu.page.locator('#stage .tile.screen').first().waitFor({ state: 'visible', timeout: 5000 });
    const layout = await gu.page.evaluate(() => {
      const screen = document.querySelector('#stage .tile.screen').getBoundingClientRect();
      const cam = document.querySelector('#grid .tile:not(.self)').getBoundingClientRect();
      return { screenW: screen.width, camW: cam.width };
    });
    if (!(layout.screenW > layout.camW * 2)) throw new Error(`the screen should be laid out large: ${JSON.stringify(layout)}`);
    log('guest decodes the shared screen', JSON.stringify(first.screen), JSON.stringify(layout));
    await screenshot(gu, 'screenshare-desktop');
    await screenshot(gu, 'screenshare-phone', PHONE);
    await screenshot(th, 'screenshare-sharer-desktop');

    // ---- stop with the button ----
    await th.page.click('#share-btn');
    await waitForNoScreenTile(gu);
    await waitForScreenGone(gu, thJoined.participantId);
    await waitForRemoteVideos(gu, 1);
    log('stopped with the button');

    // ---- share again, then the browser ends the capture (track `ended`) ----
    await th.page.click('#share-btn');
    await waitForScreen(gu, thJoined.participantId);
    await th.page.evaluate(() => {
      const v = document.querySelector('#stage .tile.screen.self video');
      const t = v && v.srcObject && v.srcObject.getVideoTracks()[0];
      if (!t) throw new Error('no local screen track');
      t.dispatchEvent(new Event('ended')); // what Chrome fires when its "Stop sharing" bar is used
    });
    await waitForNoScreenTile(gu);
    await waitForScreenGone(gu, thJoined.participantId);
    const label = (await th.page.locator('#share-btn').innerText()).trim();
    if (label !== 'Share screen') throw new Error(`after the browser stopped the capture the button says "${label}"`);
    await waitForRemoteVideos(gu, 1);
    return { screen_frame_width: first.screen.frameWidth, layout };
  } finally {
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token }).catch(() => {});
  }
});
