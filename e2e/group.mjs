// group.mjs — a four-person room (therapist + three guests, small video): every page
// decodes the three others' video and receives their audio; the server's active
// speakers light remote tiles and put the page in speaker view (one remote tile large).
// Env: BASE_URL, DEMO_JSON (see lib.mjs). Prints one JSON line on stdout.
import { env, scenario, newPage, waitForJoined, waitForRemoteVideos, createSession, rest, hookState, log, sleep, screenshot } from './lib.mjs';

const { base, demo } = env();
const token = demo.therapists[0].token;

scenario('group', async (browser) => {
  const s = await createSession(base, token, { session_name: 'e2e group', max_participants: 4, waiting_room: false });
  log('session', s.id, s.join_url, 'max', s.max_participants);
  try {
    const pages = [await newPage(browser, 'therapist')];
    await pages[0].page.goto(`${base}${s.join_url}?autojoin=1&small=1#access_token=${encodeURIComponent(token)}`);
    await waitForJoined(pages[0]);
    for (let i = 1; i <= 3; i++) {
      const p = await newPage(browser, `guest${i}`);
      await p.page.goto(`${base}${s.join_url}?name=${encodeURIComponent(`Guest ${i}`)}&autojoin=1&small=1`);
      pages.push(p);
    }
    await Promise.all(pages.slice(1).map((p) => waitForJoined(p)));
    log('all four joined');
    await Promise.all(pages.map((p) => waitForRemoteVideos(p, 3, { timeout: 45000 })));
    await Promise.all(pages.map((p) => waitForSpeakerView(p)));
    log('every page shows remote speakers and a featured remote tile');
    await screenshot(pages[0], 'group-speaker-view-desktop', { width: 1280, height: 800 });
    const out = {};
    for (const p of pages) {
      const st = await hookState(p);
      if (st.remote.length !== 3) throw new Error(`${p.name} lists ${st.remote.length} remote participants`);
      const t = st.timings;
      out[p.name] = t.firstRemoteFrame ? Math.round(t.firstRemoteFrame - t.joinSent) : null;
    }
    return { join_to_first_frame_ms: out };
  } finally {
    await rest(base, `/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', token }).catch(() => {});
  }
});

/** Wait until a remote tile is lit as speaking and one remote tile is featured. */
async function waitForSpeakerView(p, { timeout = 20000 } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await p.page.evaluate(() => {
      const grid = document.querySelector('.grid');
      const remote = [...document.querySelectorAll('.tile:not(.self):not(.screen)')];
      const featured = document.querySelectorAll('.tile.featured');
      return {
        layout: grid && grid.dataset.layout,
        speaking: remote.filter((t) => t.dataset.speaking === '1').length,
        featured: featured.length,
        featuredIsRemote: featured.length === 1 && !featured[0].classList.contains('self'),
      };
    });
    if (last.layout === 'speaker' && last.speaking > 0 && last.featuredIsRemote) return last;
    await sleep(250);
  }
  throw new Error(`${p.name}: no speaker view after ${timeout} ms: ${JSON.stringify(last)}`);
}
