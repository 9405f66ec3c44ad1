/**
 * The web console in a real browser: Debian's chromium driven by puppeteer-core (no browser is
 * downloaded: CHROMIUM_PATH or /usr/bin/chromium), against `plumb all` started through the CLI
 * with statsd traffic, a tailed log file and alert rules. Each page is loaded as a person would
 * and checked for what they would see. One browser for the whole file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { stopAllProcesses } from '../helpers/processes.ts';
import { startConsoleScene, type ConsoleScene } from '../helpers/console-scene.ts';
import { waitFor } from '../helpers/wait.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let scene: ConsoleScene;
let browser: Browser;
let page: Page;
let collectorUrl = '';
let agentUrl = '';

/** The visible text of the element matching `selector`, '' when there is none. */
async function text(selector: string): Promise<string> {
  return page.$eval(selector, (el) => (el as HTMLElement).innerText).catch(() => '');
}

beforeAll(async () => {
  scene = await startConsoleScene({ hostname: 'console-test-host' });
  ({ collectorUrl, agentUrl } = scene);
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await scene?.stop();
  await stopAllProcesses();
});

describe('web console in chromium', () => {
  it('Alerts lists a firing alert, a pending one with its for progress, and an SLO with budget, burn rates and charts', async () => {
    const stopFeed = scene.feed();
    try {
      await page.goto(`${collectorUrl}/ui/alerts`);
      await waitFor(
        async () => {
          await page.reload();
          return (await page.$('tr[data-rule="QueueBacklog"][data-state="firing"]')) !== null && (await page.$('section[data-slo="checkout-availability"] svg path')) !== null;
        },
        { timeoutMs: 20_000, intervalMs: 500, what: 'QueueBacklog firing and an SLO chart line' },
      );
    } finally {
      stopFeed();
    }
    const row = await text('tr[data-rule="QueueBacklog"]');
    expect(row).toMatch(/firing/);
    expect(row).toMatch(/20/);
    expect(await page.$eval('tr[data-rule="QueueBacklog"]', (el) => getComputedStyle(el.querySelector('td')!).backgroundColor)).not.toBe('rgba(0, 0, 0, 0)');
    const pending = await text('tr[data-rule="QueueSlow"]');
    expect(pending).toMatch(/pending/);
    expect(pending).toMatch(/of 10m/);
    expect(await page.$('tr[data-rule="QueueSlow"] progress')).not.toBeNull();
    const slo = await text('section[data-slo="checkout-availability"]');
    expect(slo).toMatch(/objective 99% over 1h/);
    expect(slo).toMatch(/-900\.0%/); // 10 % bad against a 1 % budget
    expect(slo).toMatch(/5m: 10\.0×/);
    expect(slo).toMatch(/Error budget remaining over the 1h 0m period/);
    expect(await text('header nav')).toMatch(/Alerts\s*Fleet\s*Grok debugger/);
  });

  it('the page refreshes itself in place (with JavaScript) and still shows everything without it', async () => {
    await page.goto(`${collectorUrl}/ui/pipeline`); // refreshes every 2 s
    const stamp = await page.$eval('main', (el) => ((el as HTMLElement).dataset.stamp = 'before'));
    expect(stamp).toBe('before');
    // the script swaps main's content, not the element: a marker inside it disappears
    await page.$eval('main h1', (el) => el.setAttribute('data-old', '1'));
    await waitFor(async () => (await page.$('main h1[data-old]')) === null, { timeoutMs: 15_000, what: 'main refreshed' });
    expect(await page.$eval('main', (el) => (el as HTMLElement).dataset.stamp)).toBe('before');

    const noJs = await browser.newPage();
    try {
      await noJs.setJavaScriptEnabled(false);
      await noJs.goto(`${collectorUrl}/ui/alerts`);
      expect(await noJs.$eval('tr[data-rule="QueueBacklog"]', (el) => (el as HTMLElement).innerText)).toMatch(/firing/);
      expect(await noJs.$('noscript')).not.toBeNull();
    } finally {
      await noJs.close();
    }
  });

  it('Pipeline draws the collector’s components and makes the sink that cannot reach Elasticsearch stand out', async () => {
    await scene.logLines(60);
    await page.goto(`${collectorUrl}/ui/pipeline`);
    await waitFor(
      async () => {
        await page.reload();
        return (await page.$('g.node.degraded[data-component="logs_elasticsearch"]')) !== null;
      },
      { timeoutMs: 20_000, intervalMs: 500, what: 'the Elasticsearch sink drawn degraded' },
    );
    const ok = await page.$eval('g.node[data-component="ingest_metrics"] rect', (el) => getComputedStyle(el).stroke);
    const degraded = await page.$eval('g.node[data-component="logs_elasticsearch"] rect', (el) => getComputedStyle(el).stroke);
    expect(degraded).not.toBe(ok);
    const row = await text('tr[data-component="logs_elasticsearch"]');
    expect(row).toMatch(/degraded/);
    expect(row).toMatch(/cannot reach elasticsearch/);
    expect(row).toMatch(/bytes/); // its queue against its bound
    expect(await page.$eval('tr[data-component="logs_elasticsearch"]', (el) => el.className)).toMatch(/warn|bad/);
    // in trouble first
    expect(await page.$eval('table.components tbody tr', (el) => el.getAttribute('data-health'))).not.toBe('ok');
    expect(await page.$$eval('svg.pipeline path.edge', (els) => els.length)).toBeGreaterThan(0);
    expect(await text('main .summary')).toMatch(/sha256|Config/);
  });

  it('Inputs marks the file that lags behind (its batches refused while the sink is down) and shows statsd', async () => {
    await page.goto(`${agentUrl}/ui/inputs`);
    await waitFor(
      async () => {
        await scene.logLines(30);
        await page.reload();
        return (await page.$('tr[data-lagging="true"]')) !== null;
      },
      { timeoutMs: 30_000, intervalMs: 1000, what: 'the tailed file marked lagging' },
    );
    const row = await text(`tr[data-file="${scene.appLog}"]`);
    expect(row).toMatch(/lagging/);
    expect(row).toMatch(/KiB/); // offset of size, lag in bytes
    expect(row).toMatch(/\d+(\.\d)?%/); // share of lines parsed
    expect(row).toMatch(/failed/);
    expect(await text('table.statsd')).toMatch(/lines per second/);
    expect(await text('table.statsd')).toMatch(/of 100\.0k|of 100000/);
    // the agent's own graph: the files source in trouble
    await page.goto(`${agentUrl}/ui/pipeline`);
    expect(await page.$('g.node.degraded[data-component="files"]')).not.toBeNull();
  });

  it('Fleet lists the agent with its host name, version, config hash and last batch', async () => {
    await page.goto(`${collectorUrl}/ui/fleet`);
    const row = await text('tr[data-agent="console-test-host"]');
    expect(row).toMatch(/console-test-host/);
    expect(row).toMatch(/0\.1\.0|\d+\.\d+\.\d+/);
    expect(row).toMatch(/[0-9a-f]{12}/);
    expect(row).toMatch(/ago/);
    expect(await text('main')).toMatch(/runs alone/);
  });

  it('the grok debugger shows each line’s fields and marks the line that fails (script and no-script)', async () => {
    await page.goto(`${agentUrl}/ui/grok`);
    await page.type('input[name=pattern]', '%{IP:client} %{WORD:verb} %{NUMBER:bytes:int}');
    await page.type('textarea[name=lines]', '10.0.0.1 GET 512\nnot a request line');
    await page.click('#grok-form button[type=submit]');
    await page.waitForSelector('#grok-result table.grok');
    const matched = await text('#grok-result tr[data-outcome="matched"]');
    expect(matched).toMatch(/client\s+10\.0\.0\.1/);
    expect(matched).toMatch(/bytes\s+512/);
    expect(await text('#grok-result tr[data-outcome="failed"]')).toMatch(/no match/);
    expect(await text('#grok-result .summary')).toMatch(/1 of 2 matched \(50\.0%\)/);
    expect(page.url()).toBe(`${agentUrl}/ui/grok`); // answered in place, through the API

    // a configured input: its pattern, and the last lines of its file
    await appendFile(scene.appLog, 'WARN disk almost full\nthis line has no level\n');
    await page.select('select[name=input]', '0');
    await page.$eval('input[name=pattern]', (el) => ((el as HTMLInputElement).value = ''));
    await page.$eval('textarea[name=lines]', (el) => ((el as HTMLTextAreaElement).value = ''));
    await page.click('#grok-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#grok-result .summary')?.textContent?.includes('agent.logs[0]'));
    expect(await text('#grok-result')).toMatch(/msg\s+disk almost full/);
    expect(await page.$$eval('#grok-result tr[data-outcome="failed"]', (rows) => rows.map((r) => (r as HTMLElement).innerText).join('\n'))).toMatch(/this line has no level/);

    const noJs = await browser.newPage();
    try {
      await noJs.setJavaScriptEnabled(false);
      await noJs.goto(`${collectorUrl}/ui/grok`);
      await noJs.type('input[name=pattern]', '%{WORD:first}');
      await noJs.type('textarea[name=lines]', 'hello world');
      await Promise.all([noJs.waitForNavigation(), noJs.click('#grok-form button[type=submit]')]);
      expect(await noJs.$eval('#grok-result', (el) => (el as HTMLElement).innerText)).toMatch(/first\s+hello/);
    } finally {
      await noJs.close();
    }
  });

  it('Live tap streams what passes a component, filtered, and ends at its limit', async () => {
    await page.goto(`${agentUrl}/ui/tap`);
    expect(await page.$$eval('select[name=component] option', (os) => os.map((o) => (o as HTMLOptionElement).value))).toContain('statsd');
    await page.select('select[name=component]', 'statsd');
    await page.type('input[name=filter]', 'line =~ /^checkout\\.ok/');
    await page.$eval('input[name=rate]', (el) => ((el as HTMLInputElement).value = '50'));
    await page.$eval('input[name=limit]', (el) => ((el as HTMLInputElement).value = '3'));
    const stopFeed = scene.feed();
    try {
      await page.click('#tap-start');
      await page.waitForFunction(() => document.getElementById('tap-state')?.textContent?.startsWith('Ended after 3'), { timeout: 20_000 });
    } finally {
      stopFeed();
    }
    const lines = (await text('#tap-out')).split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(3);
    for (const l of lines) {
      expect(l).toMatch(/ metric statsd /);
      expect(l).toContain('checkout.ok:9|c');
      expect(l).not.toContain('queue.depth');
    }
    // a filter the tap cannot compile is said, not streamed
    await page.$eval('input[name=filter]', (el) => ((el as HTMLInputElement).value = 'line =~'));
    await page.click('#tap-start');
    await page.waitForFunction(() => document.getElementById('tap-state')?.textContent?.startsWith('Failed'), { timeout: 10_000 });
    expect(await text('#tap-state')).toMatch(/filter/);
  });

  it('a pattern that backtracks without end is cut by the line deadline, not left running', async () => {
    await page.goto(`${agentUrl}/ui/grok`);
    await page.type('input[name=pattern]', '^(a+)+$');
    await page.type('textarea[name=lines]', `${'a'.repeat(40)}b\naaa`);
    await page.click('#grok-form button[type=submit]');
    await page.waitForSelector('#grok-result table.grok', { timeout: 20_000 });
    expect(await text('#grok-result tr[data-outcome="timeout"]')).toMatch(/overran the line deadline/);
    expect(await text('#grok-result tr[data-outcome="matched"]')).toMatch(/aaa/);
  });

  it('Pipeline shows every error of a config reload that failed (SIGHUP with a broken file), and the running config stays', async () => {
    const file = path.join(scene.dir, 'plumb.yaml');
    const good = await readFile(file, 'utf8');
    await writeFile(file, good.replace('flushInterval: 500ms', 'flushInterval: -5').replace('evaluationInterval: 500ms', 'evaluationInterval: soon'));
    try {
      scene.plumb.child.kill('SIGHUP');
      await page.goto(`${collectorUrl}/ui/pipeline`);
      await waitFor(
        async () => {
          await page.reload();
          return (await page.$('[data-reload="failure"]')) !== null;
        },
        { timeoutMs: 20_000, intervalMs: 500, what: 'the failed reload on the pipeline page' },
      );
      const note = await text('[data-reload="failure"]');
      expect(note).toMatch(/failed; the running config stays/);
      expect(note).toMatch(/evaluationInterval/);
      await page.goto(`${agentUrl}/ui/pipeline`);
      expect(await text('[data-reload="failure"]')).toMatch(/flushInterval/);
    } finally {
      await writeFile(file, good);
    }
  });
});
