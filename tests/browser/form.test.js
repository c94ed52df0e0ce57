'use strict';
/* form.test.js - the collector's pages in a real browser, as people meet them.
 *
 * Debian's Chromium, driven by playwright-core, at phone sizes with WeChat's
 * user agent and JavaScript switched off (the pages must work without it),
 * in Chinese and in English. Two flows:
 *   poster  /u/<token>: look (no sideways scrolling, big tap targets, page
 *           weight), leave a question out (the browser's own required-field
 *           check must stop the submission), tick "complaint" without a
 *           comment (the server's 422 page must keep the answers), submit,
 *           thank-you page, reload (the cookie: "already rated").
 *   code    /c: type a code in lower case with spaces, the list of units,
 *           every unit's form in turn (progress line), the done page.
 * Plus a 422 for a comment over the limit, posted with page.request (without
 * JavaScript a person cannot get past the textarea's maxlength).
 *
 * Run by tests/integration/90-browser.t, which sets up the collector and
 * passes it in the environment:
 *   PINGYI_URL       http://127.0.0.1:PORT
 *   PINGYI_POSTER    token of a unit in an open poster round
 *   PINGYI_CODES     comma-separated ballot codes of a code round (one per
 *                    code-flow scenario, 4)
 *   PINGYI_CODE_UNITS  how many units each code covers
 *   PINGYI_RESULT    file to write what was submitted to (JSON), which the
 *                    wrapper compares with the database
 * Screenshots (full page) go to tests/artifacts/browser/. Prints TAP. */
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const BASE = process.env.PINGYI_URL;
const POSTER = process.env.PINGYI_POSTER;
const CODES = (process.env.PINGYI_CODES || '').split(',').filter(Boolean);
const CODE_UNITS = Number(process.env.PINGYI_CODE_UNITS || 0);
const RESULT = process.env.PINGYI_RESULT;
const SHOTS = process.env.PINGYI_SCREENSHOTS || path.join(__dirname, '..', 'artifacts', 'browser');
const CHROMIUM = process.env.PINGYI_CHROMIUM || '/usr/bin/chromium';

const WECHAT_UA = 'Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) AppleWebKit/537.36 ' +
  '(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 ' +
  'MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64';

const TEXT = {
  zh: {
    htmlLang: 'zh-CN', submit: '提交评价', thanks: '感谢您的评价！', already: '您已评价过该单位',
    complaintEmpty: '标记为投诉时，请在意见和建议中写明投诉的内容。', tooLong: '意见和建议最多 500 字',
    entry: '输入测评码', list: '请评价以下单位', start: '开始评价', listProgress: '已完成 0 个，共 %N 个',
    progress: '第 %I 个，共 %N 个单位', done: '您已完成这个测评码的全部评价',
    comment: '窗口服务很好 & <b>谢谢</b>，希望“周末”也开放。',
  },
  en: {
    htmlLang: 'en', submit: 'Submit', thanks: 'Thank you!', already: 'You have rated this unit',
    complaintEmpty: 'To make a complaint, please write what it is about in the comment box.',
    tooLong: 'Comments can be at most 500 characters long',
    entry: 'Enter your ballot code', list: 'Please rate these units', start: 'Start',
    listProgress: '0 of %N done', progress: 'Unit %I of %N', done: 'You have rated every unit this code covers',
    comment: 'Queue was long <script>x</script> & slow; "more staff" please.',
  },
};

/* How each scenario reaches English: zh is the default; 'link' taps the
 * page's language link; 'header' sends Accept-Language: en. */
const SCENARIOS = [
  { width: 360, height: 740, lang: 'zh', how: 'default' },
  { width: 360, height: 740, lang: 'en', how: 'link' },
  { width: 320, height: 640, lang: 'zh', how: 'default' },
  { width: 320, height: 640, lang: 'en', how: 'header' },
];
const LEVELS = ['s', 'b', 'd', 'u'];

/* ---- TAP ---- */
let count = 0;
let failed = 0;
function ok(cond, name, diag) {
  count++;
  console.log(`${cond ? 'ok' : 'not ok'} ${count} - ${name}`);
  if (!cond) {
    failed++;
    if (diag !== undefined) for (const l of String(diag).split('\n')) console.log(`# ${l}`);
  }
  return cond;
}
const eq = (got, want, name) => ok(got === want, name, `got:  ${JSON.stringify(got)}\nwant: ${JSON.stringify(want)}`);
const has = (text, want, name) => ok(text.includes(want), name, `wanted ${JSON.stringify(want)} in:\n${text.slice(0, 600)}`);
const note = (s) => console.log(`# ${s}`);

const submitted = [];   // what went in: { flow, token, answers, comment, complaint }

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/* A fresh context per flow: no cookies, phone-sized, WeChat, no JavaScript. */
async function newPhone(browser, sc) {
  const acceptLanguage = sc.how === 'header' ? 'en-US,en;q=0.9' : 'zh-CN,zh;q=0.9,en;q=0.5';
  const context = await browser.newContext({
    viewport: { width: sc.width, height: sc.height },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    userAgent: WECHAT_UA,
    javaScriptEnabled: false,
    extraHTTPHeaders: { 'Accept-Language': acceptLanguage },
  });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  const bytes = { html: 0, css: 0 };
  page.on('response', async (r) => {
    const type = r.headers()['content-type'] || '';
    try {
      const n = (await r.body()).length;
      if (type.startsWith('text/html')) bytes.html += n;
      else if (type.startsWith('text/css')) bytes.css += n;
    } catch (_) { /* redirects have no body */ }
  });
  return { context, page, bytes };
}

/* The checks every form page must pass on a phone. */
async function checkLayout(page, tag) {
  const m = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  ok(m.scrollWidth <= m.innerWidth, `${tag}: no horizontal scrolling`, `scrollWidth ${m.scrollWidth} > ${m.innerWidth}`);
  const radios = await page.locator('input[type=radio]').evaluateAll((els) => els.map((el) => {
    const label = el.id ? document.querySelector(`label[for="${el.id}"]`) : null;
    const r = label ? label.getBoundingClientRect() : null;
    return {
      id: el.id, name: el.name, required: el.required,
      label: label ? { w: r.width, h: r.height, x: r.left, y: r.top + window.scrollY,
        clipped: label.scrollWidth > label.clientWidth + 1, text: label.textContent } : null,
    };
  }));
  ok(radios.length >= 24, `${tag}: the form shows its answer buttons`, `${radios.length} radios`);
  const noLabel = radios.filter((r) => !r.label).map((r) => r.id);
  ok(noLabel.length === 0, `${tag}: every radio has a label`, noLabel.join(' '));
  const small = radios.filter((r) => r.label && (r.label.h < 44 || r.label.w < 44))
    .map((r) => `${r.id}: ${r.label.w.toFixed(1)}x${r.label.h.toFixed(1)}`);
  ok(small.length === 0, `${tag}: every answer's tap target is at least 44 px tall (and wide)`, small.join('\n'));
  const clipped = radios.filter((r) => r.label && r.label.clipped).map((r) => `${r.id} "${r.label.text}"`);
  ok(clipped.length === 0, `${tag}: no answer label's text is cut off`, clipped.join('\n'));
  const boxes = radios.filter((r) => r.label).map((r) => ({ id: r.id, ...r.label }));
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.x < b.x + b.w - 0.5 && b.x < a.x + a.w - 0.5 && a.y < b.y + b.h - 0.5 && b.y < a.y + a.h - 0.5)
        overlaps.push(`${a.id} / ${b.id}`);
    }
  }
  ok(overlaps.length === 0, `${tag}: no two answer buttons overlap`, overlaps.join('\n'));
  const notRequired = radios.filter((r) => !r.required).map((r) => r.id);
  ok(notRequired.length === 0, `${tag}: every radio is required (the browser checks before sending)`, notRequired.join(' '));
  await checkTappable(page, tag);
  const button = await page.locator('button[type=submit]').boundingBox();
  ok(button && button.height >= 44, `${tag}: the submit button is at least 44 px tall`, JSON.stringify(button));
  return [...new Set(radios.map((r) => r.name))];
}

async function htmlLang(page) {
  return page.locator('html').getAttribute('lang');
}

/* Links, buttons, answers and boxes that something else covers at their
 * centre: a tap there would land on the other element (hit testing follows
 * paint order, so a float under a stacking context is covered, say). */
async function coveredTargets(page) {
  return page.evaluate(() => {
    const out = [];
    const describe = (el) => `<${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}` +
      `${el.className ? '.' + String(el.className).trim().replace(/\s+/g, '.') : ''}> "${(el.textContent || el.value || '').trim().slice(0, 30)}"`;
    for (const el of document.querySelectorAll('a[href], label, button, input:not([type=hidden]), textarea')) {
      el.scrollIntoView({ block: 'center', inline: 'center' });
      // A link that wraps has one box per line: each must take a tap.
      for (const r of el.getClientRects()) {
        if (r.width < 1 || r.height < 1) continue;
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        const control = el.tagName === 'LABEL' ? el.control : null;
        if (hit && (el === hit || el.contains(hit) || hit === control || (hit.tagName === 'LABEL' && hit.control === el)))
          continue;
        out.push(`${describe(el)} is covered by ${hit ? describe(hit) : 'nothing (off screen)'}`);
        break;
      }
    }
    window.scrollTo(0, 0);
    return out;
  });
}

async function checkTappable(page, tag) {
  const covered = await coveredTargets(page);
  return ok(covered.length === 0, `${tag}: no link, button or answer is covered by another element`, covered.join('\n'));
}

/* Reach the page at url in the scenario's language. */
async function open(page, sc, url) {
  const resp = await page.goto(BASE + url);
  if (sc.how === 'link') {
    eq(await htmlLang(page), 'zh-CN', `${url} opens in Chinese first`);
    const link = page.locator('nav.lang a');
    has(await link.innerText(), 'English', `${url}: the language link offers English`);
    const box = await link.boundingBox();
    ok(box && box.height >= 32 && box.width >= 44, `${url}: the language link is big enough to tap`, JSON.stringify(box));
    const covered = (await coveredTargets(page)).filter((c) => c.startsWith('<a') && c.includes('English'));
    if (ok(covered.length === 0, `${url}: the language link can be tapped (nothing covers it)`, covered.join('\n'))) {
      await Promise.all([page.waitForNavigation(), link.tap()]);
    } else {
      // Go on in English so the rest is still checked.
      await page.goto(BASE + await link.getAttribute('href'));
    }
    return null;
  }
  return resp;
}

function answersFor(questions, seed) {
  const out = {};
  questions.forEach((q, i) => { out[q] = LEVELS[(seed + i) % LEVELS.length]; });
  return out;
}

async function tapAnswers(page, answers) {
  for (const [q, level] of Object.entries(answers))
    await page.locator(`label[for="${q}-${level}"]`).tap();
}

async function posterFlow(browser, sc, n) {
  const t = TEXT[sc.lang];
  const tag = `poster ${sc.lang} ${sc.width}`;
  const name = `${sc.lang}-${sc.width}`;
  const { context, page, bytes } = await newPhone(browser, sc);
  try {
    const resp = await open(page, sc, `/u/${POSTER}`);
    if (resp) eq(resp.status(), 200, `${tag}: the form answers 200`);
    eq(await htmlLang(page), t.htmlLang, `${tag}: the form is in ${sc.lang}`);
    has(await page.locator('button[type=submit]').innerText(), t.submit, `${tag}: submit button in ${sc.lang}`);
    const questions = await checkLayout(page, tag);
    eq(questions.length, 6, `${tag}: six questions`);
    const weight = bytes.html + bytes.css;
    if (sc.how !== 'link')
      ok(weight > 0 && weight < 15 * 1024, `${tag}: the page weighs < 15 KB (HTML + CSS)`, `${bytes.html} + ${bytes.css} bytes`);
    note(`${tag}: page weight ${bytes.html} B HTML + ${bytes.css} B CSS`);
    await shot(page, `form-${name}`);

    // One question left out: the browser's required-field check keeps the page.
    const answers = answersFor(questions, n);
    const partial = { ...answers };
    delete partial[questions[2]];
    await tapAnswers(page, partial);
    const before = page.url();
    await page.locator('button[type=submit]').tap();
    await page.waitForTimeout(400);
    eq(page.url(), before, `${tag}: a question left out: the browser does not submit`);
    eq(await page.locator(`input[name="${questions[2]}"]:invalid`).count(), 4,
      `${tag}: the unanswered question is marked invalid`);
    eq(await page.locator(`input[name="${questions[0]}"]:checked`).getAttribute('value'), answers[questions[0]],
      `${tag}: the tapped answers are still selected`);

    // All answered, "complaint" ticked without a comment: the server's 422.
    await page.locator(`label[for="${questions[2]}-${answers[questions[2]]}"]`).tap();
    await page.locator('label[for="complaint"]').tap();
    const [r422] = await Promise.all([page.waitForNavigation(), page.locator('button[type=submit]').tap()]);
    eq(r422 && r422.status(), 422, `${tag}: complaint without a comment: 422`);
    has(await page.locator('.error-summary').innerText(), t.complaintEmpty, `${tag}: the 422 page says why, in ${sc.lang}`);
    const kept = {};
    for (const q of questions)
      kept[q] = await page.locator(`input[name="${q}"]:checked`).getAttribute('value').catch(() => null);
    eq(JSON.stringify(kept), JSON.stringify(answers), `${tag}: the 422 page keeps every answer`);
    ok(await page.locator('#complaint').isChecked(), `${tag}: the 422 page keeps the complaint box ticked`);
    await checkLayout(page, `${tag} (422)`);
    if (sc.width === 320) await shot(page, `form-422-${name}`);

    // Write the comment and submit: thank-you page.
    await page.locator('#comment').tap();
    await page.locator('#comment').pressSequentially(t.comment);
    const [rDone] = await Promise.all([page.waitForNavigation(), page.locator('button[type=submit]').tap()]);
    eq(rDone && rDone.status(), 200, `${tag}: submitted: the thank-you page answers 200`);
    ok(new RegExp(`/u/${POSTER}/done\\?lang=${sc.lang}$`).test(page.url()), `${tag}: redirected to the thank-you page`, page.url());
    has(await page.locator('h1').innerText(), t.thanks, `${tag}: thank-you heading in ${sc.lang}`);
    submitted.push({ flow: 'poster', token: POSTER, answers, comment: t.comment, complaint: true });
    const m = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    ok(m <= 0, `${tag}: thank-you page: no horizontal scrolling`, `${m} px too wide`);
    await checkTappable(page, `${tag} thank-you page`);
    await shot(page, `thanks-${name}`);

    // The form again: the cookie says this phone has rated the unit.
    const again = await page.goto(`${BASE}/u/${POSTER}?lang=${sc.lang}`);
    eq(again.status(), 200, `${tag}: the form again answers 200`);
    has(await page.locator('h1').innerText(), t.already, `${tag}: the form again: "already rated"`);
    eq(await page.locator('form').count(), 0, `${tag}: the "already rated" page has no form`);
    if (n === 0) await shot(page, `already-${name}`);
  } finally {
    await context.close();
  }
}

async function codeFlow(browser, sc, code) {
  const t = TEXT[sc.lang];
  const tag = `code ${sc.lang} ${sc.width}`;
  const name = `${sc.lang}-${sc.width}`;
  const { context, page } = await newPhone(browser, sc);
  try {
    await open(page, sc, '/c');
    eq(await htmlLang(page), t.htmlLang, `${tag}: the entry page is in ${sc.lang}`);
    has(await page.locator('h1').innerText(), t.entry, `${tag}: the entry page's heading`);
    const box = await page.locator('#code').boundingBox();
    ok(box && box.height >= 44 && box.width >= 200, `${tag}: the code box is big enough to tap`, JSON.stringify(box));
    const m = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    ok(m <= 0, `${tag}: entry page: no horizontal scrolling`, `${m} px too wide`);
    await checkTappable(page, `${tag} entry page`);
    // As a person types it from the slip: lower case, spaces instead of hyphens.
    const typed = code.toLowerCase().replace(/-/g, ' ');
    await page.locator('#code').tap();
    await page.locator('#code').pressSequentially(typed);
    await shot(page, `code-entry-${name}`);
    const [list] = await Promise.all([page.waitForNavigation(), page.locator('button[type=submit]').tap()]);
    eq(list && list.status(), 200, `${tag}: "${typed}" is taken: the list answers 200`);
    ok(/\/c\/[0-9A-Z]{15}\?lang=(zh|en)$/.test(page.url()), `${tag}: redirected to /c/<CODE>`, page.url());
    has(await page.locator('h1').innerText(), t.list, `${tag}: the list's heading`);
    eq(await page.locator('ol.units li a').count(), CODE_UNITS, `${tag}: the list links every unit to rate`);
    has(await page.locator('.progress').innerText(), t.listProgress.replace('%N', CODE_UNITS), `${tag}: the list's progress line`);
    const lm = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    ok(lm <= 0, `${tag}: list page: no horizontal scrolling`, `${lm} px too wide`);
    await checkTappable(page, `${tag} list page`);
    await shot(page, `code-list-${name}`);

    await Promise.all([page.waitForNavigation(), page.locator('a.button').tap()]);
    for (let i = 1; i <= CODE_UNITS; i++) {
      const here = `${tag} unit ${i}`;
      has(await page.locator('.progress').innerText(), t.progress.replace('%I', i).replace('%N', CODE_UNITS),
        `${here}: the progress line`);
      const questions = await checkLayout(page, here);
      if (i === 2) await shot(page, `code-form-${name}`);
      const token = page.url().match(/\/c\/[0-9A-Z]{15}\/([^/?]+)/);
      const answers = answersFor(questions, i + CODE_UNITS * CODES.indexOf(code));
      await tapAnswers(page, answers);
      const [next] = await Promise.all([page.waitForNavigation(), page.locator('button[type=submit]').tap()]);
      eq(next && next.status(), 200, `${here}: submitted, the next page answers 200`);
      submitted.push({ flow: 'code', token: token && token[1], answers, comment: null, complaint: false });
    }
    ok(new RegExp(`/c/done\\?lang=${sc.lang}$`).test(page.url()), `${tag}: after the last unit: /c/done`, page.url());
    has(await page.locator('main').innerText(), t.done, `${tag}: the done page`);
    await checkTappable(page, `${tag} done page`);
    await shot(page, `code-done-${name}`);
  } finally {
    await context.close();
  }
}

/* A comment over 500 characters cannot be typed (maxlength), so it is posted
 * with the context's request API; the 422 page is then shown in the browser. */
async function tooLong(browser) {
  const sc = SCENARIOS[3];
  const tag = 'too long comment (en 320)';
  const { context, page } = await newPhone(browser, sc);
  try {
    await page.goto(`${BASE}/u/${POSTER}?lang=en`);
    const ft = await page.locator('input[name=ft]').inputValue();
    const form = { ft, comment: '长'.repeat(501) };
    for (const q of await page.locator('input[type=radio]').evaluateAll((els) => [...new Set(els.map((e) => e.name))]))
      form[q] = 's';
    const r = await page.request.post(`${BASE}/u/${POSTER}?lang=en`, { form });
    eq(r.status(), 422, `${tag}: 422`);
    const body = await r.text();
    has(body, sc.lang === 'en' ? TEXT.en.tooLong : TEXT.zh.tooLong, `${tag}: the page says why`);
    // Show exactly that page in the browser and check it on the phone.
    await page.route(`${BASE}/u/${POSTER}?lang=en&show=422`, (route) =>
      route.fulfill({ status: 422, contentType: 'text/html; charset=utf-8', body }));
    await page.goto(`${BASE}/u/${POSTER}?lang=en&show=422`);
    ok(await page.locator('.comment.has-error').isVisible(), `${tag}: the comment box is marked`);
    eq((await page.locator('#comment').inputValue()).length, 501, `${tag}: the comment is given back to shorten`);
    await checkLayout(page, tag);
    await shot(page, 'form-422-too-long-en-320');
  } finally {
    await context.close();
  }
}

async function main() {
  for (const [k, v] of Object.entries({ PINGYI_URL: BASE, PINGYI_POSTER: POSTER, PINGYI_CODE_UNITS: CODE_UNITS || '' }))
    if (!v) { ok(false, `${k} is set`); break; }
  if (CODES.length < SCENARIOS.length) ok(false, `PINGYI_CODES has ${SCENARIOS.length} codes`, CODES.join(','));
  if (failed) { console.log(`1..${count}`); process.exit(1); }
  fs.mkdirSync(SHOTS, { recursive: true });
  // launch() gives every run a new, empty profile (--user-data-dir) of its own.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60000,
  });
  note(`chromium ${browser.version()}`);
  try {
    for (const [i, sc] of SCENARIOS.entries()) {
      await posterFlow(browser, sc, i);
      await codeFlow(browser, sc, CODES[i]);
    }
    await tooLong(browser);
  } finally {
    await browser.close();
    if (RESULT) fs.writeFileSync(RESULT, JSON.stringify(submitted, null, 1));
  }
  note(`screenshots in ${path.relative(process.cwd(), SHOTS) || SHOTS}`);
}

main().catch((e) => {
  ok(false, 'the browser test ran to its end', e && e.stack ? e.stack : e);
}).finally(() => {
  console.log(`1..${count}`);
  process.exitCode = failed ? 1 : 0;
});
