// api.js — the one place that talks to TheraRoom's REST API.
// Why: every page needs the same fetch + JSON + `{"error":{"code","message"}}` handling,
// and the same human sentences for error codes (also used for WebSocket refusals).

/** An error answered by the server (or the network), with a machine `code`. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null, body = null) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    /** Seconds from the `Retry-After` header (429 answers), or null. */
    this.retryAfter = retryAfter;
    /** The whole JSON answer (e.g. a 409 `slot_conflict` with its `suggestions`), or null. */
    this.body = body;
  }
}

/**
 * Call the REST API. Returns the parsed JSON body (or null for an empty body).
 * Throws ApiError on any non-2xx answer or network failure.
 */
export async function api(path, { method = 'GET', token, body, credentials = 'same-origin' } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials, // the refresh cookie (HttpOnly, scoped to /api/auth) rides along
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'Could not reach the server. Check your connection and try again.');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = data && data.error;
    const code = (err && err.code) || statusCode(res.status);
    const wait = Number.parseInt(res.headers.get('Retry-After') || '', 10);
    throw new ApiError(res.status, code, (err && err.message) || messageFor(code), Number.isFinite(wait) ? wait : null, data);
  }
  return data;
}

function statusCode(status) {
  switch (status) {
    case 401: return 'unauthorized';
    case 403: return 'forbidden';
    case 404: return 'not_found';
    case 409: return 'conflict';
    case 410: return 'session_ended';
    default: return status >= 500 ? 'internal' : 'http_' + status;
  }
}

const MESSAGES = {
  therapist_disabled:
    "Video sessions are not enabled for this therapist's account. Please contact your organization administrator.",
  organization_disabled:
    'Video sessions are not enabled for this organization. Please contact your organization administrator.',
  room_full: 'This session is full.',
  session_ended: 'This session has ended.',
  session_not_found: 'This link is not valid or the session is over.',
  not_found: 'This link is not valid or the session is over.',
  forbidden: 'You are not allowed to join this session.',
  unauthorized: 'Your sign-in has expired or is not valid. Please sign in again or reopen the link.',
  replaced: 'You joined from another tab or window.',
  removed: 'The therapist removed you from this session.',
  link_withdrawn: 'The therapist withdrew this link. Ask them for a new one.',
  guests_not_allowed: 'This session admits invited participants only. Please sign in to join.',
  protocol_version: 'This page is out of date. Please reload it.',
  join_timeout: 'Joining took too long. Please try again.',
  internal: 'Something went wrong on the server. Please try again.',
  network: 'Could not reach the server. Check your connection and try again.',
  connection_lost: 'The connection was lost. Check your network and reload the page to rejoin.',
  media_failed: 'Could not start the call media.',
  declined: 'The therapist did not let you in to this session.',
  waiting_room_full: 'The waiting room is full right now. Please try again in a few minutes.',
  rate_limited: 'Too many messages were sent too fast. Please reload the page to rejoin.',
  invalid_credentials: 'That e-mail address and password do not match an active account.',
  too_many_attempts: 'Too many failed sign-ins. Please wait before trying again.',
  weak_password: 'The password must be 10 to 128 characters long.',
  invitation_used: 'This invitation has already been used. Sign in with the password you chose.',
  invitation_expired: 'This invitation has expired. Ask your practice to send you a new one.',
  invitation_not_found: 'This invitation link is not valid, or it was withdrawn. Ask your practice for a new one.',
  email_taken: 'Someone with this e-mail address already has an account.',
};

/** True when we have our own sentence for this code. */
export function hasMessage(code) {
  return Object.prototype.hasOwnProperty.call(MESSAGES, code);
}

/** A human sentence for an error code (server codes from PROTOCOL.md and REST). */
export function messageFor(code, fallback) {
  return MESSAGES[code] || fallback || 'Something went wrong. Please try again.';
}

/** Human sentence preferring our own wording for known codes, else the server's message. */
export function describeError(err) {
  if (err && MESSAGES[err.code]) return MESSAGES[err.code];
  return (err && err.message) || messageFor('internal');
}
