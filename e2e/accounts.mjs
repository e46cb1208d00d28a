// accounts.mjs — accounts end to end in the browser: the organization admin signs in on
// /signin.html and invites a new therapist (a new e-mail per run); the therapist opens
// the invitation link in a fresh context, sets a password, lands on /home.html, signs
// out, signs in again, opens /therapist on the same session and starts a session; a
// guest joins through the share link and both decode each other's video; the call's
// socket drops and it resumes on a token renewed from the cookie; the admin switches
// that therapist's video off on /admin.html; the therapist's home then refuses a new
// session with the server's message, and after a reload shows the banner with Start
// disabled.
// With E2E_SCREENSHOTS set it writes signin, invite, home, admin and client pages at
// 390x844 and 1280x800 (docs/screenshots). Env: BASE_URL, DEMO_JSON (see lib.mjs).
import { env, scenario, newPage, log, sleep, admitGuest, waitForJoined, waitForState, waitForRemoteVideos, screenshot, PHONE, DESKTOP } from './lib.mjs';

const { base, demo } = env();
const password = demo.password;
const adminEmail = demo.org_admin && demo.org_admin.email;
if (!password || !adminEmail) throw new Error('DEMO_JSON needs a top-level "password" and org_admin.email (theraroom demo --json)');

/** Both sizes of one page for the docs; back to `viewport` afterwards. */
async function shots(p, name, viewport, opts) {
  if (!process.env.E2E_SCREENSHOTS) return;
  await screenshot(p, `${name}-phone`, PHONE, opts);
  await screenshot(p, `${name}-desktop`, DESKTOP, opts);
  await p.page.setViewportSize(viewport);
}

/** Sign in on /signin.html and wait for the role's home. */
async function signIn(p, email, home) {
  await p.page.goto(`${base}/signin.html`);
  await p.page.fill('#email', email);
  await p.page.fill('#password', password);
  await p.page.click('#signin-btn');
  await p.page.waitForURL(`${base}${home}`, { timeout: 15000 });
}

async function text(p, selector) {
  return (await p.page.textContent(selector)) || '';
}

/** The admin invites a therapist on /admin.html; returns the one-time link. */
async function inviteTherapist(admin, email) {
  await admin.page.waitForSelector('body[data-ready="1"]', { timeout: 15000 });
  await admin.page.selectOption('#invite-role', 'therapist');
  await admin.page.fill('#invite-name', 'Dr. Eve Example');
  await admin.page.fill('#invite-email', email);
  await admin.page.click('#invite-btn');
  await admin.page.waitForSelector('#invite-result:not([hidden])', { timeout: 10000 });
  const link = await admin.page.inputValue('#invite-link');
  if (!link.includes('/invite.html#token=')) throw new Error(`unexpected invitation link ${link}`);
  const pending = await admin.page.locator(`#pending li[data-email="${email}"]`).count();
  if (pending !== 1) throw new Error(`the new invitation is not listed as pending (${pending})`);
  return link;
}

/** The invited therapist sets a password on /invite.html and lands on /home.html. */
async function acceptInvitation(th, link, email) {
  await th.page.goto(link);
  await th.page.waitForSelector('#invite:not([hidden])', { timeout: 10000 });
  if ((await th.page.evaluate(() => location.hash)) !== '') throw new Error('the invitation token stayed in the address bar');
  if ((await text(th, '#invite-email')) !== email) throw new Error(`invitation shows ${await text(th, '#invite-email')}`);
  await shots(th, 'invite', DESKTOP);
  await th.page.fill('#password', password);
  await th.page.fill('#password2', `${password}-typo`);
  await th.page.click('#accept-btn');
  if (!(await text(th, '#form-error')).includes('not the same')) throw new Error('mismatched passwords were not caught');
  await th.page.fill('#password2', password);
  await th.page.click('#accept-btn');
  await th.page.waitForURL(`${base}/home.html`, { timeout: 15000 });
  await th.page.waitForSelector('#start-card:not([hidden])');
}

/** Start an instant session on the home page, open the call in a new tab, return both. */
async function startCall(th) {
  await th.page.click('#start-btn');
  await th.page.waitForSelector('#created:not([hidden])', { timeout: 10000 });
  const share = await th.page.inputValue('#share-link');
  const [popup] = await Promise.all([th.context.waitForEvent('page'), th.page.click('#join-now')]);
  const call = { name: 'therapist-call', context: th.context, page: popup, logs: [], refreshes: 0 };
  popup.on('console', (m) => call.logs.push(`console.${m.type()}: ${m.text()}`));
  popup.on('requestfinished', (r) => { if (r.url().endsWith('/api/auth/refresh')) call.refreshes += 1; });
  await popup.waitForSelector('#join-btn', { timeout: 15000 });
  await popup.click('#join-btn');
  await waitForJoined(call);
  return { share, call };
}

/** The admin switches one therapist's video off with the row's switch. */
async function switchVideoOff(admin, email) {
  await admin.page.reload();
  await admin.page.waitForSelector('body[data-ready="1"]', { timeout: 15000 });
  const row = admin.page.locator(`#therapists li[data-email="${email}"]`);
  await row.waitFor({ timeout: 10000 });
  const box = row.locator('input[role="switch"]');
  if (!(await box.isChecked())) throw new Error('the new therapist should start with video on');
  await box.click();
  await row.locator('.row-note', { hasText: 'switched off' }).waitFor({ timeout: 10000 });
  await row.locator('.badge', { hasText: 'Video off' }).waitFor({ timeout: 5000 });
}

/** The stale home page tries anyway (refusal shown), then a reload shows the banner. */
async function expectRefused(th) {
  await th.page.click('#start-btn');
  await th.page.waitForSelector('#message:not([hidden])', { timeout: 10000 });
  const refusal = await text(th, '#message');
  if (!/not enabled/i.test(refusal)) throw new Error(`the refusal says "${refusal}"`);
  await th.page.waitForSelector('#access-banner:not([hidden])', { timeout: 10000 });
  await th.page.reload();
  await th.page.waitForSelector('#access-banner:not([hidden])', { timeout: 10000 });
  const banner = await text(th, '#access-reason');
  if (!/not enabled for your account/i.test(banner)) throw new Error(`the banner says "${banner}"`);
  if (!(await th.page.isDisabled('#start-btn'))) throw new Error('Start stays enabled while video is off');
  return { refusal: refusal.trim(), banner: banner.trim() };
}

scenario('accounts', async (browser) => {
  const email = `e2e-therapist-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.test`;

  const admin = await newPage(browser, 'admin', { viewport: DESKTOP });
  await admin.page.goto(`${base}/signin.html`);
  await shots(admin, 'signin', DESKTOP);
  await admin.page.fill('#email', adminEmail);
  await admin.page.fill('#password', `${password}-wrong`);
  await admin.page.click('#signin-btn');
  await admin.page.waitForSelector('#message:not([hidden])', { timeout: 10000 });
  if (!(await text(admin, '#message')).includes('do not match')) throw new Error(`wrong password: "${await text(admin, '#message')}"`);
  await signIn(admin, adminEmail, '/admin.html');
  const link = await inviteTherapist(admin, email);
  log('invited', email);

  const th = await newPage(browser, 'therapist-home', { viewport: DESKTOP });
  await acceptInvitation(th, link, email);
  log('invitation accepted, therapist home');
  const again = await newPage(browser, 'invitation-again');
  await again.page.goto(link);
  await again.page.waitForSelector('#message:not([hidden])', { timeout: 10000 });
  if (!(await text(again, '#message')).includes('already been used')) throw new Error(`reused invitation: "${await text(again, '#message')}"`);
  if (await again.page.isVisible('#password-form')) throw new Error('a used invitation still offers the password form');
  await again.context.close();
  await th.page.click('#signout-btn');
  await th.page.waitForURL(/\/signin\.html/, { timeout: 10000 });
  await th.page.goto(`${base}/home.html`);
  await th.page.waitForURL(/\/signin\.html/, { timeout: 10000 }); // signed out means signed out
  await signIn(th, email, '/home.html');
  await th.page.waitForSelector('#start-card:not([hidden])');
  // /therapist runs on the same session (refresh cookie), no pasted token.
  await th.page.click('#more a');
  await th.page.waitForSelector('#create:not([hidden])', { timeout: 10000 });
  await th.page.waitForSelector('#who-name:has-text("Dr. Eve Example")', { timeout: 10000 });
  await th.page.goto(`${base}/home.html`);
  await th.page.waitForSelector('#start-card:not([hidden])');
  await shots(th, 'home', DESKTOP);

  const { share, call } = await startCall(th);
  const guest = await newPage(browser, 'guest');
  await guest.page.goto(`${share}?name=E2E%20Guest&autojoin=1`);
  await admitGuest(call, guest);
  await Promise.all([waitForRemoteVideos(call, 1), waitForRemoteVideos(guest, 1)]);
  log('therapist and guest decode each other');

  // The call renews the therapist's access token from the cookie before a reconnect.
  const before = call.refreshes;
  const first = await waitForJoined(call);
  await call.page.evaluate(() => window.theraroom._dropSocket());
  await waitForState(call, 'joining', { timeout: 5000 });
  const back = await waitForJoined(call, { timeout: 30000 });
  if (!back.resumed || back.participantId !== first.participantId) throw new Error(`the therapist's call did not resume: ${JSON.stringify(back)}`);
  if (call.refreshes <= before) throw new Error('the call page reconnected without renewing its access token');
  await waitForRemoteVideos(guest, 1);
  log('the therapist call resumed on a renewed token');

  await switchVideoOff(admin, email);
  await shots(admin, 'admin', DESKTOP, { fullPage: true });
  log('admin switched the therapist off');
  const refused = await expectRefused(th);
  await shots(th, 'home-disabled', DESKTOP);

  if (process.env.E2E_SCREENSHOTS && demo.client && demo.client.email) {
    const client = await newPage(browser, 'client', { viewport: DESKTOP });
    await signIn(client, demo.client.email, '/client.html');
    await client.page.waitForSelector('#upcoming-card:not([hidden])');
    await shots(client, 'client', DESKTOP);
  }
  await sleep(100);
  return { invited: email, ...refused };
});
