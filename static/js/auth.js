// auth.js — where a signed-in user's JWT lives in the browser (sessionStorage, per tab).
// Why: both pages accept `#access_token=<jwt>` in the URL; this takes it out of the
// address bar (history.replaceState) so it does not linger in history or screenshots.

const KEY = 'theraroom.access_token';

/** Move `#access_token=…` into sessionStorage and strip the fragment. Returns the token. */
export function takeAccessToken() {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ''));
  const t = hash.get('access_token');
  if (t) {
    setAccessToken(t);
    history.replaceState(history.state, '', location.pathname + location.search);
  }
  return getAccessToken();
}

export function getAccessToken() {
  try { return sessionStorage.getItem(KEY) || null; } catch { return null; }
}

export function setAccessToken(t) {
  sessionStorage.setItem(KEY, String(t).trim());
}

export function clearAccessToken() {
  sessionStorage.removeItem(KEY);
}

/** The JWT's claims, unverified (display only), or null. */
export function tokenClaims(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((part.length + 3) % 4);
    const json = decodeURIComponent([...atob(b64)].map((c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

export function isExpired(token) {
  const c = tokenClaims(token);
  return !!(c && typeof c.exp === 'number' && c.exp * 1000 <= Date.now());
}
