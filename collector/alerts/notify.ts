/**
 * Delivery of alert notifications. Each destination (an Alertmanager, a JSON webhook, a Slack
 * incoming webhook) has its own bounded queue and one sender working through it with retry and
 * backoff, so a slow or dead receiver delays only itself and never the evaluation that fills
 * the queue. When a queue is full the new notification is dropped and counted; one that fails
 * all its attempts is dropped and counted too. 4xx answers (except 408 and 429) are not retried.
 */
import { request } from 'undici';
import { errorMessage } from '../../shared/errors.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { BoundedQueue } from '../../shared/queue.ts';
import { httpStatusError, retry, SINK_CODES } from '../../shared/retry.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import type { AlertsConfig } from './config.ts';

export type DestinationKind = 'alertmanager' | 'json' | 'slack';

/** One alert as notifiers see it. Times are Unix milliseconds. */
export interface AlertNotice {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: number;
  /** When it resolved, or (firing, Alertmanager only) until when it stays valid without a resend. */
  endsAt: number | undefined;
  generatorURL: string;
  value: number | undefined;
}

interface Destination {
  readonly kind: DestinationKind;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly queue: BoundedQueue<string>;
}

/** Sends one POST; resolves on 2xx, throws RetryableError or PermanentError otherwise. */
export type PostFn = (url: string, body: string, headers: Record<string, string>, signal: AbortSignal) => Promise<void>;

export interface NotifierOptions {
  config: AlertsConfig;
  telemetry: Telemetry;
  log: Logger;
  /** Replaces the HTTP client (tests of the queueing itself). */
  post?: PostFn;
}

const KINDS: readonly DestinationKind[] = ['alertmanager', 'json', 'slack'];

export class Notifier {
  private readonly destinations: Destination[];
  private readonly config: AlertsConfig;
  private readonly log: Logger;
  private readonly logOnce: LogOnce;
  private readonly post: PostFn;
  private readonly sent;
  private readonly dropped;
  private readonly errors;
  private abort: AbortController | undefined;
  private workers: Promise<void>[] = [];
  private idleWaiters: (() => void)[] = [];
  private busy = 0;

  constructor(options: NotifierOptions) {
    const { config, telemetry } = options;
    this.config = config;
    this.log = options.log;
    this.logOnce = new LogOnce(options.log);
    this.post = options.post ?? ((url, body, headers, signal) => httpPost(url, body, headers, signal, config.delivery.timeout));
    const queue = (): BoundedQueue<string> => new BoundedQueue<string>({ maxItems: config.delivery.queueSize });
    this.destinations = [
      ...config.alertmanager.urls.map((u) => ({ kind: 'alertmanager' as const, url: `${u.replace(/\/+$/, '')}/api/v2/alerts`, headers: config.alertmanager.headers, queue: queue() })),
      ...config.webhooks.map((w) => ({ kind: w.kind, url: w.url, headers: w.headers, queue: queue() })),
    ];
    this.sent = telemetry.counter('plumb_alerts_notifications_sent_total', 'Notifications delivered, by destination kind.', ['kind']);
    this.dropped = telemetry.counter('plumb_alerts_notifications_dropped_total', 'Notifications given up on: queue_full (refused) or failed (every attempt failed).', ['kind', 'reason']);
    this.errors = telemetry.counter('plumb_alerts_notification_errors_total', 'Failed delivery attempts, by destination kind and error type.', ['kind', 'error_type']);
    const destinations = this.destinations;
    telemetry.gauge('plumb_alerts_notification_queue_length', 'Notifications waiting for delivery, by destination kind.', ['kind'], function collect() {
      for (const k of KINDS) this.set({ kind: k }, destinations.filter((d) => d.kind === k).reduce((n, d) => n + d.queue.length, 0));
    });
    for (const d of this.destinations) {
      this.sent.inc({ kind: d.kind }, 0);
      this.dropped.inc({ kind: d.kind, reason: 'queue_full' }, 0);
      this.dropped.inc({ kind: d.kind, reason: 'failed' }, 0);
    }
  }

  get hasAlertmanager(): boolean {
    return this.destinations.some((d) => d.kind === 'alertmanager');
  }

  get hasWebhooks(): boolean {
    return this.destinations.some((d) => d.kind !== 'alertmanager');
  }

  start(): void {
    if (this.abort !== undefined) return;
    const abort = new AbortController();
    this.abort = abort;
    this.workers = this.destinations.map((d) => this.run(d, abort.signal));
  }

  /** Lets queued notifications go out until `timeoutMs` has passed, then abandons the rest. */
  async stop(timeoutMs = 5000): Promise<void> {
    const abort = this.abort;
    if (abort === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    abort.abort();
    await Promise.all(this.workers);
    this.workers = [];
    this.abort = undefined;
  }

  /** Resolves once every queue is empty and no send is in flight. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.busy === 0 && this.destinations.every((d) => d.queue.length === 0);
  }

  /** Queues the alerts for every Alertmanager (Alertmanager API v2). */
  toAlertmanager(notices: readonly AlertNotice[]): void {
    if (notices.length === 0) return;
    const body = JSON.stringify(notices.map(alertmanagerAlert));
    for (const d of this.destinations) if (d.kind === 'alertmanager') this.enqueue(d, body);
  }

  /** Queues state changes (started firing, resolved) for every webhook. */
  toWebhooks(notices: readonly AlertNotice[], externalUrl: string): void {
    if (notices.length === 0) return;
    let json: string | undefined;
    let slack: string | undefined;
    for (const d of this.destinations) {
      if (d.kind === 'json') this.enqueue(d, (json ??= JSON.stringify(webhookBody(notices, externalUrl))));
      else if (d.kind === 'slack') this.enqueue(d, (slack ??= JSON.stringify({ text: slackText(notices) })));
    }
  }

  private enqueue(d: Destination, body: string): void {
    if (!d.queue.push(body)) {
      this.dropped.inc({ kind: d.kind, reason: 'queue_full' });
      this.logOnce.warn(`queue_full:${d.url}`, { kind: d.kind, url: d.url, queued: d.queue.length }, 'alert notification queue is full; dropping the newest notification');
    }
  }

  private async run(d: Destination, signal: AbortSignal): Promise<void> {
    const { backoffInitial, backoffMax, maxAttempts } = this.config.delivery;
    while (!signal.aborted) {
      await d.queue.waitForItem(signal);
      const body = d.queue.peek();
      if (body === undefined || signal.aborted) continue;
      this.busy++;
      try {
        await retry(() => this.post(d.url, body, d.headers, signal), {
          initialMs: backoffInitial,
          maxMs: backoffMax,
          maxAttempts,
          signal,
          onRetry: (err) => this.countError(d, err),
        });
        this.sent.inc({ kind: d.kind });
        d.queue.shift();
      } catch (err) {
        if (signal.aborted) break;
        this.countError(d, err);
        d.queue.shift();
        this.dropped.inc({ kind: d.kind, reason: 'failed' });
        this.logOnce.warn(`failed:${d.url}`, { kind: d.kind, url: d.url, err: errorMessage(err) }, 'alert notification could not be delivered; dropped');
      } finally {
        this.busy--;
      }
      if (this.isIdle() && this.idleWaiters.length > 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  private countError(d: Destination, err: unknown): void {
    this.errors.inc({ kind: d.kind, error_type: errorType(err) });
  }
}

function errorType(err: unknown): string {
  const status = (err as { status?: number }).status;
  if (typeof status === 'number') return status === 429 ? 'http_429' : `http_${Math.floor(status / 100)}xx`;
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'HeadersTimeoutError' || err.name === 'BodyTimeoutError')) return 'timeout';
  return 'network';
}

async function httpPost(url: string, body: string, headers: Record<string, string>, signal: AbortSignal, timeout: number): Promise<void> {
  const res = await request(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'user-agent': 'plumb-collector', ...headers },
    signal: AbortSignal.any([signal, AbortSignal.timeout(timeout)]),
  });
  const status = res.statusCode;
  if (status >= 200 && status < 300) {
    await res.body.dump();
    return;
  }
  const text = (await res.body.text().catch(() => '')).slice(0, 200);
  const message = `${url} answered ${status}${text ? `: ${text}` : ''}`;
  throw httpStatusError(status, message, res.headers['retry-after'], SINK_CODES);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** A postableAlert of Alertmanager's API v2. */
function alertmanagerAlert(n: AlertNotice): Record<string, unknown> {
  const a: Record<string, unknown> = { labels: n.labels, annotations: n.annotations, startsAt: iso(n.startsAt), generatorURL: n.generatorURL };
  if (n.endsAt !== undefined) a.endsAt = iso(n.endsAt);
  return a;
}

/**
 * The JSON webhook body has the shape of Alertmanager's webhook notifications (version 4), so
 * receivers written for Alertmanager accept it; `value` is plumb's addition.
 */
function webhookBody(notices: readonly AlertNotice[], externalUrl: string): Record<string, unknown> {
  const common = <K extends 'labels' | 'annotations'>(k: K): Record<string, string> => {
    const first = notices[0][k];
    const out: Record<string, string> = {};
    for (const [name, v] of Object.entries(first)) if (notices.every((n) => n[k][name] === v)) out[name] = v;
    return out;
  };
  const commonLabels = common('labels');
  return {
    version: '4',
    receiver: 'plumb',
    status: notices.some((n) => n.status === 'firing') ? 'firing' : 'resolved',
    groupLabels: commonLabels.alertname !== undefined ? { alertname: commonLabels.alertname } : {},
    commonLabels,
    commonAnnotations: common('annotations'),
    externalURL: externalUrl,
    alerts: notices.map((n) => ({
      status: n.status,
      labels: n.labels,
      annotations: n.annotations,
      startsAt: iso(n.startsAt),
      endsAt: n.status === 'resolved' && n.endsAt !== undefined ? iso(n.endsAt) : '0001-01-01T00:00:00Z',
      generatorURL: n.generatorURL,
      value: n.value ?? null,
    })),
  };
}

/** One line per alert: status, name, its other labels, then its summary or description. */
export function slackText(notices: readonly AlertNotice[]): string {
  return notices
    .map((n) => {
      const { alertname, ...rest } = n.labels;
      const labels = Object.entries(rest)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      const text = n.annotations.summary ?? n.annotations.description ?? '';
      return `[${n.status.toUpperCase()}] ${alertname ?? ''}${labels ? ` (${labels})` : ''}${text ? ` — ${text}` : ''}`;
    })
    .join('\n');
}
