// stub-server.mjs — serves ../static with the real server's routes and fakes the REST
// answers and a few signaling replies, to check the pages' behaviour and layout without
// the Rust server. It has NO media (no SFU): the publisher offer is logged, never answered.
// The account routes (sign-in, people, invitations) come from stub-accounts.mjs.
// Usage: node stub-server.mjs [port]   (default 8099, binds 127.0.0.1)
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { handleAccounts, sessionRefusal } from './stub-accounts.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../static');
const port = Number(process.argv[2] || 8099);
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };
const sessions = [];
const joins = new Map();
const log = (...a) => console.log('[stub]', ...a);

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
const err = (res, status, code, message) => json(res, status, { error: { code, message } });

function serveFile(res, file) {
  const p = path.join(root, file);
  if (!p.startsWith(root) || !fs.existsSync(p) || fs.statSync(p).isDirectory()) return err(res, 404, 'not_found', 'no such file');
  res.writeHead(200, { 'content-type': types[path.extname(p)] || 'application/octet-stream' });
  fs.createReadStream(p).pipe(res);
}

async function body(req) {
  let s = '';
  for await (const c of req) s += c;
  try { return JSON.parse(s || '{}'); } catch { return {}; }
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  const auth = (req.headers.authorization || '').replace(/^Bearer /, '');
  let m;
  if (p === '/') return serveFile(res, 'index.html');
  if (p === '/therapist') return serveFile(res, 'therapist.html');
  if (/^\/join\/[^/]+$/.test(p)) return serveFile(res, 'join.html');
  if ((m = p.match(/^\/api\/join\/([^/]+)$/)) && req.method === 'GET') {
    const t = decodeURIComponent(m[1]);
    if (t === 'bad') return err(res, 404, 'session_not_found', 'no such session');
    return json(res, 200, { session_id: 's-' + t, session_name: 'Weekly check-in', therapist_name: 'Dr. Ada Lovelace',
      expires_at: new Date(Date.now() + 3600e3).toISOString(), kind: 'instant', max_participants: t.startsWith('group') ? 4 : 2 });
  }
  if ((m = p.match(/^\/api\/join\/([^/]+)\/guest$/)) && req.method === 'POST') {
    const b = await body(req);
    if (!b.name || b.name.length > 80) return err(res, 400, 'bad_request', 'name must be 1-80 characters');
    const t = decodeURIComponent(m[1]);
    return json(res, 201, { token: (t === 'full' ? 'full:' : 'guest:') + b.name, expires_at: new Date(Date.now() + 3600e3).toISOString(), session_id: 's-' + t });
  }
  if (await handleAccounts(req, res, url, body)) return;
  if (p === '/api/sessions') {
    if (!auth) return err(res, 401, 'unauthorized', 'missing token');
    const refusal = req.method === 'POST' && sessionRefusal(auth);
    if (refusal) return err(res, 403, refusal.code, refusal.message);
    if (auth === 'disabled') return err(res, 403, 'therapist_disabled', 'Video sessions are disabled for your account. Ask your organization administrator to enable them.');
    if (req.method === 'POST') {
      const b = await body(req);
      const id = crypto.randomUUID();
      const share = crypto.randomBytes(9).toString('base64url');
      const s = { id, session_name: b.session_name, join_url: '/join/' + share, share_token: share, is_active: true,
        expires_at: new Date(Date.now() + 7200e3).toISOString(), max_participants: b.max_participants || 2, kind: 'instant' };
      sessions.unshift(s);
      return json(res, 201, s);
    }
    return json(res, 200, { sessions });
  }
  if ((m = p.match(/^\/api\/sessions\/([^/]+)\/end$/)) && req.method === 'POST') {
    const s = sessions.find((x) => x.id === m[1]);
    if (!s) return err(res, 404, 'session_not_found', 'no such session');
    s.is_active = false;
    return json(res, 200, s);
  }
  if (p.startsWith('/api/')) return err(res, 404, 'not_found', 'no route');
  return serveFile(res, p.slice(1));
});

// ---- minimal WebSocket (text frames only) for /rtc ----
function frame(str) {
  const data = Buffer.from(str);
  let head;
  if (data.length < 126) head = Buffer.from([0x81, data.length]);
  else if (data.length < 65536) { head = Buffer.alloc(4); head[0] = 0x81; head[1] = 126; head.writeUInt16BE(data.length, 2); }
  else { head = Buffer.alloc(10); head[0] = 0x81; head[1] = 127; head.writeBigUInt64BE(BigInt(data.length), 2); }
  return Buffer.concat([head, data]);
}
function closeFrame(code, reason) {
  const r = Buffer.from(reason || '');
  const payload = Buffer.alloc(2 + r.length); payload.writeUInt16BE(code, 0); r.copy(payload, 2);
  return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
}

server.on('upgrade', (req, sock) => {
  if (!req.url.startsWith('/rtc')) return sock.destroy();
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const send = (o) => sock.write(frame(JSON.stringify(o)));
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2) {
      const op = buf[0] & 0x0f;
      let len = buf[1] & 0x7f, off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len)).map((b, i) => b ^ mask[i % 4]);
      buf = buf.subarray(off + 4 + len);
      if (op === 8) { sock.end(closeFrame(1000, '')); return; }
      if (op === 1) onMessage(JSON.parse(payload.toString()), send, sock);
    }
  });
  sock.on('error', () => {});
});

function onMessage(msg, send, sock) {
  if (msg.type === 'offer') {
    const mlines = msg.sdp.split('\r\n').filter((l) => l.startsWith('m=') || /^a=(sendonly|recvonly|sendrecv|inactive)$/.test(l));
    log('publisher offer:', mlines.join(' | '));
    return;
  }
  if (msg.type === 'chat') { // a therapist answers every chat (waiting room or call)
    log('chat', msg.to ? 'to ' + msg.to : 'to all');
    setTimeout(() => send({ type: 'chat', from: 'p-ada', from_name: 'Dr. Ada Lovelace', text: 'Thanks, <i>noted</i>.', private: !!msg.to,
      sent_at: new Date().toISOString() }), 200);
    return;
  }
  if (msg.type !== 'join') { log('got', msg.type, JSON.stringify(msg).slice(0, 120)); return; }
  log('join', JSON.stringify(msg));
  const session = { id: msg.session_id, name: 'Weekly check-in', kind: 'instant', max_participants: 2,
    expires_at: new Date(Date.now() + 8 * 60e3).toISOString(), waiting_room: true };
  if (String(msg.token).includes('Wait')) { // the waiting room: the therapist arrives after a while
    const w = { type: 'waiting', participant_id: 'p-me', person_id: 'p-me', session, therapist_name: 'Dr. Ada Lovelace', host_present: false };
    send(w);
    setTimeout(() => send({ ...w, host_present: true }), 1000);
    if (String(msg.token).includes('Declined')) setTimeout(() => { send({ type: 'error', code: 'declined', message: 'declined', fatal: true }); sock.end(closeFrame(4403, 'declined')); }, 2000);
    return;
  }
  if (!/^(guest|full):/.test(String(msg.token))) { // a user token: a host with a queue
    send({ type: 'joined', protocol: 1, participant_id: 'p-host', person_id: 'u-host', resumed: false, host: true, session,
      ice_servers: [], participants: [] });
    const since = (min) => new Date(Date.now() - min * 60e3).toISOString();
    send({ type: 'waiting_room', waiting: [
      { participant_id: 'g-1', person_id: 'g-1', display_name: 'Grace Guest', role: 'guest', is_guest: true, since: since(4) },
      { participant_id: 'g-2', person_id: 'g-2', display_name: 'Casey Client', role: 'client', is_guest: false, since: since(0.2) }] });
    setTimeout(() => send({ type: 'chat', from: 'g-1', from_name: 'Grace Guest', text: 'Hello, I am in the waiting room', private: false,
      sent_at: new Date().toISOString() }), 300);
    return;
  }
  if (String(msg.token).startsWith('full:')) {
    send({ type: 'error', code: 'room_full', message: 'room is full', fatal: true });
    sock.end(closeFrame(4409, 'room_full'));
    return;
  }
  const group = String(msg.session_id).includes('group');
  const others = [{ participant_id: 'p-ada', display_name: 'Dr. Ada Lovelace', role: 'therapist', is_guest: false,
    connection: 'connected', audio_muted: true, video_muted: false, tracks: [] }];
  if (group) others.push({ participant_id: 'p-b', display_name: 'Guest Two', role: 'guest', is_guest: true,
    connection: 'connected', audio_muted: false, video_muted: true, tracks: [] });
  send({ type: 'joined', protocol: 1, participant_id: 'p-me', resumed: false,
    session: { id: msg.session_id, name: 'Weekly check-in', kind: 'instant', max_participants: group ? 4 : 2, expires_at: null },
    ice_servers: [{ urls: ['stun:127.0.0.1:3478'] }], participants: others });
  if (group) {
    setTimeout(() => send({ type: 'participant_joined', participant: { participant_id: 'p-c', display_name: 'A guest with a very long name indeed', role: 'guest', is_guest: true, connection: 'connected', audio_muted: false, video_muted: false, tracks: [] } }), 300);
    setTimeout(() => send({ type: 'participant_reconnecting', participant_id: 'p-b' }), 600);
  }
  const n = (joins.get(msg.token) || 0) + 1;
  joins.set(msg.token, n);
  if (String(msg.token).includes('Drop') && n % 2 === 1) { // every other join of that token
    setTimeout(() => sock.destroy(), 800); // an unexpected drop: the client must come back
  }
  if (String(msg.token).includes('End')) setTimeout(() => { send({ type: 'session_ended', reason: 'ended_by_therapist' }); sock.end(closeFrame(1000, '')); }, 1500);
}

server.listen(port, '127.0.0.1', () => log(`listening on http://127.0.0.1:${port}`));
