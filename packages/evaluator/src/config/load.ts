import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, parseYaml } from '@vigil/sdk';
import { EvaluatorConfig } from './schema.js';

/** Reads and validates `evaluator.yaml`; a `ConfigError` names the file, the line, the path and the expectation. */
export async function loadConfig(file: string): Promise<EvaluatorConfig> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw new ConfigError(abs, [{ path: '', message: `cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})` }], 'evaluator config');
  }
  return parseYaml(text, abs, EvaluatorConfig, (f, issues) => new ConfigError(f, issues, 'evaluator config'));
}
