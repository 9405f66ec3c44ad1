/** Builds and runs the C load generator (bench/loadgen.c). */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { track } from './processes.ts';

const SOURCE = resolve(import.meta.dirname, '..', 'loadgen.c');

export interface LoadgenResult {
  lines: number;
  datagrams: number;
  bytes: number;
  sendErrors: number;
  elapsed: number;
  userSeconds: number;
  systemSeconds: number;
  maxLateUs: number;
  poolLinesPerDatagram: number;
}

export interface LoadgenOptions {
  port: number;
  /** Send to this Unix datagram socket instead of 127.0.0.1:port. */
  unixPath?: string;
  /** Lines per second; 0 sends flat out. */
  rate: number;
  seconds: number;
  series: number;
  seed?: number;
}

/** Compiles the generator into `workDir` with `cc -O2` when the binary is missing or older than the source. */
export function buildLoadgen(workDir: string): string {
  mkdirSync(workDir, { recursive: true });
  const binary = join(workDir, 'loadgen');
  if (!existsSync(binary) || statSync(binary).mtimeMs < statSync(SOURCE).mtimeMs) {
    execFileSync('cc', ['-O2', '-Wall', '-o', binary, SOURCE], { stdio: 'inherit', timeout: 60_000 });
  }
  return binary;
}

function runJson<T>(binary: string, args: string[], timeoutMs: number): Promise<T> {
  return new Promise((res, rej) => {
    const child = track(spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    // The generator bounds itself by --duration; this is the backstop.
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return rej(new Error(`loadgen exited with ${code}: ${err.trim()}`));
      try {
        res(JSON.parse(out) as T);
      } catch {
        rej(new Error(`loadgen printed no result: ${out.slice(0, 200)}`));
      }
    });
  });
}

export function runLoadgen(binary: string, o: LoadgenOptions): Promise<LoadgenResult> {
  const target = o.unixPath ? ['--unix', o.unixPath] : ['--port', String(o.port)];
  const args = [...target, '--rate', String(Math.round(o.rate)), '--duration', String(o.seconds), '--series', String(o.series), '--seed', String(o.seed ?? 1)];
  return runJson<LoadgenResult>(binary, args, o.seconds * 1000 + 30_000);
}

/** Writes the generator's datagram pool to `file` (4-byte little-endian length + bytes each), for in-process runs. */
export function dumpPool(binary: string, file: string, series: number, seed = 1): Promise<{ datagrams: number; lines: number; bytes: number }> {
  return runJson(binary, ['--dump', file, '--series', String(series), '--seed', String(seed)], 60_000);
}
