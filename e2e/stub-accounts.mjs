// stub-accounts.mjs — the accounts routes of docs/ACCOUNTS.md for stub-server.mjs: sign-in
// with a refresh cookie, /api/me, invitations, people, video settings, blog permission,
// and a day of booked and group sessions. In memory, one organization.
// Why: lets the account pages (static/signin.html, invite.html, home.html, admin.html,
// client.html) be developed and looked at without the Rust server.
// Demo accounts: admin@stub.test, ada@stub.test (therapist), casey@stub.test (client),
// password "correct horse battery" for all.
import crypto from 'node:crypto';

export const PASSWORD = 'correct horse battery';
const org = { id: 'org-1', name: 'Riverside Therapy', theraptrack_controlled: true, video_sessions_enabled: true };
const now = () => Date.now();
const iso = (ms) => new Date(ms).toISOString();
const people = [
  { id: 'u-admin', email: 'admin@stub.test', display_name: 'Morgan Admin', role: 'organization' },
  { id: 'u-ada', email: 'ada@stub.test', display_name: 'Dr. Ada Lovelace', role: 'therapist', partner_code: 'ADA001', video_sessions_enabled: true, can_post_blogs: false },
  { id: 'u-grace', email: 'grace@stub.test', display_name: 'Dr. Grace Hopper', role: 'therapist', partner_code: 'GRA002', video_sessions_enabled: false, can_post_blogs: true },
  { id: 'u-casey', email: 'casey@stub.test', display_name: 'Casey Client', role: 'client', therapist_id: 'u-ada' },
  { id: 'u-robin', email: 'robin.with.a.rather.long.address@example.org', display_name: 'Robin Client', role: 'client', therapist_id: 'u-grace' },
].map((p) => ({ active: true, created_at: iso(now() - 86400e3 * 30), password: PASSWORD, ...p }));
const access = new Map(); // access token -> person id
const refresh = new Map(); // refresh token -> person id
const invitations = []; // { id, token, email, display_name, role, therapist_id, expires_at, created_at, used }
const failures = new Map(); // email -> count

const json = (res, status, body, headers = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
};
const err = (res, status, code, message, headers) => json(res, status, { error: { code, message } }, headers);
const byId = (id) => people.find((p) => p.id === id);

function videoAccess(t) {
  if (!org.video_sessions_enabled) return { is_enabled: false, reason: 'organization_disabled', message: 'Video sessions are not enabled for your organization. Please contact your organization administrator.' };
  if (!t.video_sessions_enabled) return { is_enabled: false, reason: 'therapist_disabled', message: 'Video sessions are not enabled for your account. Please contact your organization administrator.' };
  return { is_enabled: true, reason: 'enabled', message: 'Video sessions are enabled.' };
}

function meOf(p) {
  return { id: p.id, email: p.email, display_name: p.display_name, role: p.role, organization: { ...org },
    therapist: p.role === 'therapist' ? { partner_code: p.partner_code, can_post_blogs: p.can_post_blogs, video_access: videoAccess(p) } : null,
    client: p.role === 'client' ? { therapist_id: p.therapist_id } : null };
}

function session(res, p, status = 200) {
  const a = 'acc.' + crypto.randomBytes(12).toString('base64url');
  const r = crypto.randomBytes(18).toString('base64url');
  access.set(a, p.id);
  refresh.set(r, p.id);
  json(res, status, { access_token: a, token_type: 'Bearer', expires_in: 900, me: meOf(p) },
    { 'set-cookie': `theraroom_refresh=${r}; HttpOnly; SameSite=Strict; Path=/api/auth` });
}

const cookieOf = (req) => ((req.headers.cookie || '').match(/theraroom_refresh=([^;]+)/) || [])[1];
const clearCookie = { 'set-cookie': 'theraroom_refresh=; HttpOnly; SameSite=Strict; Path=/api/auth; Max-Age=0' };

/** The signed-in person behind a bearer token, or null. */
export function caller(auth) {
  const p = byId(access.get(auth));
  return p && p.active ? p : null;
}

/** 403 body for a therapist whose video is off, or null. */
export function sessionRefusal(auth) {
  const p = caller(auth);
  if (!p || p.role !== 'therapist') return null;
  const a = videoAccess(p);
  return a.is_enabled ? null : { code: a.reason, message: a.message };
}

const personView = (p) => {
  const v = { id: p.id, email: p.email, display_name: p.display_name, role: p.role, active: p.active, created_at: p.created_at };
  if (p.role === 'therapist') Object.assign(v, { partner_code: p.partner_code, video_sessions_enabled: p.video_sessions_enabled, can_post_blogs: p.can_post_blogs });
  if (p.role === 'client') Object.assign(v, { therapist_id: p.therapist_id, therapist_name: (byId(p.therapist_id) || {}).display_name || null });
  return v;
};
const inviteView = (i) => ({ id: i.id, email: i.email, display_name: i.display_name, role: i.role, therapist_id: i.therapist_id || null, expires_at: i.expires_at, created_at: i.created_at });

function matches(p, url) {
  const q = (url.searchParams.get('q') || '').toLowerCase();
  const status = url.searchParams.get('status') || 'active';
  if (q && !p.display_name.toLowerCase().includes(q) && !p.email.includes(q)) return false;
  const video = url.searchParams.get('video');
  if (video && p.role === 'therapist' && p.video_sessions_enabled !== (video === 'on')) return false;
  return status === 'all' || (status === 'active') === p.active;
}

function today() {
  const d = new Date();
  const at = (h, m) => new Date(d.getFullYear(), d.getMonth(), d.getDate(), h, m).getTime();
  const mk = (id, client, start, mins) => ({ id, organization_id: org.id, therapist_id: 'u-ada', therapist_name: 'Dr. Ada Lovelace', client_id: client.id,
    client_name: client.display_name, start: iso(start), end: iso(start + mins * 60e3), time_zone: 'Europe/Berlin', status: 'scheduled', attendance: 'unknown' });
  return [mk('b-1', byId('u-casey'), at(9, 0), 50), mk('b-2', byId('u-robin'), Math.max(now() + 5 * 60e3, at(0, 0)), 50), mk('b-3', byId('u-casey'), at(23, 0), 50)];
}
const groups = () => [{ id: 'g-1', title: 'Thursday anxiety circle', session_type: 'virtual', status: 'approved', meeting_link: null,
  scheduled_at: iso(now() + 26 * 3600e3), ends_at: iso(now() + 27.5 * 3600e3), participant_count: 5, max_participants: 8 },
{ id: 'g-2', title: 'Parents’ evening (in person)', session_type: 'in_person', status: 'pending_approval', meeting_link: null,
  scheduled_at: iso(now() + 5 * 86400e3), ends_at: iso(now() + 5 * 86400e3 + 3600e3), participant_count: 2, max_participants: 12 }];

async function authRoutes(req, res, p, body) {
  if (p === '/api/auth/login' && req.method === 'POST') {
    const b = await body(req);
    const email = String(b.email || '').toLowerCase();
    if ((failures.get(email) || 0) >= 5) return err(res, 429, 'too_many_attempts', 'too many failed sign-ins; try again later', { 'retry-after': '840' });
    const who = people.find((x) => x.email === email);
    if (!who || !who.active || who.password !== b.password) {
      failures.set(email, (failures.get(email) || 0) + 1);
      return err(res, 401, 'invalid_credentials', 'e-mail or password is wrong');
    }
    failures.delete(email);
    return session(res, who);
  }
  if (p === '/api/auth/refresh' && req.method === 'POST') {
    const r = cookieOf(req);
    const who = byId(refresh.get(r));
    if (!who || !who.active) return err(res, 401, 'invalid_refresh_token', 'sign in again', clearCookie);
    refresh.delete(r);
    return session(res, who);
  }
  if (p === '/api/auth/logout' && req.method === 'POST') {
    refresh.delete(cookieOf(req));
    return json(res, 204, undefined, clearCookie);
  }
  if (p === '/api/invitations/inspect' && req.method === 'POST') {
    const b = await body(req);
    const inv = invitations.find((i) => i.token === b.token);
    if (!inv) return err(res, 404, 'invitation_not_found', 'no such invitation');
    if (inv.used) return err(res, 410, 'invitation_used', 'invitation already used');
    return json(res, 200, { email: inv.email, display_name: inv.display_name, role: inv.role, organization_name: org.name, expires_at: inv.expires_at });
  }
  if (p === '/api/invitations/accept' && req.method === 'POST') {
    const b = await body(req);
    const inv = invitations.find((i) => i.token === b.token);
    if (!inv) return err(res, 404, 'invitation_not_found', 'no such invitation');
    if (inv.used) return err(res, 410, 'invitation_used', 'invitation already used');
    const pw = String(b.password || '');
    if (pw.length < 10 || pw.length > 128) return err(res, 400, 'weak_password', 'password must be 10 to 128 characters');
    inv.used = true;
    const who = { id: 'u-' + crypto.randomBytes(4).toString('hex'), email: inv.email, display_name: inv.display_name, role: inv.role,
      active: true, created_at: iso(now()), password: pw, partner_code: 'NEW' + people.length, video_sessions_enabled: true, can_post_blogs: false, therapist_id: inv.therapist_id };
    people.push(who);
    return session(res, who);
  }
  return false;
}

async function orgRoutes(req, res, p, url, me, body) {
  let m;
  const base = `/api/organizations/${org.id}`;
  if (p === `${base}/video-settings`) {
    if (req.method === 'PUT') org.video_sessions_enabled = !!(await body(req)).video_sessions_enabled;
    return json(res, 200, { organization_id: org.id, theraptrack_controlled: org.theraptrack_controlled, video_sessions_enabled: org.video_sessions_enabled });
  }
  if (p === `${base}/therapists`) return json(res, 200, { therapists: people.filter((x) => x.role === 'therapist' && matches(x, url)).map(personView) });
  if (p === `${base}/therapists/video-settings/bulk` && req.method === 'PUT') {
    const b = await body(req);
    for (const id of b.therapist_ids || []) { const t = byId(id); if (t) t.video_sessions_enabled = !!b.video_sessions_enabled; }
    return json(res, 200, { updated: (b.therapist_ids || []).length, video_sessions_enabled: !!b.video_sessions_enabled, therapist_ids: b.therapist_ids });
  }
  if ((m = p.match(/^\/api\/organizations\/org-1\/therapists\/([^/]+)\/(video-settings|blog-permission\/grant|blog-permission\/revoke|deactivate|reactivate)$/))) {
    const t = byId(m[1]);
    if (!t || t.role !== 'therapist') return err(res, 404, 'therapist_not_found', 'therapist not found');
    if (m[2] === 'video-settings') {
      t.video_sessions_enabled = !!(await body(req)).video_sessions_enabled;
      return json(res, 200, { therapist_id: t.id, name: t.display_name, email: t.email, video_sessions_enabled: t.video_sessions_enabled, access: videoAccess(t) });
    }
    if (m[2].startsWith('blog')) {
      const grant = m[2].endsWith('grant');
      if (t.can_post_blogs === grant) return err(res, 400, grant ? 'permission_already_granted' : 'permission_already_revoked', `Blog posting permission is already ${grant ? 'granted' : 'revoked'}`);
      t.can_post_blogs = grant;
      return json(res, 200, { success: true, message: `Blog posting permission ${grant ? 'granted' : 'revoked'} successfully`, therapist: { id: t.id, can_post_blogs: grant } });
    }
    t.active = m[2] === 'reactivate';
    return json(res, 200, personView(t));
  }
  if (p === `${base}/invitations` && req.method === 'GET') return json(res, 200, { invitations: invitations.filter((i) => !i.used).map(inviteView) });
  if (p === `${base}/invitations` && req.method === 'POST') {
    const b = await body(req);
    const email = String(b.email || '').toLowerCase();
    if (people.some((x) => x.email === email)) return err(res, 409, 'email_taken', 'an account with this e-mail exists');
    const token = crypto.randomBytes(24).toString('base64url');
    const inv = { id: 'i-' + crypto.randomBytes(4).toString('hex'), token, email, display_name: b.display_name, role: b.role, therapist_id: b.therapist_id,
      expires_at: iso(now() + 7 * 86400e3), created_at: iso(now()) };
    invitations.push(inv);
    return json(res, 201, { ...inviteView(inv), invite_url: `http://${req.headers.host}/invite.html#token=${token}` });
  }
  if ((m = p.match(/^\/api\/organizations\/org-1\/invitations\/([^/]+)$/)) && req.method === 'DELETE') {
    const i = invitations.findIndex((x) => x.id === m[1]);
    if (i < 0) return err(res, 404, 'invitation_not_found', 'no such invitation');
    invitations.splice(i, 1);
    return json(res, 204);
  }
  if (p === '/api/clients') return json(res, 200, { clients: people.filter((x) => x.role === 'client' && matches(x, url) && (me.role !== 'therapist' || x.therapist_id === me.id)).map(personView) });
  if ((m = p.match(/^\/api\/clients\/([^/]+)\/(deactivate|reactivate)$/))) {
    const c = byId(m[1]);
    if (!c || c.role !== 'client') return err(res, 404, 'client_not_found', 'client not found');
    c.active = m[2] === 'reactivate';
    return json(res, 200, personView(c));
  }
  return false;
}

/** Answer an accounts route; false when the request is not one of them. */
export async function handleAccounts(req, res, url, body) {
  const p = url.pathname;
  const handled = await authRoutes(req, res, p, body);
  if (handled !== false) return true;
  const auth = (req.headers.authorization || '').replace(/^Bearer /, '');
  const me = caller(auth);
  const accountRoute = p === '/api/me' || p.startsWith('/api/organizations/') || p.startsWith('/api/clients') || p.startsWith('/api/schedule') || p.startsWith('/api/group-sessions');
  if (!accountRoute) return false;
  if (!me) { err(res, 401, 'invalid_token', 'sign in again'); return true; }
  if (p === '/api/me') { json(res, 200, meOf(me)); return true; }
  if (p === '/api/schedule/sessions') {
    const list = today().filter((s) => me.role !== 'client' || s.client_id === me.id);
    json(res, 200, { sessions: list });
    return true;
  }
  if (/^\/api\/(schedule\/sessions|group-sessions)\/[^/]+\/video$/.test(p)) {
    const refusal = sessionRefusal(auth) || (org.video_sessions_enabled ? null : { code: 'organization_disabled', message: 'Video sessions are not enabled for this organization.' });
    if (refusal) { err(res, 403, refusal.code, refusal.message); return true; }
    json(res, 200, { session_id: 's-room', join_url: '/join/room' + p.split('/')[4], expires_at: iso(now() + 3600e3) });
    return true;
  }
  if (p.startsWith('/api/group-sessions/')) { json(res, 200, { sessions: groups() }); return true; }
  return (await orgRoutes(req, res, p, url, me, body)) !== false;
}
