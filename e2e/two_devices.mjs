// two_devices.mjs — the same therapist in two windows (two browser contexts, so two page
// instances) plus a guest: every page decodes the two other videos; the two therapist
// windows are two participants of one person. Reloading one therapist window resumes
// that instance: still exactly two remote participants on the guest's page, and the
// session's participant rows list the therapist once.
// Env: BASE_URL, DEMO_JSON (see lib.mjs). Prints one JSON line on stdout.
import { env, scenario, newPage, waitForJoined, waitForRemoteVideos, createSession, rest, hookState, log, sleep } from './lib.mjs';

const { base, demo } = env();
const token = demo.therapists[0].token;

scenario('two_devices', async (browser) => {
  const s = await createSession(base, token, { session_name: 'e2e two devices', max_participants: 3, waiting_room: false });
  log('session', s.id, s.join_url);
  try {
    const url = `${base}${s.join_url}?autojoin=1#access_token=${encodeURIComponent(token)}`;
    const th1 = await newPage(browser, 'therapist-laptop');
    await th1.page.goto(url);
    const a = await waitForJoined(th1);
    const th2 = await newPage(browser, 'therapist-phone');
    await th2.page.goto(url);
    const b = await waitForJoined(th2);
    if (a.participantId === b.participantId) throw new Error(`two windows joined as the same participant ${a.participantId}`);
    if (!a.personId || a.personId !== b.personId) throw new Error(`two windows of one therapist should share person_id: ${a.personId} vs ${b.personId}`);
    const gu = await newPage(browser, 'guest');
    await gu.page.goto(`${base}${s.join_url}?name=Guest%20Two%20Devices&autojoin=1`);
    await waitForJoined(gu);
    await Promise.all([th1, th2, gu].map((p) => waitForRemoteVideos(p, 2, { timeout: 40000 })));
    log('every page decodes the two others');

    const guSt = await hookState(gu);
    const ids = guSt.remote.map((r) => r.participant_id).sort();
    if (ids.length !== 2 || !ids.includes(a.participantId) || !ids.includes(b.participantId)) {
      throw new Error(`guest should see both therapist windows, sees ${JSON.stringify(guSt.remote)}`);
    }
    const hint = await th1.page.locator(`.tile[data-pid="${b.participantId}"] .name`).innerText();
    if (!hint.includes('other device')) throw new Error(`the therapist's own second window should be marked, tile says "${hint}"`);

    // ---- reload the second window: the same instance resumes ----
    await th2.page.reload();
    const b2 = await waitForJoined(th2);
    if (b2.participantId !== b.participantId) throw new Error(`reloaded window came back as ${b2.participantId}, expected ${b.participantId}`);
    await Promise.all([th1, th2, gu].map((p) => waitForRemoteVideos(p, 2, { timeout: 40000 })));
    await sleep(300);
    const after = await hookState(gu);
    if (after.remote.length !== 2) throw new Error(`after the reload the guest sees ${after.remote.length} remote participants: ${JSON.stringify(after.remote)}`);
    const tiles = await gu.page.locator('#grid .tile:not(.self)').count();
    if (tiles !== 2) throw new Error(`after the reload the guest page shows ${tiles} remote tiles`);
    const rows = ((await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/participants`, { token })) || {}).participants || [];
    const therapistRows = rows.filter((r) => r.role === 'therapist');
    if (therapistRows.length !== 1) throw new Error(`expected one participant row for the therapist, got ${therapistRows.length}: ${JSON.stringify(rows)}`);
    return { participant_rows: rows.length, therapist_instances: [a.participantId, b.participantId] };
  } finally {
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token }).catch(() => {});
  }
});
