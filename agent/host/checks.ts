/**
 * Service checks: HTTP(S) and TCP probes from the agent's host, each bounded by its own timeout.
 * `run()` probes every check at once; `start()` gives each check its own schedule, so a slow
 * target never holds back the results of the others. Results become gauges (`checkSamples`)
 * and DogStatsD-style service checks (`serviceCheckStatuses`).
 */
import type { Counter } from 'prom-client';
import { ConfigError } from '../../shared/config.ts';
import { errorMessage } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import type { ServiceCheck } from '../../shared/wire.ts';
import { serviceCheckErrors, type ServiceCheckConfig, type ServiceChecksConfig } from './config.ts';
import { IntervalRunner } from './interval.ts';
import type { ProbeError } from './probe-errors.ts';
import { probeHttp, type HttpProbe, type ProbeOutcome } from './probe-http.ts';
import { probeTcp } from './probe-tcp.ts';
import { tagValue, type HostSample } from './sample.ts';

export type { ProbeError } from './probe-errors.ts';

export interface CheckResult {
  check: string;
  kind: 'http' | 'tcp';
  up: boolean;
  /** Time to a complete answer (or to the failure). */
  latencyMs: number;
  /** HTTP status, when the server answered. */
  status?: number;
  /** Days until the server's certificate expires (https only; negative once expired). */
  certDaysLeft?: number;
  /** Why the check is down: timeout, refused, dns, tls, reset, unreachable, status, body, cert_expiring, error. */
  error?: ProbeError;
  /** Human detail for the service check message; never used as a tag. */
  message?: string;
  /** The check's configured tags. */
  tags?: string[];
}

export interface CheckContext {
  telemetry: Telemetry;
  log: Logger;
}

/** Service check status values, as DogStatsD numbers them. */
export const CHECK_OK = 0;
export const CHECK_CRITICAL = 2;

/** Failures where the target did answer, so the latency is the target's. */
const ANSWERED: ReadonlySet<ProbeError | undefined> = new Set(['status', 'body', 'cert_expiring']);

interface Prepared {
  config: ServiceCheckConfig;
  timeoutMs: number;
  intervalMs: number;
  probe: (signal: AbortSignal) => Promise<ProbeOutcome>;
}

export class ServiceChecker {
  private readonly checks: Prepared[];
  private readonly log: Logger;
  private readonly runs: Counter<'kind' | 'result'>;
  private runners: IntervalRunner[] = [];

  /** Throws ConfigError listing every problem when the checks are not usable as configured. */
  constructor(config: ServiceChecksConfig, ctx: CheckContext) {
    const errors = serviceCheckErrors(config);
    if (errors.length > 0) throw new ConfigError('service checks', errors);
    this.log = ctx.log;
    this.runs = ctx.telemetry.counter('plumb_check_runs_total', 'Service check runs, by kind and result (up, or the error code).', ['kind', 'result']);
    this.checks = config.checks.map((c) => prepare(c, c.timeout ?? config.timeout, c.interval ?? config.interval));
  }

  get size(): number {
    return this.checks.length;
  }

  /** Probes every check once, all at the same time; resolves within the longest timeout. Never rejects. */
  run(): Promise<CheckResult[]> {
    return Promise.all(this.checks.map((c) => this.runOne(c)));
  }

  /** Runs each check now and then on its own interval, handing every result to `sink` as it arrives. */
  start(sink: (results: CheckResult[]) => void): void {
    if (this.runners.length > 0) return;
    this.runners = this.checks.map(
      (c) =>
        new IntervalRunner(c.intervalMs, async () => {
          const result = await this.runOne(c);
          try {
            sink([result]);
          } catch (err) {
            this.log.error({ err: errorMessage(err), check: c.config.name }, 'service checks: the aggregator refused a result');
          }
        }),
    );
    for (const r of this.runners) r.start();
  }

  /** Stops every schedule; resolves once probes in flight have finished (each within its timeout). */
  async stop(): Promise<void> {
    const runners = this.runners;
    this.runners = [];
    await Promise.all(runners.map((r) => r.stop()));
  }

  private async runOne(c: Prepared): Promise<CheckResult> {
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // The probe honours the signal; the race makes the timeout hold even if a library does not.
    const deadline = new Promise<ProbeOutcome>((resolve) => {
      timer = setTimeout(() => {
        ac.abort();
        resolve({ up: false, latencyMs: c.timeoutMs, error: 'timeout', message: `no answer within ${c.timeoutMs}ms` });
      }, c.timeoutMs);
    });
    let outcome: ProbeOutcome;
    try {
      outcome = await Promise.race([c.probe(ac.signal), deadline]);
    } catch (err) {
      outcome = { up: false, latencyMs: 0, error: 'error', message: errorMessage(err) };
    } finally {
      clearTimeout(timer);
    }
    this.runs.inc({ kind: c.config.type, result: outcome.up ? 'up' : (outcome.error ?? 'error') });
    return { check: c.config.name, kind: c.config.type, ...outcome, tags: c.config.tags };
  }
}

function prepare(c: ServiceCheckConfig, timeoutMs: number, intervalMs: number): Prepared {
  if (c.type === 'tcp') {
    const host = c.host as string;
    const port = c.port as number;
    return { config: c, timeoutMs, intervalMs, probe: (signal) => probeTcp(host, port, signal) };
  }
  const http: HttpProbe = {
    url: new URL(c.url as string),
    method: c.method,
    headers: c.headers,
    body: c.body,
    expect: statusMatcher(c.expectStatus),
    expectText: c.expectStatus.join(', '),
    bodyMatch: c.bodyMatch === undefined ? undefined : new RegExp(c.bodyMatch),
    tlsVerify: c.tlsVerify,
    certMinDays: c.certMinDays,
    timeoutMs,
  };
  return { config: c, timeoutMs, intervalMs, probe: (signal) => probeHttp(http, signal) };
}

/** [200, "3xx"] → status 200 or any 300–399. */
export function statusMatcher(expect: readonly (number | string)[]): (status: number) => boolean {
  const exact = new Set<number>();
  const classes = new Set<number>();
  for (const e of expect) {
    if (typeof e === 'number') exact.add(e);
    else if (e.endsWith('xx')) classes.add(Number(e[0]));
    else exact.add(Number(e));
  }
  return (status) => exact.has(status) || classes.has(Math.floor(status / 100));
}

function checkTags(r: CheckResult, host: string): string[] {
  return [`host:${tagValue(host)}`, `check:${tagValue(r.check)}`, `kind:${r.kind}`, ...(r.tags ?? [])];
}

/**
 * Gauges for the aggregator: plumb.check.up (1/0) always; plumb.check.latency_ms when the
 * target answered (up, or down for its status, body or certificate); plumb.check.cert_days_left
 * when a certificate was seen.
 */
export function checkSamples(results: readonly CheckResult[], host: string): HostSample[] {
  const out: HostSample[] = [];
  for (const r of results) {
    const tags = checkTags(r, host);
    out.push({ name: 'plumb.check.up', type: 'g', value: r.up ? 1 : 0, tags });
    if (r.up || ANSWERED.has(r.error)) out.push({ name: 'plumb.check.latency_ms', type: 'g', value: r.latencyMs, tags });
    if (r.certDaysLeft !== undefined) out.push({ name: 'plumb.check.cert_days_left', type: 'g', value: r.certDaysLeft, tags });
  }
  return out;
}

/** One DogStatsD-style service check per result, named `plumb.check`: 0 OK, 2 CRITICAL with the reason as message. */
export function serviceCheckStatuses(results: readonly CheckResult[], host: string, nowMs: number = Date.now()): ServiceCheck[] {
  return results.map((r) => ({
    name: 'plumb.check',
    status: r.up ? CHECK_OK : CHECK_CRITICAL,
    timestamp: Math.floor(nowMs / 1000),
    hostname: host,
    tags: checkTags(r, host).filter((t) => !t.startsWith('host:')),
    message: r.up ? null : `${r.error ?? 'error'}: ${r.message ?? 'check failed'}`,
  }));
}
