// signin.js — entry point of /signin.html: e-mail + password, then the role's home.
// Why: the one door into the account pages; the server's refusals (wrong credentials,
// too many attempts and how long to wait) are said in plain sentences.

import { messageFor } from './api.js';
import { $ } from './dom.js';
import { signIn, renew, homeFor, nextPath } from './session.js';
import { showMessage, clearMessage } from './shell.js';

/** "2 minutes", "1 minute", "30 seconds" for a wait in seconds. */
function waitText(seconds) {
  if (seconds >= 90) {
    const m = Math.ceil(seconds / 60);
    return `${m} minutes`;
  }
  if (seconds >= 60) return '1 minute';
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}

/** The sentence for a refused sign-in. */
function refusal(e) {
  if (e.code === 'too_many_attempts') {
    return e.retryAfter
      ? `Too many failed sign-ins. Please wait ${waitText(e.retryAfter)} before trying again.`
      : messageFor('too_many_attempts');
  }
  if (e.code === 'invalid_credentials') return messageFor('invalid_credentials');
  return e.message || messageFor('internal');
}

function go(me) {
  location.assign(nextPath() || homeFor(me && me.role));
}

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const email = $('email').value.trim();
  const password = $('password').value;
  $('form-error').textContent = '';
  if (!email || !password) {
    $('form-error').textContent = 'Please enter your e-mail address and your password.';
    (email ? $('password') : $('email')).focus();
    return;
  }
  $('signin-btn').disabled = true;
  clearMessage();
  try {
    go(await signIn(email, password));
  } catch (e) {
    showMessage(refusal(e));
    $('password').value = '';
    $('password').focus();
    $('signin-btn').disabled = false;
  }
});

// Already signed in (a live refresh cookie)? Go straight home.
renew().then(go).catch(() => { $('email').focus(); });
