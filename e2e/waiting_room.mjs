// waiting_room.mjs — an instant session's waiting room: a guest who opens the link waits
// (no remote media, told whether the therapist is in), the therapist's page shows the
// queue; the therapist admits (the Admit button) and both decode each other. A second
// guest is declined (the Decline button): a clear message, no media, and it sticks.
// Finally a third guest waits and the therapist turns the waiting room off on the
// /therapist page (PATCH): the guest is let in.
// With E2E_SCREENSHOTS set, saves the waiting guest and the therapist's queue (phone + desktop).
// Env: BASE_URL, DEMO_JSON (see lib.mjs). Prints one JSON line on stdout.
import {
  env, scenario, newPage, waitForJoined, waitForState, waitForWaiting, waitForQueued, waitForRemoteVideos,
  createSession, rest, hookState, receivedTotals, screenshot, log, PHONE, DESKTOP,
} from './lib.mjs';

const { base, demo } = env();
const token = demo.therapists[0].token;

async function text(p, selector) {
  return (await p.page.locator(selector).innerText()).trim();
}

async function expectNoMedia(p, what) {
  const t = await receivedTotals(p);
  const st = await hookState(p);
  if (t.frames || t.bytes || st.remote.length) {
    throw new Error(`${p.name} ${what}: expected no remote media, got ${JSON.stringify(t)} from ${JSON.stringify(st.remote)}`);
  }
  if (await p.page.locator('.tile:not(.self)').count()) throw new Error(`${p.name} ${what}: shows remote tiles`);
}

scenario('waiting_room', async (browser) => {
  const s = await createSession(base, token, { session_name: 'e2e waiting room', kind: 'instant', max_participants: 3 });
  log('session', s.id, s.join_url, 'waiting_room', s.waiting_room);
  if (s.waiting_room !== true) throw new Error(`an instant session should have its waiting room on, view says ${JSON.stringify(s.waiting_room)}`);
  try {
    // ---- the guest comes first: waiting, the therapist is not there yet ----
    const g1 = await newPage(browser, 'guest1', { viewport: PHONE });
    await g1.page.goto(`${base}${s.join_url}?name=Grace%20Guest&autojoin=1`);
    const w1 = await waitForWaiting(g1);
    const absent = await text(g1, '#waiting-presence');
    if (!/has not joined yet/.test(absent)) throw new Error(`waiting guest should be told the therapist is not in yet, sees "${absent}"`);
    const who = await text(g1, '#waiting-who');
    if (!who.includes('will let you in')) throw new Error(`waiting guest sees "${who}"`);
    await expectNoMedia(g1, 'while waiting');

    // ---- the therapist arrives: the guest is told, the queue shows the guest ----
    const th = await newPage(browser, 'therapist', { viewport: DESKTOP });
    await th.page.goto(`${base}${s.join_url}?autojoin=1#access_token=${encodeURIComponent(token)}`);
    const thJoined = await waitForJoined(th);
    if (!thJoined.host) throw new Error('the therapist should be a host (joined.host)');
    const q = await waitForQueued(th, w1.participantId);
    const entry = q.find((x) => x.participant_id === w1.participantId);
    if (entry.display_name !== 'Grace Guest' || !entry.since) throw new Error(`queue entry ${JSON.stringify(entry)}`);
    await th.page.locator(`.queue-item[data-pid="${w1.participantId}"]`).waitFor({ state: 'visible', timeout: 5000 });
    await g1.page.waitForFunction(() => /is in the session/.test(document.getElementById('waiting-presence').textContent),
      null, { timeout: 10000 });
    if ((await hookState(th)).remote.length !== 0) throw new Error('a waiting guest must not be in the therapist\'s participants');
    await expectNoMedia(g1, 'while waiting with the therapist in');

    // ---- a second guest waits too: two in the queue ----
    const g2 = await newPage(browser, 'guest2', { viewport: PHONE });
    await g2.page.goto(`${base}${s.join_url}?name=Declan%20Declined&autojoin=1`);
    const w2 = await waitForWaiting(g2);
    await waitForQueued(th, w2.participantId);
    await th.page.locator('.queue-item').nth(1).waitFor({ state: 'visible', timeout: 5000 });
    await screenshot(g1, 'waiting-room-guest-phone');
    await screenshot(g1, 'waiting-room-guest-desktop', DESKTOP);
    await screenshot(th, 'therapist-queue-desktop');
    await screenshot(th, 'therapist-queue-phone', PHONE);
    await th.page.setViewportSize(DESKTOP);

    // ---- admit the first guest (the Admit button): both decode each other ----
    await th.page.click(`.queue-item[data-pid="${w1.participantId}"] button:has-text("Admit")`);
    const g1Joined = await waitForJoined(g1);
    if (g1Joined.participantId !== w1.participantId) throw new Error(`admitted as ${g1Joined.participantId}, waited as ${w1.participantId}`);
    await Promise.all([waitForRemoteVideos(th, 1), waitForRemoteVideos(g1, 1)]);
    log('admitted guest and therapist decode each other');

    // ---- decline the second guest: message, no media, and it sticks ----
    await th.page.click(`.queue-item[data-pid="${w2.participantId}"] button:has-text("Decline")`);
    const declined = await waitForState(g2, 'error', { timeout: 10000 });
    if (declined.errorCode !== 'declined') throw new Error(`declined guest: error ${declined.errorCode}`);
    if (!declined.message.includes('The therapist did not let you in to this session')) {
      throw new Error(`declined guest sees "${declined.message}"`);
    }
    await expectNoMedia(g2, 'after being declined');
    const live = await g2.page.evaluate(() => [...document.querySelectorAll('video')]
      .filter((v) => v.srcObject && v.srcObject.getTracks().some((t) => t.readyState === 'live')).length);
    if (live) throw new Error(`declined guest still has ${live} live video element(s)`);
    await g2.page.reload();
    const again = await waitForState(g2, 'error', { timeout: 15000 });
    if (again.errorCode !== 'declined') throw new Error(`declined guest reloading: expected declined again, got ${again.errorCode}`);
    const thAfter = await hookState(th);
    if (thAfter.remote.length !== 1) throw new Error(`therapist should see only the admitted guest: ${JSON.stringify(thAfter.remote)}`);
    if ((await th.page.evaluate(() => window.theraroom.waiting())).length) throw new Error('queue should be empty');

    // ---- the /therapist page switches the waiting room off: a waiting guest gets in ----
    const g3 = await newPage(browser, 'guest3');
    await g3.page.goto(`${base}${s.join_url}?name=Third%20Guest&autojoin=1`);
    const w3 = await waitForWaiting(g3);
    await waitForQueued(th, w3.participantId);
    const panel = await newPage(browser, 'therapist-page');
    await panel.page.goto(`${base}/therapist#access_token=${encodeURIComponent(token)}`);
    const toggle = panel.page.locator(`.session[data-id="${s.id}"] input[role="switch"]`);
    await toggle.waitFor({ state: 'visible', timeout: 10000 });
    if (!(await toggle.isChecked())) throw new Error('the therapist page shows the waiting room off');
    await toggle.click();
    await waitForJoined(g3);
    const view = await rest(base, `/api/sessions/${encodeURIComponent(s.id)}`, { token });
    if (view.waiting_room !== false) throw new Error(`after switching off, the session says waiting_room=${view.waiting_room}`);
    log('switching the waiting room off on /therapist let the waiting guest in');
    return { waited: w1.participantId, declined: w2.participantId, let_in_by_switch: w3.participantId };
  } finally {
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token }).catch(() => {});
  }
});
