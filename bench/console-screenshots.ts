/**
 * Screenshots of the web console for the README (docs/console/*.png): starts the console scene
 * (test/helpers/console-scene.ts: `plumb all` with firing alerts, a burning SLO, a lagging file
 * and an Elasticsearch sink that does not answer), feeds it for a while, and photographs each
 * page in Debian's chromium (CHROMIUM_PATH, default /usr/bin/chromium).
 *
 *   node bench/console-screenshots.ts [--out docs/console] [--settle 20]
 */
import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { startConsoleScene } from '../test/helpers/console-scene.ts';
import { REPO_ROOT } from '../test/helpers/processes.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const out = path.resolve(REPO_ROOT, flag('out', 'docs/console'));
const settleSeconds = Number(flag('settle', '20'));

await mkdir(out, { recursive: true });
const scene = await startConsoleScene({ hostname: 'web-1' });
const stopFeed = scene.feed();
const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
try {
  // log lines for the inputs page and the tap, some that the pattern does not match
  for (let i = 0; i < settleSeconds; i++) {
    await scene.statsd(`api.latency:${40 + (i % 7) * 9}|ms`, 'api.requests:25|c', 'bad line without a type');
    await scene.logLines(30);
    await sleep(1000);
  }
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800, deviceScaleFactor: 1 });
  const shoot = async (url: string, name: string, prepare?: () => Promise<void>): Promise<void> => {
    await page.goto(url, { waitUntil: 'load' });
    await prepare?.();
    await page.screenshot({ path: path.join(out, `${name}.png`), fullPage: true });
    process.stdout.write(`${path.relative(REPO_ROOT, path.join(out, `${name}.png`))}\n`);
  };
  await shoot(`${scene.collectorUrl}/ui/pipeline`, 'pipeline');
  await shoot(`${scene.agentUrl}/ui/pipeline`, 'pipeline-agent');
  await shoot(`${scene.agentUrl}/ui/inputs`, 'inputs');
  await shoot(`${scene.collectorUrl}/ui/alerts`, 'alerts');
  await shoot(`${scene.collectorUrl}/ui/fleet`, 'fleet');
  await shoot(`${scene.agentUrl}/ui/grok`, 'grok', async () => {
    await page.type('input[name=pattern]', '%{IP:client} %{WORD:verb} %{URIPATH:path} %{NUMBER:status:int} %{NUMBER:ms:float}');
    await page.type('textarea[name=lines]', '10.0.0.7 GET /api/orders 200 12.5\n10.0.0.9 POST /api/checkout 502 830.1\nconnection reset by peer\n10.0.0.7 GET /healthz 200 0.4');
    await page.click('#grok-form button[type=submit]');
    await page.waitForSelector('#grok-result table.grok');
  });
} finally {
  stopFeed();
  await browser.close();
  await scene.stop();
}
