/**
 * Configuration of host metrics (`HostMetricsSchema`) and service checks (`ServiceChecksSchema`).
 * Both are closed sections: an unknown key is a start-up error. Cross-field rules the schema
 * cannot express (a URL for http checks, a valid regex, unique names) are checked by
 * `serviceCheckErrors`, which ServiceChecker runs before anything is probed.
 */
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Duration, Section } from '../../shared/config.ts';

/**
 * Filesystem types that are not disks: kernel interfaces, memory-backed and container-layer
 * filesystems, and read-only images that are always 100% full (squashfs for snaps).
 */
export const DEFAULT_EXCLUDE_FILESYSTEMS: readonly string[] = [
  'autofs',
  'binfmt_misc',
  'bpf',
  'cgroup',
  'cgroup2',
  'configfs',
  'debugfs',
  'devpts',
  'devtmpfs',
  'efivarfs',
  'fuse.lxcfs',
  'fuse.gvfsd-fuse',
  'fusectl',
  'hugetlbfs',
  'mqueue',
  'nsfs',
  'overlay',
  'proc',
  'pstore',
  'ramfs',
  'rpc_pipefs',
  'securityfs',
  'selinuxfs',
  'squashfs',
  'sysfs',
  'tmpfs',
  'tracefs',
];

/** Mount points below which mounts belong to the kernel or to containers, not to the host. */
export const DEFAULT_EXCLUDE_MOUNT_POINTS: readonly string[] = [
  '/proc/**',
  '/sys/**',
  '/dev/**',
  '/run/**',
  '/var/lib/docker/**',
  '/var/lib/containerd/**',
  '/var/lib/kubelet/pods/**',
  '/var/lib/kubelet/plugins/**',
];

/** Block devices that are not disks: loopback files, RAM disks, compressed swap in RAM. */
export const DEFAULT_EXCLUDE_DEVICES: readonly string[] = ['loop*', 'ram*', 'zram*'];

const Globs = (defaults: readonly string[], description: string) =>
  Type.Array(Type.String({ minLength: 1 }), { default: [...defaults], description });

export const HostMetricsSchema = Section({
  enabled: Type.Boolean({ default: true }),
  interval: Duration('10s', { description: 'how often host metrics are read' }),
  hostProc: Type.String({ minLength: 1, default: '/proc', description: "where the host's /proc is mounted (\"/host/proc\" in a container)" }),
  hostRoot: Type.Optional(Type.String({ minLength: 1, description: "where the host's / is mounted; prefixed to mount points before statfs" })),
  hostname: Type.Optional(Type.String({ minLength: 1, description: 'value of the host:<name> tag; read from the kernel when absent' })),
  perCpu: Type.Boolean({ default: false, description: 'also emit CPU percentages per core, tagged cpu:N' }),
  nodeExporter: Type.Boolean({
    default: true,
    description: "also emit cumulative counters and gauges under node_exporter's names and labels (node_cpu_seconds_total{cpu,mode}, node_network_receive_bytes_total{device}, node_filesystem_avail_bytes{device,mountpoint,fstype}, …), so rate() and node_exporter dashboards work",
  }),
  partitions: Type.Boolean({ default: false, description: 'report I/O of partitions as well as whole devices' }),
  excludeFilesystems: Type.Array(Type.String({ minLength: 1 }), {
    default: [...DEFAULT_EXCLUDE_FILESYSTEMS],
    description: 'filesystem types (exact names) left out of system.disk.*; setting it replaces the default list',
  }),
  excludeMountPoints: Globs(DEFAULT_EXCLUDE_MOUNT_POINTS, 'mount point globs left out of system.disk.*'),
  excludeDevices: Globs(DEFAULT_EXCLUDE_DEVICES, 'block device name globs left out of system.io.*'),
  excludeInterfaces: Globs(['lo'], 'network interface name globs left out of system.net.*'),
  statfsTimeout: Duration('5s', { description: 'longest wait for one mount; a hung network mount is skipped until it answers' }),
});

export type HostMetricsConfig = StaticDecode<typeof HostMetricsSchema>;

/** "200", 200 or "2xx". */
const StatusPattern = Type.Union([Type.Integer({ minimum: 100, maximum: 599 }), Type.String({ pattern: '^[1-5](\\d\\d|xx)$' })], {
  errorMessage: 'an HTTP status (200) or a class ("2xx")',
});

export const ServiceCheckSchema = Section(
  {
    name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.:/-]+$', errorMessage: 'a name of letters, digits and _ . : / -' }),
    type: Type.Union([Type.Literal('http'), Type.Literal('tcp')], { errorMessage: '"http" or "tcp"' }),
    /** http */
    url: Type.Optional(Type.String({ pattern: '^https?://', errorMessage: 'an http:// or https:// URL' })),
    method: Type.String({ default: 'GET', pattern: '^[A-Z]+$', errorMessage: 'an HTTP method in capitals' }),
    headers: Type.Record(Type.String(), Type.String(), { default: {} }),
    body: Type.Optional(Type.String({ description: 'request body to send' })),
    expectStatus: Type.Array(StatusPattern, { default: ['2xx', '3xx'], minItems: 1 }),
    bodyMatch: Type.Optional(Type.String({ minLength: 1, description: 'regular expression the first 64 KiB of the response must match' })),
    tlsVerify: Type.Boolean({ default: true }),
    certMinDays: Type.Optional(Type.Number({ minimum: 0, description: 'the check is down when the certificate expires sooner' })),
    /** tcp */
    host: Type.Optional(Type.String({ minLength: 1 })),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    /** both; default to the section's values */
    timeout: Type.Optional(Duration()),
    interval: Type.Optional(Duration()),
    tags: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
  },
  { optional: true },
);

export const ServiceChecksSchema = Section({
  interval: Duration('30s', { description: 'default interval of every check' }),
  timeout: Duration('5s', { description: 'default timeout of every check' }),
  maxChecks: Type.Integer({ minimum: 0, maximum: 1000, default: 50, description: 'most checks accepted; more is a configuration error' }),
  checks: Type.Array(ServiceCheckSchema, { default: [] }),
});

export type ServiceChecksConfig = StaticDecode<typeof ServiceChecksSchema>;
export type ServiceCheckConfig = StaticDecode<typeof ServiceCheckSchema>;

/**
 * Rules across keys, one message per problem, each naming its key path under `prefix`.
 * An empty list means the section is usable.
 */
export function serviceCheckErrors(config: ServiceChecksConfig, prefix = 'checks'): string[] {
  const errors: string[] = [];
  if (config.checks.length > config.maxChecks) {
    errors.push(`${prefix}.checks: ${config.checks.length} checks configured, more than maxChecks (${config.maxChecks}); raise ${prefix}.maxChecks or remove checks`);
  }
  const seen = new Set<string>();
  config.checks.forEach((c, i) => {
    const at = `${prefix}.checks[${i}]`;
    if (seen.has(c.name)) errors.push(`${at}.name: "${c.name}" is used by an earlier check; names must be unique`);
    seen.add(c.name);
    if (c.type === 'http') {
      if (c.url === undefined) errors.push(`${at}.url: required for an http check`);
      else if (!URL.canParse(c.url)) errors.push(`${at}.url: not a valid URL (got ${JSON.stringify(c.url)})`);
      if (c.host !== undefined || c.port !== undefined) errors.push(`${at}: host and port belong to tcp checks; put them in url`);
      if (c.bodyMatch !== undefined) {
        try {
          new RegExp(c.bodyMatch);
        } catch (err) {
          errors.push(`${at}.bodyMatch: not a valid regular expression (${(err as Error).message})`);
        }
      }
    } else {
      if (c.host === undefined) errors.push(`${at}.host: required for a tcp check`);
      if (c.port === undefined) errors.push(`${at}.port: required for a tcp check`);
      if (c.url !== undefined) errors.push(`${at}.url: belongs to http checks; use host and port`);
    }
    const interval = c.interval ?? config.interval;
    const timeout = c.timeout ?? config.timeout;
    if (interval <= 0) errors.push(`${at}.interval: must be longer than 0`);
    if (timeout <= 0) errors.push(`${at}.timeout: must be longer than 0`);
    else if (timeout > interval) errors.push(`${at}.timeout: ${timeout}ms is longer than the interval (${interval}ms); a check waits for its previous run, so make the timeout at most the interval`);
  });
  return errors;
}
