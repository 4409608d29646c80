#!/usr/bin/env node
/**
 * `vigil-evaluator --config evaluator.yaml`: runs the evaluator until SIGTERM or
 * SIGINT. `--check` only validates the config. Exit 0, or 2 on a bad config or
 * usage, 1 when it cannot start (e.g. the port is taken).
 */
import { parseArgs } from 'node:util';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME } from '@vigil/sdk/semconv';
import { ConfigError, createLogger, startTelemetry } from '@vigil/sdk';
import { randomUUID } from 'node:crypto';
import { loadConfig } from './config/load.js';
import { Evaluator } from './evaluator.js';

const USAGE = `Usage: vigil-evaluator --config evaluator.yaml [--check]

Reads Vigil's telemetry (its own OTLP/HTTP receiver, or PromQL over Prometheus),
applies the impact rules and alert policies of the config, and sends alerts to
its notifiers (Alertmanager, webhooks, the console).

  --config FILE  the evaluator config (default: evaluator.yaml)
  --check        validate the config and exit
  --port N       override server.port

Exit codes: 0 ok, 1 could not start, 2 bad config or usage.`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ options: { config: { type: 'string', default: 'evaluator.yaml' }, check: { type: 'boolean', default: false }, port: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let config;
  try {
    config = await loadConfig(values.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (values.check) {
    process.stdout.write(`${values.config}: valid (${config.rules.length} rules, ${Object.keys(config.notifiers).length} notifiers, source ${config.source.type})\n`);
    return 0;
  }
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`--port: expected a port number from 0 to 65535, got "${values.port}"\n`);
      return 2;
    }
    config.server.port = port;
  }
  const logger = createLogger(process.env).child({ module: 'vigil-evaluator' });
  const telemetry = await startTelemetry({
    resource: { [ATTR_SERVICE_NAME]: 'vigil-evaluator', [ATTR_SERVICE_INSTANCE_ID]: randomUUID() },
    exportIntervalMs: 10_000,
    env: process.env,
    logger,
  });
  const evaluator = new Evaluator(config, { logger, meter: telemetry.meter });
  let started;
  try {
    started = await evaluator.start();
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'the evaluator could not start');
    return 1;
  }
  logger.info({ url: started.url, source: config.source.type }, `vigil-evaluator listening on ${started.url}`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  logger.info('stopping: delivering what is queued');
  await evaluator.stop(5000);
  await telemetry.shutdown(5000);
  return 0;
}

process.exitCode = await main();
