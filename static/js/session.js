// session.js — the signed-in person's session in a page.
// Why: every account page gets its short access token the same way (POST
// /api/auth/refresh with the HttpOnly refresh cookie), keeps it in memory (and in
// sessionStorage, where the call pages look for it), renews it a minute before it runs
// out, and sends the person to the sign-in page when the server refuses. See
// docs/ACCOUNTS.md.

import { api } from './api.js';
import { setAccessToken, getAccessToken, clearAccessToken } from './auth.js';

/** Where each role lands after signing in. */
const HOMES = {
  therapist: '/home.html',
  client: '/client.html',
  organization: '/admin.html',
  admin: '/admin.html',
  super_admin: '/admin.html',
};

/** Renew this long before the access token expires. */
const RENEW_EARLY_MS = 60_000;

let current = null; // { token, me, expiresAt }
let leaveOnFailure = true; // a refused renewal sends to sign-in (not on the call page)
let timer = null;
let pending = null;

/** The home page of a role (`/signin.html` for anything unknown). */
export function homeFor(role) {
  return HOMES[role] || '/signin.html';
}

/** The access token in memory, or null before `start()` / after sign-out. */
export function accessToken() {
  return current ? current.token : null;
}

/** The signed-in person (`Me` of docs/ACCOUNTS.md), or null. */
export function me() {
  return current ? current.me : null;
}

function adopt(session) {
  if (!session || !session.access_token) throw new Error('the server answered without an access token');
  const seconds = Number(session.expires_in) > 0 ? Number(session.expires_in) : 900;
  current = { token: session.access_token, me: session.me || (current && current.me) || null, expiresAt: Date.now() + seconds * 1000 };
  try { setAccessToken(current.token); } catch { /* storage off: memory only */ }
  clearTimeout(timer);
  timer = setTimeout(() => renew().catch(() => { if (leaveOnFailure) toSignIn(); }), Math.max(5_000, seconds * 1000 - RENEW_EARLY_MS));
  return current.me;
}

/**
 * Get a fresh access token with the refresh cookie: one request at a time in this tab,
 * and (Web Locks) across this site's tabs, because refresh tokens rotate: two tabs
 * presenting the same cookie at once would look like a replay and revoke the sign-in.
 */
export function renew() {
  if (!pending) {
    const refresh = () => api('/api/auth/refresh', { method: 'POST' });
    const locked = navigator.locks && navigator.locks.request
      ? navigator.locks.request('theraroom.refresh', refresh)
      : refresh();
    pending = locked.then(adopt).finally(() => { pending = null; });
  }
  return pending;
}

/** Forget the session in this tab (memory, sessionStorage, renewal timer). */
function forget() {
  clearTimeout(timer);
  current = null;
  try { clearAccessToken(); } catch { /* nothing stored */ }
}

/** Send the person to the sign-in page, coming back here afterwards. */
export function toSignIn() {
  forget();
  const here = location.pathname + location.search;
  location.assign(`/signin.html?next=${encodeURIComponent(here)}`);
}

/**
 * Start a page for signed-in people: refresh, check the role. Resolves with `Me`, or
 * null when the page is being left (sign-in page, or the role's own home). Network
 * failures reject (the page shows them); a refused refresh goes to sign-in.
 */
export async function start({ roles } = {}) {
  try {
    await renew();
  } catch (e) {
    if (e && (e.status === 401 || e.status === 403)) { toSignIn(); return null; }
    throw e;
  }
  if (roles && current.me && !roles.includes(current.me.role)) {
    location.replace(homeFor(current.me.role));
    return null;
  }
  return current.me;
}

/** Sign in with e-mail and password; resolves with `Me`. Rejects with the ApiError. */
export async function signIn(email, password) {
  return adopt(await api('/api/auth/login', { method: 'POST', body: { email, password } }));
}

/** Accept an invitation (sets the password, signs in); resolves with `Me`. */
export async function acceptInvitation(token, password) {
  return adopt(await api('/api/invitations/accept', { method: 'POST', body: { token, password } }));
}

/** Read `GET /api/me` again (e.g. after a refusal changed the video access). */
export async function reloadMe() {
  const m = await call('/api/me');
  if (current) current.me = m;
  return m;
}

/**
 * A REST call as the signed-in person. An expired or revoked token is renewed once and
 * the call retried; when renewal is refused the person goes to sign-in.
 */
export async function call(path, opts = {}) {
  try {
    return await api(path, { ...opts, token: accessToken() });
  } catch (e) {
    if (!e || e.status !== 401) throw e;
    try {
      await renew();
    } catch {
      toSignIn();
      throw e;
    }
    return api(path, { ...opts, token: accessToken() });
  }
}

/** Sign out: the server revokes the access token and the refresh family; then sign-in. */
export async function signOut() {
  const token = accessToken();
  try {
    await api('/api/auth/logout', { method: 'POST', token });
  } catch (e) {
    // An expired access token is refused outright: end the cookie's sign-in alone.
    if (token && e && e.status === 401) await api('/api/auth/logout', { method: 'POST' }).catch(() => {});
  }
  forget();
  location.assign('/signin.html');
}

/**
 * For the call page: a fresh access token for person `personId` from the refresh cookie,
 * or null (no cookie, or the cookie belongs to someone else). Never leaves the page.
 */
export async function freshTokenFor(personId) {
  leaveOnFailure = false;
  const before = getAccessToken();
  try {
    const m = await renew();
    if (m && m.id === personId) return accessToken();
  } catch { /* no cookie, or refused: keep the token in hand */ }
  // Someone else's sign-in (or none): leave this tab's token as it was.
  clearTimeout(timer);
  current = null;
  try { if (before) setAccessToken(before); } catch { /* memory only */ }
  return null;
}

/** A same-site path from `?next=` (never another origin), or null. */
export function nextPath() {
  const next = new URLSearchParams(location.search).get('next');
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : null;
}
