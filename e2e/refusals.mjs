// refusals.mjs — refused joins show clear sentences: a third person in a 2-seat room
// ("This session is full."), an unknown link, a link the therapist withdrew by removing
// a guest (the removed guest is told so), and a link to a session that was ended.
// Env: BASE_URL, DEMO_JSON (see lib.mjs). Prints one JSON line on stdout.
import { env, scenario, newPage, waitForJoined, waitForState, hookState, createSession, rest, log } from './lib.mjs';

const { base, demo } = env();
const token = demo.therapists[0].token;

async function expectRefusal(p, codes, sentence) {
  const st = await waitForState(p, 'error', { timeout: 15000 });
  if (!codes.includes(st.errorCode)) throw new Error(`${p.name}: expected error ${codes.join('|')}, got ${st.errorCode} (${st.message})`);
  if (!st.message.includes(sentence)) throw new Error(`${p.name}: expected message "${sentence}", got "${st.message}"`);
  return st.errorCode;
}

scenario('refusals', async (browser) => {
  const s = await createSession(base, token, { session_name: 'e2e refusals', max_participants: 2, waiting_room: false });
  log('session', s.id, s.join_url);
  const result = {};
  try {
    const th = await newPage(browser, 'therapist');
    await th.page.goto(`${base}${s.join_url}?autojoin=1#access_token=${encodeURIComponent(token)}`);
    await waitForJoined(th);
    const g1 = await newPage(browser, 'guest1');
    await g1.page.goto(`${base}${s.join_url}?name=Guest%20One&autojoin=1`);
    await waitForJoined(g1);

    const g2 = await newPage(browser, 'guest2');
    await g2.page.goto(`${base}${s.join_url}?name=Guest%20Two&autojoin=1`);
    result.room_full = await expectRefusal(g2, ['room_full'], 'This session is full.');
    log('third person refused: room_full');

    const bad = await newPage(browser, 'badlink');
    await bad.page.goto(`${base}/join/not-a-real-share-token?name=Nobody&autojoin=1`);
    result.bad_link = await expectRefusal(bad, ['session_not_found'], 'This link is not valid or the session is over.');

    // The therapist removes guest one: they are told, and the link they came through
    // is withdrawn, so it admits nobody new.
    const { participantId } = await hookState(g1);
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/participants/${encodeURIComponent(participantId)}`,
      { method: 'DELETE', token });
    const removed = await waitForState(g1, 'ended', { timeout: 10000 });
    if (!removed.message.includes('The therapist removed you')) throw new Error(`removed guest saw "${removed.message}"`);
    const again = await newPage(browser, 'again');
    await again.page.goto(`${base}${s.join_url}?name=Guest%20One&autojoin=1`);
    result.withdrawn_link = await expectRefusal(again, ['link_withdrawn'], 'The therapist withdrew this link.');
    log('removed guest told; withdrawn link refused');

    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token });
    await waitForState(th, 'ended', { timeout: 10000 });
    const late = await newPage(browser, 'late');
    await late.page.goto(`${base}${s.join_url}?name=Late%20Guest&autojoin=1`);
    const st = await waitForState(late, 'error', { timeout: 15000 });
    const ok = (st.errorCode === 'session_ended' && st.message.includes('This session has ended.')) ||
      (st.errorCode === 'session_not_found' && st.message.includes('This link is not valid'));
    if (!ok) throw new Error(`late guest after end: got ${st.errorCode} "${st.message}"`);
    result.after_end = st.errorCode;
    return result;
  } finally {
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token }).catch(() => {});
  }
});
