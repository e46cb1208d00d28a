import { launch, newPage, sleep } from './lib.mjs';
const base = 'http://127.0.0.1:8099';
const out = '/tmp/shots';
const b = await launch();
const sizes = { phone: { width: 390, height: 844 }, desk: { width: 1280, height: 800 } };
async function as(email, path, name, prep) {
  for (const [k, v] of Object.entries(sizes)) {
    const p = await newPage(b, name, { viewport: v });
    const errs = [];
    p.page.on('pageerror', (e) => errs.push(e.message));
    p.page.on('console', (m) => { if (m.type() === 'error') errs.push(m.text()); });
    await p.page.goto(base + '/signin.html');
    if (email) {
      await p.page.fill('#email', email);
      await p.page.fill('#password', 'correct horse battery');
      await p.page.click('#signin-btn');
      await p.page.waitForURL((u) => !u.pathname.includes('signin'));
      if (path) await p.page.goto(base + path);
    }
    await sleep(700);
    if (prep) await prep(p.page);
    await p.page.screenshot({ path: `${out}/${name}-${k}.png`, fullPage: true });
    console.log(name, k, p.page.url(), errs.join(' | '));
    await p.context.close();
  }
}
await as(null, null, 'signin', async (pg) => { await pg.fill('#email', 'x@y.z'); await pg.fill('#password', 'wrong'); await pg.click('#signin-btn'); await sleep(400); });
await as('ada@stub.test', null, 'home');
await as('grace@stub.test', null, 'home-off');
await as('admin@stub.test', null, 'admin', async (pg) => { await pg.fill('#invite-name', 'Sam New'); await pg.fill('#invite-email', `sam${Date.now()}@x.org`); await pg.click('#invite-btn'); await sleep(400); await pg.click('#therapists li:first-child .select'); });
await as('casey@stub.test', null, 'client');
await b.close();
