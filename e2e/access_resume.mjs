// access_resume.mjs — in a running call the organization admin switches the therapist's
// video access off (PUT /api/organizations/{org}/therapists/{id}/video-settings). The
// running call continues: the guest's socket drops and it resumes and decodes again. A
// NEW guest, and a new window of the therapist, are refused with therapist_disabled.
// The access is switched back on at the end (other scenarios use the same therapist).
// Env: BASE_URL, DEMO_JSON (see lib.mjs). Prints one JSON line on stdout.
import { env, scenario, newPage, waitForJoined, waitForState, waitForRemoteVideos, createSession, rest, log } from './lib.mjs';

const { base, demo } = env();
const therapist = demo.therapists[0];
const token = therapist.token;
const adminToken = demo.org_admin.token;
const settingsPath = `/api/organizations/${encodeURIComponent(demo.organization_id)}/therapists/${encodeURIComponent(therapist.id)}/video-settings`;

async function setAccess(on) {
  const r = await rest(base, settingsPath, { method: 'PUT', token: adminToken, body: { video_sessions_enabled: on } });
  if (!r || r.video_sessions_enabled !== on) throw new Error(`video-settings PUT answered ${JSON.stringify(r)}`);
}

async function expectDisabled(p) {
  const st = await waitForState(p, 'error', { timeout: 15000 });
  if (st.errorCode !== 'therapist_disabled') throw new Error(`${p.name}: expected therapist_disabled, got ${st.errorCode} (${st.message})`);
  if (!st.message.includes('not enabled for this therapist')) throw new Error(`${p.name}: message "${st.message}"`);
  return st.errorCode;
}

scenario('access_resume', async (browser) => {
  const s = await createSession(base, token, { session_name: 'e2e access resume', max_participants: 4, waiting_room: false });
  log('session', s.id, s.join_url);
  let switchedOff = false;
  try {
    const th = await newPage(browser, 'therapist');
    const gu = await newPage(browser, 'guest');
    await th.page.goto(`${base}${s.join_url}?autojoin=1#access_token=${encodeURIComponent(token)}`);
    await waitForJoined(th);
    await gu.page.goto(`${base}${s.join_url}?name=Guest%20Resume&autojoin=1`);
    const first = await waitForJoined(gu);
    await Promise.all([waitForRemoteVideos(th, 1), waitForRemoteVideos(gu, 1)]);

    await setAccess(false);
    switchedOff = true;
    log('therapist video access switched off');

    await gu.page.evaluate(() => window.theraroom._dropSocket());
    await waitForState(gu, 'joining', { timeout: 5000 });
    const back = await waitForJoined(gu, { timeout: 30000 });
    if (back.participantId !== first.participantId || !back.resumed) {
      throw new Error(`guest should resume as ${first.participantId} (resumed), got ${back.participantId} resumed=${back.resumed}`);
    }
    await Promise.all([waitForRemoteVideos(gu, 1), waitForRemoteVideos(th, 1)]);
    log('the running call resumed after the access change');

    const fresh = await newPage(browser, 'new-guest');
    await fresh.page.goto(`${base}${s.join_url}?name=Late%20Guest&autojoin=1`);
    const refusedGuest = await expectDisabled(fresh);
    const second = await newPage(browser, 'therapist-second-window');
    await second.page.goto(`${base}${s.join_url}?autojoin=1#access_token=${encodeURIComponent(token)}`);
    const refusedWindow = await expectDisabled(second);
    return { resumed: true, new_guest: refusedGuest, new_therapist_window: refusedWindow };
  } finally {
    if (switchedOff) await setAccess(true).catch((e) => log('could not switch access back on:', e.message));
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token }).catch(() => {});
  }
});
