/**
 * SLO burn-rate alerts on scripted traffic. Every expected time below is worked out by hand from
 * the definitions: burn rate = (bad / total over the window) / (1 − objective); the workbook's
 * alerts fire while both their windows burn faster than 14.4 (1h and 5m), 6 (6h and 30m) and
 * 1 (3d and 6h). A window (now − W, now] holds the agent batches whose 10 s interval starts in it;
 * the older part of a long window sits in wider buckets (1/60 of the window: 30 s for 30m, 1 min
 * for 1h, 5 min for 6h), and the one its far edge cuts counts in proportion to the overlap, so a
 * long window can hold one batch more or less than the exact count. Where that matters it is
 * worked out below.
 */
import { describe, expect, it } from 'vitest';
import { newSketch } from '../../../../shared/sketch.ts';
import { harness, sample, type Harness } from './harness.ts';

const S = 1000;
const M = 60 * S;
const H = 60 * M;

type Key = 'ticket' | 'page6h' | 'page1h';
const KEY: Record<string, Key> = { '3d': 'ticket', '6h': 'page6h', '1h': 'page1h' };

/** Firing and resolution times (ms) of each of an SLO's three default burn-rate alerts. */
class Timeline {
  readonly fired: Partial<Record<Key, number[]>> = {};
  readonly resolved: Partial<Record<Key, number[]>> = {};
  private readonly firing = new Set<Key>();

  record(h: Harness, now: number): void {
    const current = new Set<Key>();
    for (const a of h.engine.alertsJSON().data.alerts) if (a.state === 'firing') current.add(KEY[a.labels.window]);
    for (const k of current) if (!this.firing.has(k)) (this.fired[k] ??= []).push(now);
    for (const k of this.firing) if (!current.has(k)) (this.resolved[k] ??= []).push(now);
    this.firing.clear();
    for (const k of current) this.firing.add(k);
  }
}

describe('availability SLO, fast burn', () => {
  // Objective 99.9 %: the budget is 0.001 of requests. 100 requests every 10 s from t = 0. From
  // T = 2h, for 10 minutes (batches T, T+10s, …, T+590s: 60 batches), 10 of each 100 fail: 10 %,
  // a 100× burn. Evaluations every 15 s. Below, d = now − T and x = floor(d/10), so the outage
  // batches seen by now number x+1 (at most 60).
  const T = 2 * H;
  const rules = `
rules:
  - slo: checkout-availability
    objective: 99.9
    period: 30d
    bad: { metric: checkout.errors }
    total: { metric: checkout.requests }
    labels: { team: payments }
`;

  function simulate(until: number, onEvaluate: (h: Harness, now: number) => void): Harness {
    const h = harness(rules);
    for (let t = 0; t <= until; t += 5 * S) {
      if (t % (10 * S) === 0) {
        h.engine.observeMetric({ statsdName: 'checkout.requests', name: 'checkout_requests', labels: { host: 'a' }, type: 'c', value: 100 }, t);
        if (t >= T && t < T + 10 * M) h.engine.observeMetric({ statsdName: 'checkout.errors', name: 'checkout_errors', labels: { host: 'a' }, type: 'c', value: 10 }, t);
      }
      if (t % (15 * S) === 0) {
        h.engine.evaluate(t);
        onEvaluate(h, t);
      }
    }
    return h;
  }

  it('tickets, then pages on both page conditions, then resolves each as its short window recovers', () => {
    const timeline = new Timeline();
    simulate(T + 40 * M, (h, now) => timeline.record(h, now));

    // Ticket (3d and 6h > 1). Both windows still hold all traffic since t = 0: 721 + x batches,
    // 100 requests each; errors 10(x+1). 10(x+1) / (100(721+x)) / 0.001 > 1 ⇔ 99x > 621 ⇔ x ≥ 7,
    // d ≥ 70 s: the evaluation at d = 75 s.
    expect(timeline.fired.ticket).toEqual([T + 75 * S]);

    // Page (6h and 30m > 6). 6h: 100(x+1)/(721+x) > 6 ⇔ 94x > 4226 ⇔ x ≥ 45. 30m (180 batches):
    // 10(x+1)/18000/0.001 > 6 ⇔ x ≥ 10. So d ≥ 450 s: the evaluation at d = 450 s.
    expect(timeline.fired.page6h).toEqual([T + 450 * S]);

    // Page (1h and 5m > 14.4). 1h (360 batches): 10(x+1)/36000/0.001 = (x+1)/3.6 > 14.4 ⇔ x ≥ 51.
    // 5m (30 batches): (x+1)·10/3 > 14.4 ⇔ x ≥ 4. So d ≥ 510 s: the evaluation at d = 510 s. There
    // the 1h window's edge (T − 3090 s) halves the 1 min bucket [T−3120, T−3060): its 6 batches
    // count 3 where 2 are inside, so the window holds 361: 520/36100/0.001 = 14.40, still > 14.4;
    // at d = 495 s it is 500/36000/0.001 = 13.9 at most.
    expect(timeline.fired.page1h).toEqual([T + 510 * S]);

    // Recovery of the 1h page: the 5m window keeps the outage batches k with T+10k > now−300,
    // 59 − floor((d−300)/10) of them, burning at that count × 10/3; ≤ 14.4 once the count is ≤ 4,
    // i.e. d ≥ 850 s: the evaluation at d = 855 s.
    expect(timeline.resolved.page1h).toEqual([T + 855 * S]);

    // Recovery of the 6h page: 30m keeps 59 − floor((d−1800)/10) outage batches, burning at
    // count/1.8; ≤ 6 once the count is ≤ 10, i.e. d ≥ 2290 s: the evaluation at d = 2295 s.
    // (Its 30 s edge bucket counts 12 rather than 11 at d = 2280 s, 10.5 rather than 10 at 2295 s:
    // the same side of 6. The 6h window still burns at 600 / (100·(721+228)) / 0.001 ≈ 6.3.)
    expect(timeline.resolved.page6h).toEqual([T + 2295 * S]);

    // The ticket's 6h window burns > 1 until the outage leaves it, hours later.
    expect(timeline.resolved.ticket).toBeUndefined();
  });

  it('labels the alerts, and exports burn rates and the remaining budget', () => {
    let text = '';
    let alerts: { labels: Record<string, string>; annotations: Record<string, string> }[] = [];
    simulate(T + 855 * S, (h, now) => {
      if (now === T + 510 * S) {
        text = h.engine.metricsText();
        alerts = h.engine.alertsJSON().data.alerts;
      }
    });
    const page = alerts.find((a) => a.labels.window === '1h')!;
    expect(page.labels).toEqual({ alertname: 'SLOErrorBudgetBurn', slo: 'checkout-availability', severity: 'page', window: '1h', team: 'payments' });
    // At d = 510 s, x = 51: 1h burns at 520/36100/0.001 (361 batches, see above); the 5m window
    // holds batches 22…51, all 10 % bad: 100×.
    expect(page.annotations.summary).toBe('SLO checkout-availability is burning its error budget 14.4x too fast over 1h');
    expect(sample(text, 'plumb_slo_burn_rate{slo="checkout-availability",window="1h"}')).toBeCloseTo(520 / 36_100 / 0.001, 9);
    expect(sample(text, 'plumb_slo_burn_rate{slo="checkout-availability",window="5m"}')).toBeCloseTo(100, 9);
    // Period so far: 721 + 51 batches = 77 200 requests, 520 errors: 520/77200 of requests against
    // a budget of 0.001 spends 6.74 budgets; the remaining share is 1 − 6.74 (overspent).
    expect(sample(text, 'plumb_slo_error_budget_remaining{slo="checkout-availability"}')).toBeCloseTo(1 - 520 / 77200 / 0.001, 9);
    expect(text).toContain('ALERTS{alertname="SLOErrorBudgetBurn",alertstate="firing",severity="page",slo="checkout-availability",team="payments",window="1h"} 1');
  });
});

describe('availability SLO, slow burn', () => {
  // 1000 requests every 10 s. Three days clean, then 25 hours at 0.3 % failures (3 of each 1000,
  // a 3× burn), then clean again. The indicator counts good requests here. Evaluated every 5 min.
  const BURN_START = 72 * H;
  const BURN_END = 97 * H;
  const rules = `
rules:
  - slo: checkout-availability
    objective: 99.9
    period: 30d
    good: { metric: checkout.ok }
    total: { metric: checkout.requests }
`;

  it('tickets after a day of burning, never pages, budget as computed, and resolves after recovery', () => {
    const h = harness(rules);
    const timeline = new Timeline();
    let budgetAtEnd = NaN;
    let burn3dAtEnd = NaN;
    for (let t = 0; t <= BURN_END + 5 * H; t += 10 * S) {
      const bad = t >= BURN_START && t < BURN_END ? 3 : 0;
      h.engine.observeMetric({ statsdName: 'checkout.requests', name: 'checkout_requests', labels: {}, type: 'c', value: 1000 }, t);
      h.engine.observeMetric({ statsdName: 'checkout.ok', name: 'checkout_ok', labels: {}, type: 'c', value: 1000 - bad }, t);
      if (t % (5 * M) === 0) {
        h.engine.evaluate(t);
        timeline.record(h, t);
        if (t === BURN_END) {
          const text = h.engine.metricsText();
          budgetAtEnd = sample(text, 'plumb_slo_error_budget_remaining{slo="checkout-availability"}')!;
          burn3dAtEnd = sample(text, 'plumb_slo_burn_rate{slo="checkout-availability",window="3d"}')!;
        }
      }
    }
    // 6h burns at 3× throughout (> 1, < 6: no page). 3d, d = now − 72h, x = d/10 s: errors 3(x+1)
    // over 25 920 batches of 1000: (x+1)/8640 > 1 ⇔ x ≥ 8640 ⇔ d ≥ 24h. At 23h55m, x+1 = 8611.
    expect(timeline.fired).toEqual({ ticket: [BURN_START + 24 * H] });

    // At 97h: 97·360 + 1 = 34 921 batches = 34 921 000 requests in the 30d period; 25h·360 = 9000
    // burning batches = 27 000 failures. 27 000 / 34 921 000 = 0.000773 of requests failed against
    // a budget of 0.001: 77.3 % spent, 22.7 % left.
    expect(budgetAtEnd).toBeCloseTo(1 - 27_000 / 34_921_000 / 0.001, 9);
    // The 3d window then holds 25 920 batches (give or take one at its edge) with all 27 000 failures.
    expect(burn3dAtEnd).toBeCloseTo(27_000 / 25_920_000 / 0.001, 3);

    // After the burn stops at 97h + e, the 6h window keeps the burning batches in (91h+e, 97h):
    // (21 600 − e)/10 − 1 of them, burning at count/720 — ≤ 1 from e ≈ 4h. At e = 3h55m: 749/720.
    expect(timeline.resolved).toEqual({ ticket: [BURN_END + 4 * H] });
  });
});

describe('latency SLO', () => {
  // 99 % of requests within 300 ms. Every 10 s a batch of 1000 timings: normally 990 at 100 ms and
  // 10 at 1000 ms (a 1× burn); from T = 2h, 500 at 100 ms and 500 at 1000 ms (50×).
  const T = 2 * H;
  const rules = `
rules:
  - slo: api-latency
    objective: 99
    period: 1d
    latency: { metric: http.request.duration, where: { service: api }, threshold: 300 }
    alerts:
      - { severity: page, long: 1h, short: 5m, burnRate: 14.4 }
`;

  function batch(slow: number) {
    const s = newSketch();
    if (slow < 1000) s.accept(100, 1000 - slow);
    if (slow > 0) s.accept(1000, slow);
    return s;
  }

  it('counts requests at or below the threshold from the sketches and pages on the computed evaluation', () => {
    const h = harness(rules);
    const firingAt: number[] = [];
    for (let t = 0; t <= T + 20 * M; t += 5 * S) {
      if (t % (10 * S) === 0) {
        h.engine.observeMetric({ statsdName: 'http.request.duration', name: 'http_request_duration', labels: { service: 'api', host: 'a' }, type: 'ms', sketch: batch(t >= T ? 500 : 10) }, t);
        h.engine.observeMetric({ statsdName: 'http.request.duration', name: 'http_request_duration', labels: { service: 'web', host: 'a' }, type: 'ms', sketch: batch(1000) }, t);
      }
      if (t % (15 * S) === 0) {
        h.engine.evaluate(t);
        if (h.engine.alertsJSON().data.alerts.some((a) => a.state === 'firing') && firingAt.length === 0) firingAt.push(t);
        if (t === T - 15 * S) expect(sample(h.engine.metricsText(), 'plumb_slo_burn_rate{slo="api-latency",window="1h"}')).toBeCloseTo(1, 9); // 10 of 1000 slow: exactly the budget
      }
    }
    // 1h window: 360 batches of 1000; slow ones 500(x+1) + 10(359 − x) with x = floor((now − T)/10 s).
    // Burn = slow/360 000/0.01 > 14.4 ⇔ 490x + 4090 > 51 840 ⇔ x ≥ 98: d ≥ 980 s, the evaluation at 990 s.
    // The 5m window is past 14.4 after the first slow batch (500+10·29 > 432).
    expect(firingAt).toEqual([T + 990 * S]);
  });
});
