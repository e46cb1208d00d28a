// precall.mjs — the lobby's tools and in-call device switching: the connection check
// (`probe`) reaches `connected` against the real media server and says so; the device
// lists are filled and the microphone level moves; in the call, switching the camera and
// the microphone (settings dialog) replaces the tracks without a new publisher offer
// and the other side keeps decoding.
// Env: BASE_URL, DEMO_JSON (see lib.mjs). Prints one JSON line on stdout.
import { env, scenario, newPage, waitForJoined, waitForRemoteVideos, createSession, rest, log } from './lib.mjs';

const { base, demo } = env();
const token = demo.therapists[0].token;

const publisherOffers = (p) => p.logs.filter((l) => l.includes('rtc -> offer publisher')).length;

scenario('precall', async (browser) => {
  const s = await createSession(base, token, { session_name: 'e2e pre-call', waiting_room: false });
  log('session', s.id, s.join_url);
  try {
    // ---- lobby: devices, level, connection check ----
    const gu = await newPage(browser, 'guest');
    await gu.page.goto(`${base}${s.join_url}`);
    await gu.page.waitForSelector('#lobby:not([hidden])');
    await gu.page.fill('#guest-name', 'Pat Precall');
    await gu.page.click('#devices-box summary');
    await gu.page.waitForFunction(() => document.querySelectorAll('#lobby-videoinput option').length > 0
      && document.querySelectorAll('#lobby-audioinput option').length > 0, null, { timeout: 10000 });
    await gu.page.waitForFunction(() => Number(document.querySelector('#lobby-devices .level').getAttribute('aria-valuenow')) > 0,
      null, { timeout: 10000 });
    log('device lists filled, microphone level moves');
    await gu.page.click('#precheck-btn');
    await gu.page.waitForFunction(() => window.theraroom.precheckResult, null, { timeout: 20000 });
    const probe = await gu.page.evaluate(() => window.theraroom.precheckResult);
    if (!probe.ok || probe.state !== 'connected') throw new Error(`connection check failed on loopback: ${JSON.stringify(probe)}`);
    const said = await gu.page.locator('#precheck-result').innerText();
    if (!said.includes('Your connection works')) throw new Error(`connection check says "${said}"`);
    log('connection check', JSON.stringify(probe));

    // ---- join; the therapist is there ----
    const th = await newPage(browser, 'therapist');
    await th.page.goto(`${base}${s.join_url}?autojoin=1#access_token=${encodeURIComponent(token)}`);
    await waitForJoined(th);
    await gu.page.click('#join-btn');
    await waitForJoined(gu);
    await Promise.all([waitForRemoteVideos(th, 1), waitForRemoteVideos(gu, 1)]);

    // ---- switch camera and microphone in the settings dialog: replaceTrack only ----
    const offersBefore = publisherOffers(gu);
    const before = await gu.page.evaluate(() => document.querySelector('.tile.self video').srcObject.getTracks().map((t) => t.id));
    await gu.page.click('#settings-btn');
    await gu.page.waitForSelector('#settings[open]');
    for (const id of ['set-videoinput', 'set-audioinput']) {
      await gu.page.evaluate((sel) => document.getElementById(sel).dispatchEvent(new Event('change')), id);
    }
    await gu.page.waitForFunction((old) => {
      const ids = document.querySelector('.tile.self video').srcObject.getTracks().map((t) => t.id);
      return ids.length === 2 && ids.every((x) => !old.includes(x));
    }, before, { timeout: 10000 });
    await gu.page.click('#settings button:has-text("Done")');
    await waitForRemoteVideos(th, 1); // the therapist still decodes the guest (new tracks, same senders)
    if (publisherOffers(gu) !== offersBefore) throw new Error('switching devices sent a new publisher offer; expected replaceTrack only');
    log('devices switched without renegotiation');
    return { probe_ms: probe.ms, probe_relay: probe.relay };
  } finally {
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token }).catch(() => {});
  }
});
