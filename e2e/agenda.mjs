// agenda.mjs — the schedule lists of the client's and the therapist's home against the
// real server: sessions booked, moved and cancelled over REST show up on /client.html as
// upcoming, with a "Rescheduled" marker and their old time, and struck through with a
// "Cancelled" label (no Join); on /home.html the therapist moves today's session with the
// Move action and the server has it at the new time.
// Env: BASE_URL, DEMO_JSON (see lib.mjs; needs password, therapists[0] and client).
import { env, scenario, newPage, log, screenshot, PHONE, DESKTOP } from './lib.mjs';

const { base, demo } = env();
const therapist = demo.therapists && demo.therapists[0];
const client = demo.client;
if (!demo.password || !therapist || !client) throw new Error('DEMO_JSON needs password, therapists[0] and client');

/** REST as the demo therapist. */
async function rest(method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${therapist.token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

/** A whole minute `minutes` from now, as RFC 3339. */
const at = (minutes) => new Date(Math.floor(Date.now() / 60e3) * 60e3 + minutes * 60e3).toISOString();

/** Holds and confirms `[start, start + 50 min)` (or moves `sessionId` there). */
async function book(startMin, sessionId) {
  const body = { therapist_id: therapist.id, client_id: client.id, start: at(startMin), end: at(startMin + 50) };
  if (sessionId) body.session_id = sessionId;
  const hold = await rest('POST', '/api/schedule/holds', body);
  const done = await rest('POST', `/api/schedule/holds/${encodeURIComponent(hold.hold_key)}/confirm`);
  return done.sessions[0];
}

async function signIn(p, email, home) {
  await p.page.goto(`${base}/signin.html`);
  await p.page.fill('#email', email);
  await p.page.fill('#password', demo.password);
  await p.page.click('#signin-btn');
  await p.page.waitForURL(`${base}${home}`, { timeout: 15000 });
}

scenario('agenda', async (browser) => {
  // A random offset of whole days keeps reruns on one database out of each other's way.
  const day = 24 * 60;
  const offset = (2 + Math.floor(Math.random() * 300)) * day;
  const plain = await book(offset);
  const moved = await book(offset + day);
  const cancelled = await book(offset + 2 * day);
  await book(offset + 3 * day, moved.id);
  await rest('POST', `/api/schedule/sessions/${cancelled.id}/cancel`, { reason: 'e2e' });
  log('booked, moved and cancelled over REST');

  const cp = await newPage(browser, 'client', { viewport: { width: 390, height: 844 } });
  await signIn(cp, client.email, '/client.html');
  await cp.page.waitForSelector(`#upcoming .session[data-id="${cancelled.id}"]`);
  const item = (id) => cp.page.locator(`#upcoming .session[data-id="${id}"]`);
  if (!(await item(plain.id).locator('button', { hasText: 'Join' }).count())) throw new Error('a scheduled session has no Join button');
  if ((await item(plain.id).locator('.badge').count()) !== 0) throw new Error('an untouched session carries a marker');
  const movedText = await item(moved.id).innerText();
  if (!/Rescheduled/.test(movedText) || !/was /.test(movedText)) throw new Error(`moved session shows no marker: ${movedText}`);
  const gone = item(cancelled.id);
  if ((await gone.getAttribute('data-status')) !== 'cancelled') throw new Error('cancelled session not marked cancelled');
  if (!(await gone.locator('s').count()) || !/Cancelled/.test(await gone.innerText())) throw new Error('cancelled session not struck and labelled');
  if (await gone.locator('button', { hasText: 'Join' }).count()) throw new Error('a cancelled session offers Join');
  if ((await cp.page.locator('#upcoming li').count()) < 3) throw new Error('sessions missing from the list');
  log('client home: upcoming, rescheduled and cancelled shown as such');
  await screenshot(cp, 'schedule-client-phone', PHONE, { fullPage: true });
  await screenshot(cp, 'schedule-client-desktop', DESKTOP, { fullPage: true });

  // Today's session on the therapist's home, moved with the Move action (skipped when
  // the next hour crosses midnight: it would not be "today").
  const soon = new Date(Date.now() + 70 * 60e3);
  if (soon.getDate() !== new Date().getDate()) return { moveAction: 'skipped near midnight' };
  const today = await book(10);
  const tp = await newPage(browser, 'therapist', { viewport: { width: 1280, height: 800 } });
  await signIn(tp, therapist.email, '/home.html');
  const row = tp.page.locator(`#today .session[data-id="${today.id}"]`);
  await row.waitFor();
  await row.getByRole('button', { name: /^Move session/ }).click();
  await screenshot(tp, 'schedule-move-desktop', DESKTOP);
  const target = new Date(Date.parse(at(offset + 5 * day)));
  const pad = (n) => String(n).padStart(2, '0');
  const local = `${target.getFullYear()}-${pad(target.getMonth() + 1)}-${pad(target.getDate())}T${pad(target.getHours())}:${pad(target.getMinutes())}`;
  await row.locator('input[type="datetime-local"]').fill(local);
  await row.getByRole('button', { name: 'Move here', exact: true }).click();
  await tp.page.locator(`#today .session[data-id="${today.id}"]`).waitFor({ state: 'detached', timeout: 15000 });
  const after = await rest('GET', `/api/schedule/sessions/${today.id}`);
  if (Date.parse(after.start) !== target.getTime() || !after.rescheduled_at) throw new Error(`not moved: ${JSON.stringify(after)}`);
  log('therapist home: Move action moved today’s session');
  return { moved: today.id };
});
