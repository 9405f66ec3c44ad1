/**
 * A JSON webhook receiver for alert notifications: records every delivery with the time it
 * arrived, so a test can count notifications (exactly once) and see when an alert fired.
 */
import { createServer, type Server } from 'node:http';

export interface WebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  startsAt: string;
  /** Names the sender when collectors are given distinct alerts.externalUrl. */
  generatorURL: string;
}

export interface WebhookDelivery {
  /** Date.now() when the request arrived. */
  at: number;
  /** The collector's URL path and headers are not kept; the body's alerts are. */
  alerts: WebhookAlert[];
}

export interface WebhookServer {
  url: string;
  readonly deliveries: WebhookDelivery[];
  /** Deliveries of `status` notices of `alertname`, one entry per alert. */
  notices(alertname: string, status: 'firing' | 'resolved'): { at: number; alert: WebhookAlert }[];
  stop(): Promise<void>;
}

export async function startWebhookServer(): Promise<WebhookServer> {
  const deliveries: WebhookDelivery[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { alerts?: WebhookAlert[] };
        deliveries.push({ at: Date.now(), alerts: body.alerts ?? [] });
        res.writeHead(200).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    deliveries,
    notices(alertname, status) {
      return deliveries.flatMap((d) => d.alerts.filter((a) => a.labels.alertname === alertname && a.status === status).map((alert) => ({ at: d.at, alert })));
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
