// one_to_one.mjs — therapist + one guest (admitted from the waiting room) see and hear each
// other; a guest reload resumes as the same participant, straight into the call (admission
// is remembered; one guest row, one remote tile); ending the session reaches both.
// Env: BASE_URL, DEMO_JSON (see lib.mjs). Prints one JSON line on stdout.
import { env, scenario, newPage, waitForJoined, waitForState, waitForRemoteVideos, createSession, rest, hookState, log, sleep, admitGuest } from './lib.mjs';

const { base, demo } = env();
const token = demo.therapists[0].token;

const firstFrameMs = (st) => (st.timings && st.timings.firstRemoteFrame && st.timings.joinSent
  ? Math.round(st.timings.firstRemoteFrame - st.timings.joinSent) : null);
const seenToFrameMs = (st, pid) => {
  const t = st.timings || {};
  const a = (t.seenByParticipant || {})[pid], b = (t.firstFrameByParticipant || {})[pid];
  return a && b ? Math.round(b - a) : null;
};

scenario('one_to_one', async (browser) => {
  const s = await createSession(base, token, { session_name: 'e2e one-to-one' });
  log('session', s.id, s.join_url);
  try {
    const th = await newPage(browser, 'therapist');
    const gu = await newPage(browser, 'guest');

    await th.page.goto(`${base}${s.join_url}?autojoin=1#access_token=${encodeURIComponent(token)}`);
    const thJoined = await waitForJoined(th);
    log('therapist joined as', thJoined.participantId);

    await gu.page.goto(`${base}${s.join_url}?name=Guest%20One&autojoin=1`);
    const guJoined = await admitGuest(th, gu);
    log('guest joined as', guJoined.participantId);

    await Promise.all([waitForRemoteVideos(th, 1), waitForRemoteVideos(gu, 1)]);
    const thSt = await hookState(th);
    const guSt = await hookState(gu);
    if (thSt.remote.length !== 1 || thSt.remote[0].participant_id !== guJoined.participantId) {
      throw new Error(`therapist should see exactly the guest, sees ${JSON.stringify(thSt.remote)}`);
    }
    if (guSt.remote.length !== 1 || guSt.remote[0].participant_id !== thJoined.participantId) {
      throw new Error(`guest should see exactly the therapist, sees ${JSON.stringify(guSt.remote)}`);
    }
    if (guSt.remote[0].display_name === undefined) throw new Error('guest sees no display_name for the therapist');
    const thRemote = thSt.remote[0];
    if (thRemote.display_name !== 'Guest One') throw new Error(`therapist sees guest named ${JSON.stringify(thRemote.display_name)}, expected "Guest One"`);
    log('media flows both ways');

    // ---- reload the guest: must resume as the same participant ----
    const reloadAt = Date.now();
    await gu.page.reload();
    const guBack = await waitForJoined(gu); // no second wait: the admission is remembered
    if (guBack.participantId !== guJoined.participantId) {
      throw new Error(`guest came back as ${guBack.participantId}, expected the same participant ${guJoined.participantId}`);
    }
    await Promise.all([waitForRemoteVideos(gu, 1), waitForRemoteVideos(th, 1)]);
    const rejoinMs = Date.now() - reloadAt;
    await sleep(500);
    const thAfter = await hookState(th);
    if (thAfter.remote.length !== 1) throw new Error(`after reload the therapist sees ${thAfter.remote.length} remote participants: ${JSON.stringify(thAfter.remote)}`);
    const tiles = await th.page.locator('.tile:not(.self)').count();
    if (tiles !== 1) throw new Error(`after reload the therapist page shows ${tiles} remote tiles`);
    const rows = await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/participants`, { token });
    const list = (rows && rows.participants) || [];
    const guests = list.filter((r) => r.role === 'guest' || r.is_guest === true);
    if (guests.length !== 1) throw new Error(`expected exactly one guest row after reload, got ${guests.length}: ${JSON.stringify(list)}`);
    const guAfter = await hookState(gu);
    log('reload resumed the same participant; resumed flag =', guAfter.resumed);

    // ---- the therapist ends the session: both pages are told ----
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token });
    const [thEnd, guEnd] = await Promise.all([waitForState(th, 'ended', { timeout: 10000 }), waitForState(gu, 'ended', { timeout: 10000 })]);
    for (const [who, st] of [['therapist', thEnd], ['guest', guEnd]]) {
      if (!st.message.includes('This session has ended.')) throw new Error(`${who} page after end shows ${JSON.stringify(st.message)}`);
    }

    return {
      join_to_first_frame_ms: { therapist: firstFrameMs(thSt), guest: firstFrameMs(guSt) },
      remote_seen_to_first_frame_ms: {
        therapist: seenToFrameMs(thSt, guJoined.participantId),
        guest: seenToFrameMs(guSt, thJoined.participantId),
      },
      guest_reload_to_media_both_ways_ms: rejoinMs,
      guest_reload_join_to_first_frame_ms: firstFrameMs(guAfter),
      guest_resumed_flag: guAfter.resumed,
      participant_rows: list.length,
    };
  } finally {
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token }).catch(() => {});
  }
});
