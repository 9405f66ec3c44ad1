/**
 * What the web console costs: CPU and memory of a running `plumb all` (the console scene of
 * test/helpers/console-scene.ts, fed a steady trickle of statsd lines and log lines) with nobody
 * looking, with console pages open in chromium refreshing themselves, with a live tap streaming,
 * and the CPU one render of each page takes.
 *
 *   node bench/console.ts [--seconds 30] [--renders 200]
 *
 * CPU is user + system time of the plumb process over each window (/proc/<pid>/stat, all
 * threads), as cores; memory is its RSS at the end of the window. Prints one JSON object.
 */
import { appendFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import puppeteer, { type Browser } from 'puppeteer-core';
import { startConsoleScene, type ConsoleScene } from '../test/helpers/console-scene.ts';
import { cpuSeconds, machineCpu, rssMiB } from './span-load.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const seconds = Number(flag('seconds', '30'));
const renders = Number(flag('renders', '200'));

interface Window {
  cores: number;
  rssMiB: number;
  otherCores: number;
}

/** Runs `during` for `seconds` and reads the plumb process's CPU and RSS over that time. */
async function measure(pid: number, during: () => Promise<void> | void = () => undefined): Promise<Window> {
  const c0 = cpuSeconds(pid);
  const m0 = machineCpu();
  const t0 = performance.now();
  await during();
  await sleep(Math.max(0, seconds * 1000 - (performance.now() - t0)));
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - c0;
  const m1 = machineCpu();
  return { cores: round(cpu / wall, 4), rssMiB: round(rssMiB(pid), 1), otherCores: round((m1.busy - m0.busy - cpu) / wall, 2) };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** A trickle of traffic, so rates and the tap have something to show: 20 statsd lines and 10 log lines a second. */
function trickle(scene: ConsoleScene): () => void {
  let i = 0;
  const timer = setInterval(() => {
    i++;
    void scene.statsd(...Array.from({ length: 20 }, (_, k) => `bench.hits:${k}|c|#n:${k % 4}`)).catch(() => undefined);
    void appendFile(scene.appLog, Array.from({ length: 10 }, (_, k) => `INFO bench line ${i}.${k}\n`).join('')).catch(() => undefined);
  }, 1000);
  return () => clearInterval(timer);
}

/** CPU milliseconds and wall milliseconds per render of a page, `renders` sequential requests. */
async function renderCost(pid: number, url: string): Promise<{ cpuMs: number; wallMs: number; bytes: number }> {
  let bytes = 0;
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  for (let i = 0; i < renders; i++) bytes = (await (await fetch(url)).text()).length;
  return { cpuMs: round(((cpuSeconds(pid) - c0) * 1000) / renders, 2), wallMs: round((performance.now() - t0) / renders, 2), bytes };
}

const scene = await startConsoleScene({ hostname: 'bench-host' });
const pid = scene.plumb.child.pid!;
const stopFeed = scene.feed();
const stopTrickle = trickle(scene);
let browser: Browser | null = null;
const result: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}`,
  seconds,
};
try {
  await sleep(5000); // start-up settles
  result.idle = await measure(pid);
  const pages = [`${scene.collectorUrl}/ui/alerts`, `${scene.collectorUrl}/ui/fleet`, `${scene.agentUrl}/ui/grok`];
  for (const extra of [`${scene.collectorUrl}/ui/pipeline`, `${scene.agentUrl}/ui/pipeline`, `${scene.agentUrl}/ui/inputs`]) {
    if ((await fetch(extra)).ok) pages.push(extra);
  }
  const costs: Record<string, unknown> = {};
  for (const url of pages) costs[`${url.startsWith(scene.agentUrl) ? 'agent' : 'collector'} ${new URL(url).pathname}`] = await renderCost(pid, url);
  result.render = costs;
  browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const open = pages.filter((p) => !p.endsWith('/ui/grok'));
  result.pagesOpen = open.map((u) => `${u.startsWith(scene.agentUrl) ? 'agent' : 'collector'} ${new URL(u).pathname}`);
  const b = browser;
  // one browser context per page: each is a visible tab, so each refreshes itself (a hidden one does not)
  const contexts: Awaited<ReturnType<Browser['createBrowserContext']>>[] = [];
  result.refreshing = await measure(pid, async () => {
    for (const url of open) {
      const ctx = await b.createBrowserContext();
      contexts.push(ctx);
      const p = await ctx.newPage();
      await p.goto(url);
      if (await p.evaluate(() => document.hidden)) throw new Error(`${url} is a hidden tab: it would not refresh`);
    }
  });
  for (const ctx of contexts) await ctx.close();
  result.idleAgain = await measure(pid);
  const tapUrl = `${scene.agentUrl}/api/v1/tap?component=statsd&rate=100&limit=1000000`;
  const tap = await fetch(tapUrl).catch(() => null);
  if (tap?.ok && tap.body) {
    let lines = 0;
    const reader = tap.body.getReader();
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        for (const byte of value ?? []) if (byte === 0x0a) lines++;
      }
    })();
    result.tapping = { ...(await measure(pid)), lines };
    await reader.cancel().catch(() => undefined);
    await reading;
  } else {
    result.tapping = `no tap (${tap?.status ?? 'unreachable'})`;
  }
} finally {
  stopTrickle();
  stopFeed();
  await browser?.close();
  await scene.stop();
}
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
