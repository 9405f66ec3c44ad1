/** TCP connect probe: up when the handshake completes. */
import { connect } from 'node:net';
import { probeErrorOf } from './probe-errors.ts';
import type { ProbeOutcome } from './probe-http.ts';

export function probeTcp(host: string, port: number, signal: AbortSignal): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ host, port });
    const finish = (outcome: ProbeOutcome): void => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(outcome);
    };
    const onAbort = (): void => finish({ up: false, latencyMs: performance.now() - started, error: 'timeout', message: `no connection to ${host}:${port} before the timeout` });
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) return onAbort();
    socket.once('connect', () => finish({ up: true, latencyMs: performance.now() - started }));
    socket.once('error', (err) => finish({ up: false, latencyMs: performance.now() - started, error: probeErrorOf(err), message: err.message }));
  });
}
