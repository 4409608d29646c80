export { vigil, VigilGuard } from './guard.js';
export type { VigilOptions, ValidateOptions, ExpressLike } from './guard.js';
export { ConfigError, ManifestError, VigilStartupError } from './errors.js';
export { parseYaml } from './util/config.js';
export type { ConfigIssue } from './errors.js';
export { loadManifest, parseManifestText } from './manifest/load.js';
export type { LoadedManifest } from './manifest/load.js';
export { Manifest } from './manifest/schema.js';
export type { ManifestInput, Component, Endpoint, DependencyCheck, RouterSpec, Probe, Policy } from './manifest/schema.js';
export { hasRoute, listRoutes } from './startup/inventory.js';
export type { RouteEntry } from './startup/inventory.js';
export { routeTable, routeSnapshot, findUndocumented, formatRouteTable, RouteSnapshot } from './startup/route-table.js';
export type { RouteRow, RouteTable, UndocumentedFinding } from './startup/route-table.js';
export { diffRoutes, formatDiff, readSnapshot, SnapshotError } from './startup/route-diff.js';
export type { RouteDiff } from './startup/route-diff.js';
export { formatReport, reportToJSON } from './startup/report.js';
export type { StartupReport, ComponentReport, EndpointResult, HealthStatus } from './startup/report.js';
export type { RouterResult } from './startup/routers.js';
export type { CheckResult } from './startup/dependencies.js';
export type { HealthBody, HealthCheck, Phase } from './health/health-json.js';
export { VERSION } from './version.js';
export type { MonitorCheck, CheckOutcome, HealthLevel } from './monitor/types.js';
export type { Monitor } from './monitor/monitor.js';
/** `isProbe(req)`: the request came from this process's monitor (also `guard.isProbe`), for handlers and rate limiters' `skip`. */
export { isProbe } from './monitor/marker.js';
export type { FlowContext } from './manifest/schema.js';
export type { RecoveryAction } from './monitor/recovery.js';
export { startTelemetry } from './telemetry/otel.js';
/** For apps that start their own meter provider: gauges as last observed, so a `vigil.check.reason` leaves with its failure. */
export { gaugeTemporality } from './telemetry/otel.js';
/** For apps that start their own OpenTelemetry SDK: wrap the exporting span processor to censor credentials. */
export { RedactingSpanProcessor } from './telemetry/redact.js';
export type { Telemetry, TelemetryOptions } from './telemetry/otel.js';
export { createLogger } from './logger.js';
export { tokenMatches } from './health/access.js';
export { Duration, parseDuration, formatDuration } from './util/duration.js';
