/** Runs an evaluator in this process for a test, on a free 127.0.0.1 port. */
import { pino } from 'pino';
import { Evaluator } from '../../packages/evaluator/src/evaluator.js';
import { EvaluatorConfig, type EvaluatorConfigInput } from '../../packages/evaluator/src/config/schema.js';

export interface RunningEvaluator {
  evaluator: Evaluator;
  url: string;
  otlpMetricsUrl: string;
  stop(): Promise<void>;
}

export async function startEvaluator(input: EvaluatorConfigInput): Promise<RunningEvaluator> {
  const config = EvaluatorConfig.parse({ ...input, server: { ...input.server, host: '127.0.0.1', port: 0 } });
  const evaluator = new Evaluator(config, { logger: pino({ level: process.env.VIGIL_TEST_LOG ?? 'silent' }) });
  const { url } = await evaluator.start();
  return { evaluator, url, otlpMetricsUrl: `${url}/v1/metrics`, stop: () => evaluator.stop(2000) };
}

/** The example's evaluator.yaml as an object, with overrides (sources, notifiers, timings) for a test. */
export async function exampleEvaluatorConfig(overrides: Partial<EvaluatorConfigInput>): Promise<EvaluatorConfigInput> {
  const { readFile } = await import('node:fs/promises');
  const { parse } = await import('yaml');
  const { REPO_ROOT } = await import('./rig.js');
  const base = parse(await readFile(`${REPO_ROOT}/examples/marketedge-api/evaluator.yaml`, 'utf8')) as EvaluatorConfigInput;
  return { ...base, ...overrides };
}
