// ui-smoke.mjs — checks the pages' static behaviour against stub-server.mjs (no media,
// no Rust server): no JS errors, messages, guest flow, therapist page, phone layout.
// Usage: node stub-server.mjs 8099 & BASE_URL=http://127.0.0.1:8099 OUT=/tmp/shots node ui-smoke.mjs
import fs from 'node:fs';
import { launch, newPage, waitForJoined, waitForState, hookState, dumpLogs, sleep } from './lib.mjs';

const base = process.env.BASE_URL || 'http://127.0.0.1:8099';
const out = process.env.OUT || '/tmp/theraroom-shots';
fs.mkdirSync(out, { recursive: true });
const phone = { width: 390, height: 844 };
const failures = [];
const check = (cond, what) => { if (!cond) failures.push(what); console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`); };

async function noHScroll(p, label) {
  const [sw, iw] = await p.page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(sw <= iw, `${label}: no horizontal scroll (${sw} <= ${iw})`);
}
const pageErrors = (p) => p.logs.filter((l) => l.includes('PAGE ERROR'));

const browser = await launch();
try {
  // 1. guest autojoin, 1:1
  const g = await newPage(browser, 'guest', { viewport: phone });
  await g.page.goto(`${base}/join/abc?name=Guest%20One&autojoin=1`);
  const s = await waitForJoined(g);
  await sleep(500);
  check(s.remote.length === 1 && s.remote[0].display_name === 'Dr. Ada Lovelace', 'guest sees therapist in remoteParticipants');
  check(await g.page.locator('.tile').count() === 2, 'two tiles (self + therapist)');
  check(await g.page.locator('.tile[data-pid="p-ada"] .mic-off').isVisible(), 'therapist muted badge visible');
  const vw = await g.page.evaluate(() => document.querySelector('.tile.self video').videoWidth);
  check(vw === 640, `1:1 uses 640 wide video (got ${vw})`);
  const stored = await g.page.evaluate(() => sessionStorage.getItem('theraroom.guest.abc'));
  check(stored && JSON.parse(stored).token === 'guest:Guest One', 'guest token stored in sessionStorage');
  await g.page.screenshot({ path: `${out}/join-call-phone.png` });
  await noHScroll(g, 'call page');
  // mute toggles
  await g.page.click('#mic-btn');
  check((await g.page.textContent('#mic-btn')).trim() === 'Unmute', 'mic button toggles to Unmute');
  check(await g.page.evaluate(() => document.querySelector('.tile.self video').srcObject.getAudioTracks()[0].enabled === false), 'audio track disabled when muted');
  await g.page.click('#cam-btn');
  await g.page.screenshot({ path: `${out}/join-call-muted-phone.png` });
  // reload resumes with stored token (no prompt)
  await g.page.reload();
  await waitForJoined(g);
  check(!(await g.page.locator('#guest-form').isVisible()), 'reload: no name prompt');
  // leave
  await g.page.click('#leave-btn');
  await waitForState(g, 'ended');
  check((await g.page.textContent('#message')).includes('You left'), 'leave shows message');
  await g.page.screenshot({ path: `${out}/join-left-phone.png` });
  check(pageErrors(g).length === 0, 'guest page: no JS errors');

  // 2. lobby prompt
  const l = await newPage(browser, 'lobby', { viewport: phone });
  await l.page.goto(`${base}/join/abc`);
  await l.page.waitForSelector('#guest-form:not([hidden])');
  await sleep(800);
  await l.page.screenshot({ path: `${out}/join-lobby-phone.png` });
  await noHScroll(l, 'lobby');
  await l.page.click('#join-btn');
  check((await l.page.textContent('#name-error')).includes('enter your name'), 'empty name rejected');
  await l.page.fill('#guest-name', 'x'.repeat(81));
  await l.page.evaluate(() => { document.getElementById('guest-name').value = 'x'.repeat(81); });
  await l.page.click('#join-btn');
  check((await l.page.textContent('#name-error')).includes('80'), '81-char name rejected');
  await l.page.evaluate(() => { document.getElementById('guest-name').value = 'bad\u0007name'; });
  await l.page.click('#join-btn');
  check((await l.page.textContent('#name-error')).includes('printable'), 'control char rejected');
  await l.page.fill('#guest-name', 'Lobby Person');
  await l.page.press('#guest-name', 'Enter');
  await waitForJoined(l);
  await l.page.reload();
  await waitForJoined(l, { timeout: 5000 });
  check(true, 'reload of a page in the call rejoins without a click');
  check(pageErrors(l).length === 0, 'lobby page: no JS errors');

  // 2b. socket dropped by the server: reconnect and join again with the same token
  const r = await newPage(browser, 'drop', { viewport: phone });
  await r.page.goto(`${base}/join/abc?name=Drop%20Me&autojoin=1`);
  await waitForJoined(r);
  await waitForState(r, 'joining', { timeout: 5000 });
  const rs = await waitForJoined(r, { timeout: 10000 });
  check(rs.remote.length === 1, 'after a dropped socket the page is back in the call');
  const joins = r.logs.filter((x) => x.includes('rtc -> join')).length;
  check(joins === 2, `join sent twice (got ${joins})`);

  // 3. bad link
  const b = await newPage(browser, 'bad', { viewport: phone });
  await b.page.goto(`${base}/join/bad?name=X&autojoin=1`);
  const bs = await waitForState(b, 'error');
  check(bs.errorCode === 'session_not_found' && bs.message.includes('This link is not valid'), `bad link message (${bs.message})`);
  await b.page.screenshot({ path: `${out}/join-bad-phone.png` });

  // 4. room full over WS
  const f = await newPage(browser, 'full', { viewport: phone });
  await f.page.goto(`${base}/join/full?name=Third&autojoin=1`);
  const fs_ = await waitForState(f, 'error');
  check(fs_.errorCode === 'room_full' && fs_.message.includes('This session is full.'), `room_full message (${fs_.message})`);

  // 5. group
  const gr = await newPage(browser, 'group', { viewport: phone });
  await gr.page.goto(`${base}/join/group1?name=Guest%20Three&autojoin=1`);
  await waitForJoined(gr);
  await sleep(1200);
  check(await gr.page.locator('.tile').count() === 4, 'group: four tiles');
  check(await gr.page.locator('.tile[data-pid="p-b"] .reconnecting').isVisible(), 'group: reconnecting badge');
  const gw = await gr.page.evaluate(() => document.querySelector('.tile.self video').videoWidth);
  check(gw === 320, `group uses 320 wide video (got ${gw})`);
  await gr.page.screenshot({ path: `${out}/join-group-phone.png` });
  await gr.page.setViewportSize({ width: 1280, height: 800 });
  await sleep(300);
  await gr.page.screenshot({ path: `${out}/join-group-desktop.png` });
  await noHScroll(gr, 'group');
  check(pageErrors(gr).length === 0, 'group page: no JS errors');

  // 6. session ended
  const e = await newPage(browser, 'ended', { viewport: phone });
  await e.page.goto(`${base}/join/abc?name=End%20Me&autojoin=1`);
  const es = await waitForState(e, 'ended');
  check(es.message.includes('This session has ended.'), 'session_ended message');

  // 7. therapist page
  const t = await newPage(browser, 'therapist', { viewport: phone });
  await t.page.goto(`${base}/therapist#access_token=tok123`);
  await t.page.waitForSelector('#create:not([hidden])');
  check(!(await t.page.evaluate(() => location.hash)), 'therapist: fragment stripped');
  check(await t.page.evaluate(() => sessionStorage.getItem('theraroom.access_token')) === 'tok123', 'therapist: token stored');
  await t.page.fill('#session-name-input', 'Weekly check-in');
  await t.page.fill('#max-input', '4');
  await t.page.click('#create-btn');
  await t.page.waitForSelector('#created:not([hidden])');
  const link = await t.page.inputValue('#share-link');
  check(link.startsWith(`${base}/join/`), `share link absolute (${link})`);
  const href = await t.page.getAttribute('#join-now', 'href');
  check(/^\/join\/[^#]+#access_token=tok123$/.test(href), `join now href (${href})`);
  await t.page.click('#copy-btn');
  await sleep(300);
  check((await t.page.textContent('#copy-note')).length > 0, 'copy note shown');
  await t.page.waitForSelector('.session');
  await t.page.screenshot({ path: `${out}/therapist-phone.png`, fullPage: true });
  await noHScroll(t, 'therapist');
  t.page.on('dialog', (d) => d.accept());
  await t.page.click('.session .btn.danger');
  await t.page.waitForSelector('.session.ended');
  check(true, 'End marks session ended');
  check(pageErrors(t).length === 0, 'therapist page: no JS errors');

  const d = await newPage(browser, 'disabled', { viewport: phone });
  await d.page.goto(`${base}/therapist#access_token=disabled`);
  await d.page.waitForSelector('#create:not([hidden])');
  await d.page.fill('#session-name-input', 'x');
  await d.page.click('#create-btn');
  await d.page.waitForSelector('#message:not([hidden])');
  check((await d.page.textContent('#message')).includes('disabled'), 'therapist_disabled message shown');
  await d.page.screenshot({ path: `${out}/therapist-disabled-phone.png` });

  // 8. waiting room (guest side) with chat to the therapist
  const w = await newPage(browser, 'waiting', { viewport: phone });
  await w.page.goto(`${base}/join/abc?name=Wait%20Person&autojoin=1`);
  await waitForState(w, 'waiting');
  check((await w.page.textContent('#waiting-who')).includes('Dr. Ada Lovelace will let you in'), 'waiting: who lets you in');
  await w.page.waitForFunction(() => /is in the session/.test(document.getElementById('waiting-presence').textContent));
  check(true, 'waiting: host_present update shown');
  const sent = await w.page.evaluate(() => window.theraroom.sendChat('Hello <b>there</b>'));
  check(sent.ok, 'waiting: chat sent');
  await w.page.waitForFunction(() => window.theraroom.chatLog().length === 2);
  check(await w.page.locator('#chat .chat-text b').count() === 0, 'chat shows text, not HTML');
  const tooLong = await w.page.evaluate(() => window.theraroom.sendChat('x'.repeat(1001)));
  check(!tooLong.ok && (await w.page.textContent('#chat .chat-error')).includes('1,000'), 'long chat refused inline');
  await w.page.screenshot({ path: `${out}/waiting-phone.png` });
  await noHScroll(w, 'waiting');
  check(pageErrors(w).length === 0, 'waiting page: no JS errors');
  const wd = await newPage(browser, 'declined', { viewport: phone });
  await wd.page.goto(`${base}/join/abc?name=Wait%20Declined&autojoin=1`);
  const ds = await waitForState(wd, 'error');
  check(ds.errorCode === 'declined' && ds.message.includes('did not let you in'), `declined message (${ds.message})`);

  // 9. host: the queue, chat from the waiting room, expiry banner, settings dialog
  const h = await newPage(browser, 'host', { viewport: { width: 1280, height: 800 } });
  await h.page.goto(`${base}/join/abc?autojoin=1#access_token=tok123`);
  await waitForJoined(h);
  await h.page.waitForSelector('#queue:not([hidden]) .queue-item');
  check(await h.page.locator('.queue-item').count() === 2, 'host: two people queued');
  check(await h.page.locator('#queue button:has-text("Admit all")').isVisible(), 'host: Admit all visible');
  check((await h.page.evaluate(() => window.theraroom.waiting())).length === 2, 'hooks.waiting() lists the queue');
  check((await h.page.textContent('.queue-item .queue-since')).includes('min ago'), 'host: waiting since shown');
  await h.page.waitForFunction(() => window.theraroom.chatLog().length === 1);
  check(await h.page.locator('#expiry:not([hidden])').count() === 1, 'expiry banner in the last 10 minutes');
  check(await h.page.locator('#chat-to option').count() === 3, 'host: chat recipients include the waiting people');
  await h.page.screenshot({ path: `${out}/host-desktop.png` });
  await h.page.click('#settings-btn');
  await h.page.waitForSelector('#settings[open]');
  check(await h.page.locator('#waiting-toggle').isVisible(), 'host: waiting-room switch in settings');
  await h.page.screenshot({ path: `${out}/host-settings-desktop.png` });
  await h.page.keyboard.press('Escape');
  await h.page.setViewportSize(phone);
  await sleep(300);
  await h.page.screenshot({ path: `${out}/host-phone.png` });
  await noHScroll(h, 'host');
  check(pageErrors(h).length === 0, 'host page: no JS errors');

  // 10. not a secure context: say why the camera is unavailable and what to do
  const ins = await newPage(browser, 'insecure', { viewport: phone });
  await ins.page.addInitScript(() => Object.defineProperty(window, 'isSecureContext', { get: () => false }));
  await ins.page.goto(`${base}/join/abc`);
  await ins.page.waitForSelector('#insecure:not([hidden])');
  check((await ins.page.textContent('#insecure')).includes('https://'), 'insecure page: explains https');
  check(await ins.page.locator('#share-btn').isHidden(), 'insecure page: no share button');
  await ins.page.screenshot({ path: `${out}/insecure-phone.png` });
  check(pageErrors(ins).length === 0, 'insecure page: no JS errors');

  const i = await newPage(browser, 'index', { viewport: phone });
  await i.page.goto(`${base}/`);
  await i.page.screenshot({ path: `${out}/index-phone.png` });
  check(await i.page.locator('a[href="/signin.html"]').count() === 1, 'index links to /signin.html');
} catch (e) {
  failures.push(String(e.stack || e));
  console.error(e);
}
if (failures.length) dumpLogs();
await browser.close();
console.log(failures.length ? `\n${failures.length} failure(s)` : '\nall ok');
process.exit(failures.length ? 1 : 0);
