// ice_tcp.mjs — a therapist and a guest whose network lets no UDP reach the media ports
// still see and hear each other: nftables inside the test's network namespace drops every
// UDP packet to the server's media ports, so both browsers connect over ICE-TCP (the
// passive TCP candidate each media worker offers on its UDP port number, RFC 6544).
// Checks that every connection's selected pair is TCP and that both pages decode video.
// Needs root in the namespace (scripts/e2e.sh runs it under `unshare -n`) and `nft`.
// Env: BASE_URL, DEMO_JSON (see lib.mjs). Prints one JSON line on stdout.
import { execFileSync } from 'node:child_process';
import { env, scenario, newPage, waitForJoined, waitForRemoteVideos, createSession, log } from './lib.mjs';

const { base, demo } = env();
const token = demo.therapists[0].token;
/** The media ports of the server scripts/e2e.sh starts: 7882, one more per worker. */
const MEDIA_PORTS = '7882-7899';
const TABLE = 'theraroom_e2e_no_udp';

function nft(...args) {
  execFileSync('nft', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function blockUdp() {
  unblockUdp();
  nft('add', 'table', 'inet', TABLE);
  nft('add', 'chain', 'inet', TABLE, 'input', '{ type filter hook input priority 0 ; }');
  nft('add', 'rule', 'inet', TABLE, 'input', 'udp', 'dport', MEDIA_PORTS, 'counter', 'drop');
}

function unblockUdp() {
  try { nft('delete', 'table', 'inet', TABLE); } catch { /* not there */ }
}

/** UDP packets the rule dropped (proof that the browsers did try UDP first). */
function droppedUdp() {
  const out = execFileSync('nft', ['list', 'table', 'inet', TABLE], { encoding: 'utf8' });
  const m = out.match(/counter packets (\d+)/);
  return m ? Number(m[1]) : 0;
}

async function transports(p) {
  return p.page.evaluate(() => window.theraroom.transports());
}

scenario('ice_tcp', async (browser) => {
  const s = await createSession(base, token, { session_name: 'e2e ice-tcp', waiting_room: false });
  blockUdp();
  try {
    const th = await newPage(browser, 'therapist');
    const gu = await newPage(browser, 'guest');
    await th.page.goto(`${base}${s.join_url}?autojoin=1#access_token=${encodeURIComponent(token)}`);
    await waitForJoined(th);
    await gu.page.goto(`${base}${s.join_url}?name=Behind%20a%20Firewall&autojoin=1`);
    await waitForJoined(gu);
    const started = Date.now();
    await Promise.all([waitForRemoteVideos(th, 1), waitForRemoteVideos(gu, 1)]);
    const mediaMs = Date.now() - started;
    const pairs = { therapist: await transports(th), guest: await transports(gu) };
    log('selected pairs', pairs);
    for (const [who, t] of Object.entries(pairs)) {
      for (const pc of ['publisher', 'subscriber']) {
        if (!t[pc] || t[pc].protocol !== 'tcp') {
          throw new Error(`${who}'s ${pc} connection is not on TCP: ${JSON.stringify(t[pc])}`);
        }
      }
    }
    const dropped = droppedUdp();
    if (dropped === 0) throw new Error('no UDP packet was dropped: the browsers never tried UDP, so the block proved nothing');
    log('both pages decode video over TCP; UDP packets dropped:', dropped);
    return { media_ms: mediaMs, udp_dropped: dropped, pairs };
  } finally {
    unblockUdp();
  }
});
