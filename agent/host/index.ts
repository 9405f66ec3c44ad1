/** Host metrics and service checks: what the agent's wiring needs. */
export { HostCollector, type HostContext } from './collector.ts';
export type { HostSample } from './sample.ts';
export { ServiceChecker, checkSamples, serviceCheckStatuses, CHECK_OK, CHECK_CRITICAL, type CheckResult, type CheckContext } from './checks.ts';
export {
  HostMetricsSchema,
  ServiceChecksSchema,
  ServiceCheckSchema,
  serviceCheckErrors,
  DEFAULT_EXCLUDE_FILESYSTEMS,
  DEFAULT_EXCLUDE_MOUNT_POINTS,
  DEFAULT_EXCLUDE_DEVICES,
  type HostMetricsConfig,
  type ServiceChecksConfig,
  type ServiceCheckConfig,
} from './config.ts';
export { resolveHostname } from './hostname.ts';
