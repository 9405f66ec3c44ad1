/**
 * Fleet page (collector): the agents this collector hears from (host name, version, config
 * hash, last batch) and the collectors of the fleet with what each owns (alert rules by
 * rendezvous hashing, and this collector's share of the series).
 */
import { badge, esc, fmtAgo, fmtNumber, table, type Row } from '../html.ts';

export interface FleetAgent {
  hostname: string;
  version: string;
  configHash: string;
  instance: string;
  address: string;
  lastBatch: string;
  lastKind: string;
  batches: number;
}

/** GET /api/v1/fleet's body, as far as this page reads it. */
export interface FleetBody {
  fleet: boolean;
  self: string | null;
  members: string[];
  source?: string;
  lastRead?: string | null;
  lastError?: string | null;
  series?: { held: number; owned: number };
  forwarded?: Record<string, number>;
  agents: FleetAgent[];
}

/** GET /api/v1/fleet/rules' body, as far as this page reads it. */
export interface FleetRulesBody {
  down: { member: string; since: string }[];
  rules: { name: string; type: string; owner: string | null }[];
}

export interface FleetSource {
  fleet(): FleetBody;
  rules(): FleetRulesBody;
  /** An agent silent for longer than this is marked (ms): a few flush intervals. */
  staleAfterMs: number;
}

export function fleetPage(source: FleetSource, now = Date.now()): string {
  const f = source.fleet();
  const r = source.rules();
  const hashes = new Map<string, number>();
  for (const a of f.agents) hashes.set(a.configHash, (hashes.get(a.configHash) ?? 0) + 1);
  // the config most agents run; another one stands out
  const common = [...hashes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const agentRows: Row[] = f.agents.map((a) => {
    const silent = now - Date.parse(a.lastBatch) > source.staleAfterMs;
    return {
      cells: [
        `<strong>${esc(a.hostname || a.instance)}</strong>`,
        esc(a.version),
        `<code>${esc(a.configHash.slice(0, 12))}</code>${hashes.size > 1 && a.configHash !== common ? ` ${badge('differs', 'warn')}` : ''}`,
        `${fmtAgo(a.lastBatch, now)} <span class="muted">${esc(a.lastKind)}</span>${silent ? ` ${badge('silent', 'bad')}` : ''}`,
        esc(fmtNumber(a.batches)),
        `<span class="muted">${esc(a.address)}</span>`,
      ],
      mark: silent ? 'bad' : '',
      attrs: `data-agent="${esc(a.hostname)}"`,
    };
  });
  const agents = table(['agent', 'version', 'config', 'last batch', 'batches', 'from'], agentRows, 'No agent has sent a batch to this collector yet.', ' class="agents"');
  let collectors: string;
  if (!f.fleet) {
    collectors = `<p>This collector runs alone (no <code>collector.fleet</code>): it owns every series and every rule (${r.rules.length}).</p>`;
  } else {
    const down = new Set(r.down.map((d) => d.member));
    const rows: Row[] = f.members.map((m) => {
      const owned = r.rules.filter((x) => x.owner === m);
      const isSelf = m === f.self;
      return {
        cells: [
          `${esc(m)}${isSelf ? ` ${badge('this collector', 'muted')}` : ''}`,
          down.has(m) ? badge('down', 'bad') : badge('up', 'ok'),
          owned.length === 0 ? '<span class="muted">no rules</span>' : owned.map((x) => `<code>${esc(x.name)}</code>`).join(' '),
          isSelf && f.series !== undefined ? `${fmtNumber(f.series.owned)} owned of ${fmtNumber(f.series.held)} held` : '<span class="muted">its own page</span>',
        ],
        mark: down.has(m) ? 'bad' : '',
      };
    });
    collectors = `<p class="summary">Members from ${esc(f.source ?? 'config')}, read ${fmtAgo(f.lastRead ?? null, now)}${f.lastError ? ` ${badge('error', 'bad')} ${esc(f.lastError)}` : ''}</p>${table(['collector', 'state', 'alert rules it evaluates', 'series'], rows, 'The member list is empty.', ' class="collectors"')}`;
  }
  return `<h1>Fleet</h1><h2>Agents</h2>${agents}<h2>Collectors</h2>${collectors}`;
}
