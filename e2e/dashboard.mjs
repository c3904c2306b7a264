// The dashboard in a real browser: headless Chromium (Debian's, driven by playwright-core)
// against a running GridShare with seeded data (`gridshare demo`).
//
//   node e2e/dashboard.mjs BASE_URL OUT_DIR
//
// Each check saves a PNG of the page it looked at in OUT_DIR. Any console error or uncaught
// exception on a page fails the run. Exit status 0 only when every check passed.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, out] = process.argv.slice(2);
if (!base || !out) {
  console.error('usage: node e2e/dashboard.mjs BASE_URL OUT_DIR');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const PASSWORD = 'gridshare-demo';

const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const failures = [];
let checks = 0;

/** A fresh browser context (its own cookies) whose console errors fail the run. */
async function page(name, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const p = await context.newPage();
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    // a page served with an error status (401 after a wrong password, 403 for another home's
    // page) is reported by Chromium as a failed load of the document itself: that is the point
    // of those pages, not a fault
    const documentStatus = m.text().startsWith('Failed to load resource') && m.location().url === p.url();
    if (!documentStatus) failures.push(`${name}: console error: ${m.text()} (${m.location().url})`);
  });
  p.on('pageerror', (e) => failures.push(`${name}: uncaught: ${e.message}`));
  return p;
}

async function check(name, fn) {
  checks += 1;
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures.push(`${name}: ${e.message}`);
    console.log(`FAIL ${name}: ${e.message}`);
  }
}

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

/** Logs in through the form, as a person would. */
async function login(p, user) {
  await p.goto(`${base}/login`);
  await p.fill('input[name=username]', user);
  await p.fill('input[name=password]', PASSWORD);
  await Promise.all([p.waitForNavigation(), p.click('button[type=submit]')]);
}

/** Waits until the page's script has hydrated it (the wasm module has run). */
async function hydrated(p) {
  await p.waitForSelector('#app[data-hydrated=true]', { state: 'attached', timeout: 20000 });
}

await check('a wrong password is refused with a message', async () => {
  const p = await page('login');
  await p.goto(`${base}/login`);
  await p.fill('input[name=username]', 'home1');
  await p.fill('input[name=password]', 'not the password');
  await Promise.all([p.waitForNavigation(), p.click('button[type=submit]')]);
  const alert = await p.textContent('[role=alert]');
  expect(alert && alert.includes('wrong username or password'), `alert: ${alert}`);
  await p.screenshot({ path: join(out, 'login-refused.png'), fullPage: true });
  await p.context().close();
});

await check('a homeowner logs in and sees their balance and today\'s trades', async () => {
  const p = await page('home');
  await login(p, 'home1');
  expect(/\/home\/1$/.test(p.url()), `landed on ${p.url()}`);
  await hydrated(p);
  await p.screenshot({ path: join(out, 'homeowner.png'), fullPage: true });
  const balance = await p.textContent('#balance .big');
  expect(balance && balance.includes('€'), `balance: ${balance}`);
  const onChain = await p.textContent('#balance');
  expect(onChain.includes('On chain'), 'the on-chain balance is shown');
  const today = await p.textContent('#today');
  expect(/Bought from neighbours: [0-9.,\u202f]+ k?Wh/.test(today), `today: ${today}`);
  expect(/From the utility: [0-9.,\u202f]+ k?Wh · to the utility: [0-9.,\u202f]+ k?Wh/.test(today), `today: ${today}`);
  const rows = await p.locator('tr.trade').count();
  expect(rows > 0, 'trades are listed');
  expect(await p.locator('#power svg path.series').count() === 1, 'the power chart is drawn');

  // live: the power flows follow the gateway's telemetry over the WebSocket, without a reload
  const before = await p.getAttribute('#power-now .flows', 'data-at');
  await p.waitForFunction(
    (b) => document.querySelector('#power-now .flows')?.dataset.at !== b,
    before,
    { timeout: 20000 },
  );
  const solar = await p.textContent('#power-now #pv');
  expect(/kW/.test(solar), `solar: ${solar}`);
  // hydrated: the filter works without a round trip to the server
  await p.click('button[data-filter=sold]');
  const sides = await p.locator('tr.trade').evaluateAll((rs) => rs.map((r) => r.dataset.side));
  expect(sides.every((s) => s === 'sold'), `only sold trades after filtering: ${sides}`);
  await p.click('button[data-filter=all]');
  expect(await p.locator('tr.trade').count() === rows, 'all trades again');
  await p.context().close();
});

await check('a homeowner sets trading preferences and their gateway takes them', async () => {
  const p = await page('preferences');
  await login(p, 'home1');
  await hydrated(p);
  const form = '#preferences form';
  // limits that would make the home buy its own energy back are caught as they are typed
  await p.fill(`${form} input[name=min_sell_price]`, '0.300');
  await p.fill(`${form} input[name=max_buy_price]`, '0.200');
  await p.waitForSelector('#preferences p.error:not(.hidden)');
  const problem = await p.textContent('#preferences p.error');
  expect(problem.includes('above the maximum buy price'), `problem: ${problem}`);
  expect(await p.isDisabled(`${form} button[type=submit]`), 'upside-down limits cannot be sent');
  await p.fill(`${form} input[name=min_sell_price]`, '0.095');
  await p.fill(`${form} input[name=max_buy_price]`, '0.210');
  await p.fill(`${form} input[name=battery_reserve_percent]`, '35');
  expect(!(await p.isDisabled(`${form} button[type=submit]`)), 'good limits can be sent');
  await Promise.all([p.waitForNavigation(), p.click(`${form} button[type=submit]`)]);
  const flash = await p.textContent('[role=status]');
  expect(flash && flash.includes('Saved as version'), `flash: ${flash}`);
  expect(await p.inputValue(`${form} input[name=min_sell_price]`) === '0.095', 'the form shows what was saved');
  // the gateway answers over MQTT; the page follows without a reload
  await hydrated(p);
  await p.waitForSelector('#preferences li.answer[data-state=applied]', { timeout: 30000 });
  const answer = await p.textContent('#preferences li.answer');
  expect(answer.includes('in force since'), `answer: ${answer}`);
  await p.locator('#preferences').screenshot({ path: join(out, 'preferences.png') });
  await p.context().close();
});

await check('the homeowner page reads on a phone (375 px)', async () => {
  const p = await page('phone', { width: 375, height: 812 });
  await login(p, 'home1');
  await hydrated(p);
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, `no sideways scrolling of the page (${overflow}px too wide)`);
  await p.screenshot({ path: join(out, 'homeowner-phone.png'), fullPage: true });
  await p.context().close();
});

await check('a homeowner cannot open another homeowner\'s page', async () => {
  const p = await page('forbidden');
  await login(p, 'home1');
  const resp = await p.goto(`${base}/home/2`);
  expect(resp.status() === 403, `status ${resp.status()}`);
  const alert = await p.textContent('[role=alert]');
  expect(alert && alert.includes('another household'), `message: ${alert}`);
  await hydrated(p);
  await p.screenshot({ path: join(out, 'forbidden.png'), fullPage: true });
  await p.context().close();
});

await check('a trader places an order, sees it in the book, then cancels it', async () => {
  const p = await page('trader');
  await login(p, 'trader');
  expect(/\/trader/.test(p.url()), `landed on ${p.url()}`);
  // the furthest book open: the demo's clock runs 300 times faster than ours, so the soonest
  // gate closes within a second or two of market time passing
  const furthest = await p.locator('select[name=interval] option').last().getAttribute('value');
  await p.goto(`${base}/trader?interval=${encodeURIComponent(furthest)}`);
  await hydrated(p);
  // checked as it is typed, once hydrated
  await p.fill('#place input[name=price]', '0.1234');
  await p.waitForSelector('#place p.error:not(.hidden)');
  expect(await p.isDisabled('#place button[type=submit]'), 'an off-tick price cannot be sent');
  await p.fill('#place input[name=price]', '0.900');
  await p.fill('#place input[name=quantity_wh]', '500');
  await p.selectOption('#place select[name=side]', 'sell');
  expect(!(await p.isDisabled('#place button[type=submit]')), 'a good order can be sent');
  await Promise.all([p.waitForNavigation(), p.click('#place button[type=submit]')]);
  const placed = await p.textContent('[role=status], [role=alert]:not(.hidden)');
  expect(placed && /Order \d+ placed: open/.test(placed), `flash: ${placed}`);
  const asks = await p.locator('#book tr.level.ask').allTextContents();
  expect(asks.some((a) => a.includes('€0.900/kWh') && a.includes('500 Wh')), `asks: ${asks}`);
  await hydrated(p);
  await p.screenshot({ path: join(out, 'trader.png'), fullPage: true });
  const id = placed.match(/Order (\d+)/)[1];
  await Promise.all([p.waitForNavigation(), p.click(`tr.order[data-id="${id}"] button`)]);
  const cancelled = await p.textContent('[role=status], [role=alert]:not(.hidden)');
  expect(cancelled && cancelled.includes(`Order ${id} cancelled`), `flash: ${cancelled}`);
  const after = await p.locator('#book tr.level.ask').allTextContents();
  expect(!after.some((a) => a.includes('€0.900/kWh')), `asks after cancelling: ${after}`);
  await p.context().close();
});

await check('a trader makes an API key and sees its secret once', async () => {
  const p = await page('keys');
  await login(p, 'trader');
  await p.fill('#keys input[name=label]', 'e2e bot');
  await p.check('#keys input[name=trade]');
  await Promise.all([p.waitForNavigation(), p.click('#keys form.inline button[type=submit]')]);
  const secret = await p.textContent('#new-key .secret');
  expect(secret && secret.startsWith('gsk_'), `secret: ${secret}`);
  await hydrated(p);
  await p.screenshot({ path: join(out, 'trader-key.png'), fullPage: true });
  // it works against the API, and is not shown again
  const me = await p.request.get(`${base}/api/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  expect(me.ok(), `the new key is accepted: ${me.status()}`);
  await p.goto(`${base}/trader`);
  expect(await p.locator('#new-key').count() === 0, 'the secret is shown once');
  await p.context().close();
});

await check('an operator calls a demand-response event and sees the gateways acknowledge it', async () => {
  const p = await page('operator');
  await login(p, 'operator');
  expect(/\/operator/.test(p.url()), `landed on ${p.url()}`);
  await hydrated(p);
  const nodes = await p.locator('#feeder tr.node').count();
  expect(nodes >= 4, `the feeder tree is shown (${nodes} nodes)`);
  await p.screenshot({ path: join(out, 'operator.png'), fullPage: true });
  // the preview of affected homes follows the choice of targets, once hydrated
  await p.check('#new-event input[name=node][value="100"]');
  await p.waitForFunction(() => /homes affected/.test(document.querySelector('#preview').textContent));
  const preview = await p.textContent('#preview');
  await p.fill('#new-event input[name=kw]', '1.5');
  await Promise.all([p.waitForNavigation(), p.click('#new-event button[type=submit]')]);
  expect(/\/operator\/events\/\d+$/.test(p.url()), `event page: ${p.url()} (${await p.textContent('body')})`);
  const targeted = await p.locator('tr.target').count();
  expect(targeted > 0 && preview.startsWith(`${targeted} homes`), `targets ${targeted}, preview "${preview}"`);
  // the response updates in place while the event runs: no reload
  await hydrated(p);
  await p.evaluate(() => { window.notReloaded = true; });
  try {
    await p.waitForFunction(
      (n) => document.querySelectorAll('tr.target[data-ack=yes]').length === n,
      targeted,
      { timeout: 45000 },
    );
  } catch (e) {
    const acked = await p.locator('tr.target[data-ack=yes]').count();
    throw new Error(`${acked} of ${targeted} gateways acknowledged within 45 s`);
  }
  expect(await p.evaluate(() => window.notReloaded === true), 'the page updated without reloading');
  const live = await p.evaluate(async (u) => {
    const r = await fetch(`${u}/live`);
    return { status: r.status, body: await r.json() };
  }, p.url());
  expect(live.status === 200 && live.body.gateways.length === targeted, `the page's live data: ${JSON.stringify(live).slice(0, 200)}`);
  const line = await p.textContent('#acknowledged');
  expect(line.includes(`${targeted} of ${targeted}`), `summary: ${line}`);
  await p.screenshot({ path: join(out, 'operator-event.png'), fullPage: true });
  await p.context().close();
});

await check('an installer sees their gateways online and commissions a new one', async () => {
  const p = await page('installer');
  await login(p, 'installer');
  expect(/\/installer/.test(p.url()), `landed on ${p.url()}`);
  await hydrated(p);
  const online = await p.locator('tr.gateway[data-online=yes]').count();
  expect(online >= 1, `gateways online: ${online}`);
  const devices = await p.textContent('tr.gateway[data-id="1"]');
  expect(devices.includes('grid meter'), `gateway 1's devices: ${devices}`);
  await p.screenshot({ path: join(out, 'installer.png'), fullPage: true });
  // a key that cannot be right is caught as it is typed
  await p.fill('#commission input[name=public_key]', 'xyz');
  await p.waitForSelector('#commission p.error:not(.hidden)');
  expect(await p.isDisabled('#commission button[type=submit]'), 'a bad key cannot be sent');
  await p.fill('#commission input[name=id]', '9999');
  await p.fill('#commission input[name=owner]', '1');
  await p.fill('#commission input[name=public_key]', '0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798');
  await Promise.all([p.waitForNavigation(), p.click('#commission button[type=submit]')]);
  const flash = await p.textContent('[role=status]');
  expect(flash && flash.includes('Gateway 9999 commissioned'), `flash: ${flash}`);
  expect(await p.locator('tr.gateway[data-id="9999"]').count() === 1, 'the new gateway is listed');
  // the same again is refused with the reason
  await p.fill('#commission input[name=id]', '9999');
  await p.fill('#commission input[name=owner]', '1');
  await p.fill('#commission input[name=public_key]', '0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798');
  await Promise.all([p.waitForNavigation(), p.click('#commission button[type=submit]')]);
  const refused = await p.textContent('[role=alert]:not(.hidden)');
  expect(refused && refused.includes('registered already'), `refusal: ${refused}`);
  await p.context().close();
});

await check('an installer runs a remote check and sees every point the gateway read', async () => {
  const p = await page('check');
  await login(p, 'installer');
  await hydrated(p);
  await Promise.all([p.waitForNavigation(), p.click('tr.gateway[data-id="1"] form button')]);
  expect(/\/installer\/gateways\/1\/checks\/\d+$/.test(p.url()), `landed on ${p.url()}`);
  await hydrated(p);
  // waiting first (a spinner), then the answer arrives without a reload
  await p.waitForSelector('#check[data-state=answered]', { timeout: 30000 });
  const summary = await p.textContent('#check');
  expect(summary.includes('answered every point'), `summary: ${summary}`);
  const devices = await p.locator('section.device').count();
  expect(devices >= 1, `devices: ${devices}`);
  const failed = await p.locator('tr.point[data-ok=no]').count();
  expect(failed === 0, `points with errors: ${failed}`);
  const meter = await p.textContent('section.device');
  expect(/\d/.test(meter) && meter.includes('unit'), `a device's card: ${meter.slice(0, 200)}`);
  await p.screenshot({ path: join(out, 'installer-check.png'), fullPage: true });
  // the gateways page shows the last check
  await p.goto(`${base}/installer`);
  const row = await p.textContent('tr.gateway[data-id="1"]');
  expect(row.includes('last: all read'), `gateway 1's row: ${row}`);
  await p.context().close();
});

await check('without a session the dashboard asks to log in', async () => {
  const p = await page('anonymous');
  await p.goto(`${base}/home/1`);
  expect(/\/login$/.test(p.url()), `landed on ${p.url()}`);
  await p.screenshot({ path: join(out, 'login.png'), fullPage: true });
  await p.context().close();
});

await browser.close();
if (failures.length) {
  console.error(`\n${failures.length} problem(s) in ${checks} checks:\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
console.log(`\nall ${checks} checks passed; screenshots in ${out}`);
