// admin_backoffice.mjs — the rest of /admin.html against the real server: search, the
// bulk video switch (a reason is required), the video filter, blog permission grant and
// revoke (the server's messages), deactivating and reactivating a client, inviting a
// client for a therapist and withdrawing it, an e-mail that already has an account, and
// the organization switch. Everything is put back as it was (other scenarios use the
// demo therapists). Env: BASE_URL, DEMO_JSON (see lib.mjs).
import fs from 'node:fs';
import { env, scenario, newPage, log, DESKTOP } from './lib.mjs';

const { base, demo } = env();
/** The demo accounts' e-mail domain (a search that lists exactly the demo therapists). */
const DEMO_DOMAIN = (demo.therapists[0].email || '').split('@')[1] || 'demo.theraroom.test';

/** Wait until `fn(arg)` is true in the page (DOM conditions, no fixed sleeps). */
const until = (pg, fn, arg, what) => pg.waitForFunction(fn, arg, { timeout: 10000 })
  .catch(() => { throw new Error(`admin page: ${what}`); });
const rows = (sel) => document.querySelectorAll(`${sel} li.person`).length;
const textOf = ([sel, part]) => (document.querySelector(sel)?.textContent || '').includes(part);

async function bulkVideo(pg, on, n) {
  await pg.check('#select-all');
  await pg.fill('#bulk-reason', on ? 'e2e: back on' : 'e2e: check');
  await pg.click(on ? '#bulk-on' : '#bulk-off');
  await until(pg, textOf, ['#bulk-note', `switched ${on ? 'on' : 'off'} for ${n} therapist`], `bulk ${on ? 'on' : 'off'} note`);
}

const listed = (pg, n, what) => until(pg, ([s, k]) => document.querySelectorAll(`${s} li.person`).length === k, ['#therapists', n], what);

/** Works on the demo therapists only (other scenarios may have added their own). */
async function therapists(pg) {
  await pg.fill('#filter-q', 'carl');
  await listed(pg, 1, 'search for carl');
  await pg.fill('#filter-q', DEMO_DOMAIN);
  await listed(pg, demo.therapists.length, 'the demo therapists');
  const n = demo.therapists.length;
  await pg.check('#select-all');
  await pg.click('#bulk-off');
  await until(pg, textOf, ['#bulk-note', 'give a reason'], 'bulk without a reason refused');
  await bulkVideo(pg, false, n);
  await until(pg, (k) => document.querySelectorAll('#therapists .badge.warn').length === k, n, 'Video off badges');
  await pg.selectOption('#filter-video', 'on');
  await listed(pg, 0, 'video=on lists none of them');
  await pg.selectOption('#filter-video', 'all');
  await listed(pg, n, 'video=all lists them again');
  await bulkVideo(pg, true, n);
  await until(pg, () => document.querySelectorAll('#therapists .badge.warn').length === 0, null, 'no Video off badge');
  const blog = pg.locator('#therapists li.person').first().locator('button', { hasText: 'blog posting' });
  await blog.click();
  await until(pg, textOf, ['#therapists li.person .row-note', 'granted successfully'], 'blog grant message');
  await blog.click();
  await until(pg, textOf, ['#therapists li.person .row-note', 'revoked successfully'], 'blog revoke message');
  await pg.fill('#filter-q', '');
}

async function clients(pg) {
  const before = await pg.evaluate(rows, '#clients');
  await pg.locator('#clients li.person').first().locator('button', { hasText: 'Deactivate' }).click();
  await until(pg, ([s, n]) => document.querySelectorAll(`${s} li.person`).length === n, ['#clients', before - 1], 'client deactivated');
  await pg.selectOption('#filter-status', 'deactivated');
  await until(pg, (s) => document.querySelectorAll(`${s} li.person.inactive`).length === 1, '#clients', 'deactivated filter');
  await pg.locator('#clients li.person').first().locator('button', { hasText: 'Reactivate' }).click();
  await until(pg, (s) => document.querySelectorAll(`${s} li.person`).length === 0, '#clients', 'client reactivated');
  await pg.selectOption('#filter-status', 'active');
  await until(pg, ([s, n]) => document.querySelectorAll(`${s} li.person`).length === n, ['#clients', before], 'client back in the active list');
}

async function invitations(pg) {
  await pg.selectOption('#invite-role', 'client');
  await until(pg, () => document.querySelectorAll('#invite-therapist option').length >= 3, null, 'therapist choices for a client');
  await pg.fill('#invite-name', 'Pat Backoffice');
  await pg.fill('#invite-email', `pat-${Date.now()}@example.test`);
  await pg.selectOption('#invite-therapist', { index: 1 });
  await pg.click('#invite-btn');
  await until(pg, textOf, ['#invite-result-text', 'Pat Backoffice (Client)'], 'client invitation created');
  await until(pg, (s) => document.querySelectorAll(`${s} li.person`).length === 1, '#pending', 'one pending invitation');
  await pg.locator('#pending li.person').first().locator('button', { hasText: 'Withdraw' }).click();
  await until(pg, () => !document.getElementById('pending-empty').hidden, null, 'invitation withdrawn');
  await pg.fill('#invite-name', 'Someone Again');
  await pg.fill('#invite-email', demo.client.email);
  await pg.click('#invite-btn');
  await until(pg, textOf, ['#invite-error', 'already has an account'], 'email_taken sentence');
}

async function organizationSwitch(pg) {
  await pg.uncheck('#org-video');
  await until(pg, textOf, ['#org-video-note', 'Off:'], 'organization switched off');
  await pg.check('#org-video');
  await until(pg, textOf, ['#org-video-note', 'On:'], 'organization switched on');
}

/** The activity log lists the switches just made, filters by kind, and exports CSV. */
async function activityLog(pg) {
  await pg.selectOption('#audit-kind', 'organization.');
  await until(pg, () => {
    const rows = [...document.querySelectorAll('#audit-list .audit-entry')];
    return rows.length > 0 && rows.every((r) => r.dataset.action.startsWith('organization.'));
  }, null, 'organization switches in the activity log');
  await until(pg, textOf, ['#audit-list', 'by '], 'entries name who acted');
  const [download] = await Promise.all([pg.waitForEvent('download'), pg.click('#audit-csv')]);
  const file = await download.path();
  const csv = fs.readFileSync(file, 'utf8');
  if (!csv.startsWith('id,at,actor_id,')) throw new Error(`CSV has no header: ${csv.slice(0, 80)}`);
  if (!csv.includes('organization.')) throw new Error('CSV lacks the filtered entries');
  await pg.selectOption('#audit-kind', '');
  await until(pg, () => document.querySelectorAll('#audit-list .audit-entry').length >= 5, null, 'everything listed again');
}

scenario('admin_backoffice', async (browser) => {
  const admin = await newPage(browser, 'admin', { viewport: DESKTOP });
  const pg = admin.page;
  pg.on('dialog', (d) => d.accept()); // "Deactivate …?"
  await pg.goto(`${base}/signin.html`);
  await pg.fill('#email', demo.org_admin.email);
  await pg.fill('#password', demo.password);
  await pg.click('#signin-btn');
  await pg.waitForSelector('body[data-ready="1"]', { timeout: 15000 });
  await therapists(pg);
  log('therapists: search, bulk, filter, blog');
  await clients(pg);
  await invitations(pg);
  await organizationSwitch(pg);
  await activityLog(pg);
  const errors = admin.logs.filter((l) => l.includes('PAGE ERROR'));
  if (errors.length) throw new Error(`page errors: ${errors.join(' | ')}`);
  return { checked: ['search', 'bulk', 'video filter', 'blog', 'deactivate', 'invite', 'withdraw', 'email_taken', 'organization switch', 'activity log', 'CSV export'] };
});
