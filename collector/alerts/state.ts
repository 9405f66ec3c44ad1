/**
 * The life of an alert, with Prometheus' semantics so operators meet no surprises:
 *
 *   inactive ──condition true──▶ pending ──true for `for`──▶ firing ──false──▶ resolved
 *                                   │                          ▲   (after keepFiringFor)
 *                                   └──false: forgotten        └── true again: firing resets keepFiringFor
 *
 * A pending alert whose condition turns false is dropped, so flapping shorter than `for` never
 * fires. `for: 0` fires on the first evaluation. A resolved alert is kept for 15 minutes so its
 * resolution reaches Alertmanager even through a few failed sends; if the condition comes back
 * meanwhile it starts again as a new pending alert.
 */
import { seriesId } from './store.ts';

export type AlertState = 'pending' | 'firing' | 'inactive';

export interface Alert {
  /** Identity: the alert's final labels. */
  readonly key: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: AlertState;
  /** Undefined when the alert is about missing data. */
  value: number | undefined;
  activeAt: number;
  firedAt: number | undefined;
  resolvedAt: number | undefined;
  keepFiringSince: number | undefined;
  lastSentAt: number;
  /** endsAt given to Alertmanager while firing: it expires the alert if we fall silent. */
  validUntil: number;
}

/** One group that meets the rule's condition in this evaluation. */
export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number | undefined;
}

export interface Rendered {
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface Transition {
  readonly alert: Alert;
  readonly to: 'firing' | 'resolved';
}

/** Caps alerts across all rules; a refused alert is counted, never fatal. */
export class AlertBudget {
  readonly max: number;
  used = 0;
  refused = 0;
  /** Called on each refusal (the engine counts it in a metric). */
  onRefused: () => void = () => {};
  constructor(max: number) {
    this.max = max;
  }
}

export const RESOLVED_RETENTION = 15 * 60_000;

export class AlertSet {
  readonly alerts = new Map<string, Alert>();
  private readonly budget: AlertBudget;

  constructor(budget: AlertBudget) {
    this.budget = budget;
  }

  /**
   * Advances every alert of one rule to time `now`, given the groups meeting its condition.
   * Returns the alerts that started firing or resolved in this step.
   */
  update(now: number, samples: readonly Sample[], hold: number, keepFiringFor: number, render: (s: Sample) => Rendered): Transition[] {
    const transitions: Transition[] = [];
    const seen = new Set<string>();
    for (const s of samples) {
      const r = render(s);
      const key = seriesId(r.labels);
      seen.add(key);
      const existing = this.alerts.get(key);
      if (existing !== undefined && existing.state !== 'inactive') {
        existing.value = s.value;
        existing.labels = r.labels;
        existing.annotations = r.annotations;
        existing.keepFiringSince = undefined;
        continue;
      }
      if (existing === undefined) {
        if (this.budget.used >= this.budget.max) {
          this.budget.refused++;
          this.budget.onRefused();
          continue;
        }
        this.budget.used++;
      }
      this.alerts.set(key, {
        key,
        labels: r.labels,
        annotations: r.annotations,
        state: 'pending',
        value: s.value,
        activeAt: now,
        firedAt: undefined,
        resolvedAt: undefined,
        keepFiringSince: undefined,
        lastSentAt: -Infinity,
        validUntil: now,
      });
    }

    for (const [key, a] of this.alerts) {
      if (!seen.has(key)) {
        let keepFiring = false;
        if (a.state === 'firing' && keepFiringFor > 0) {
          a.keepFiringSince ??= now;
          keepFiring = now - a.keepFiringSince < keepFiringFor;
        }
        if (keepFiring) continue;
        if (a.state === 'pending' || (a.state === 'inactive' && a.resolvedAt !== undefined && now - a.resolvedAt > RESOLVED_RETENTION)) {
          this.alerts.delete(key);
          this.budget.used--;
          continue;
        }
        if (a.state === 'firing') {
          a.state = 'inactive';
          a.resolvedAt = now;
          transitions.push({ alert: a, to: 'resolved' });
        }
        continue;
      }
      if (a.state === 'pending' && now - a.activeAt >= hold) {
        a.state = 'firing';
        a.firedAt = now;
        transitions.push({ alert: a, to: 'firing' });
      }
    }
    return transitions;
  }

  /** Firing and freshly resolved alerts due for (re)sending to Alertmanager; marks them sent. */
  due(now: number, resendInterval: number, validFor: number): Alert[] {
    const out: Alert[] = [];
    for (const a of this.alerts.values()) {
      if (a.state === 'pending') continue;
      const resolvedSinceSent = a.resolvedAt !== undefined && a.resolvedAt > a.lastSentAt;
      if (!resolvedSinceSent && a.lastSentAt + resendInterval > now) continue;
      a.lastSentAt = now;
      if (a.state === 'firing') a.validUntil = now + validFor;
      out.push(a);
    }
    return out;
  }

  /** Hands alerts over from a rule that was reloaded unchanged. */
  adopt(from: AlertSet): void {
    for (const [k, a] of from.alerts) this.alerts.set(k, a);
    from.alerts.clear();
  }

  /** Replaces the alerts with saved ones (a restart, a takeover); alerts over the budget are refused and counted. */
  restore(alerts: Iterable<Alert>): void {
    this.dispose();
    for (const a of alerts) {
      if (this.budget.used >= this.budget.max) {
        this.budget.refused++;
        this.budget.onRefused();
        continue;
      }
      this.budget.used++;
      this.alerts.set(a.key, a);
    }
  }

  /** Gives back the budget of every alert (the rule was removed). */
  dispose(): void {
    this.budget.used -= this.alerts.size;
    this.alerts.clear();
  }
}
