// reconnect.mjs — the guest's WebSocket drops mid-call (not a leave): the page reconnects
// with the same token, resumes as the same participant with fresh peer connections (ICE
// restart), and media flows both ways again; the therapist never sees a second guest.
// Env: BASE_URL, DEMO_JSON (see lib.mjs). Prints one JSON line on stdout.
import { env, scenario, newPage, waitForJoined, waitForState, waitForRemoteVideos, createSession, rest, hookState, log, sleep } from './lib.mjs';

const { base, demo } = env();
const token = demo.therapists[0].token;

scenario('reconnect', async (browser) => {
  const s = await createSession(base, token, { session_name: 'e2e reconnect', waiting_room: false });
  log('session', s.id, s.join_url);
  try {
    const th = await newPage(browser, 'therapist');
    const gu = await newPage(browser, 'guest');
    await th.page.goto(`${base}${s.join_url}?autojoin=1#access_token=${encodeURIComponent(token)}`);
    await waitForJoined(th);
    await gu.page.goto(`${base}${s.join_url}?name=Guest%20Reconnect&autojoin=1`);
    const first = await waitForJoined(gu);
    await Promise.all([waitForRemoteVideos(th, 1), waitForRemoteVideos(gu, 1)]);

    const dropAt = Date.now();
    await gu.page.evaluate(() => window.theraroom._dropSocket());
    await waitForState(gu, 'joining', { timeout: 5000 });
    const back = await waitForJoined(gu, { timeout: 30000 });
    if (back.participantId !== first.participantId) throw new Error(`resumed as ${back.participantId}, expected ${first.participantId}`);
    if (!back.resumed) throw new Error('joined.resumed should be true after a dropped socket');
    await Promise.all([waitForRemoteVideos(gu, 1), waitForRemoteVideos(th, 1)]);
    const recoverMs = Date.now() - dropAt;
    await sleep(300);
    const thSt = await hookState(th);
    if (thSt.remote.length !== 1) throw new Error(`therapist sees ${thSt.remote.length} remote participants after the reconnect`);
    if (await th.page.locator('.tile .reconnecting:visible').count()) throw new Error('therapist still shows "Reconnecting…" after the guest came back');
    return { drop_to_media_both_ways_ms: recoverMs };
  } finally {
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token }).catch(() => {});
  }
});
