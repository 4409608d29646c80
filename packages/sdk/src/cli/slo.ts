/**
 * `vigil slo`: the manifest's SLOs as Prometheus rules, their promtool tests, or
 * OpenSLO. Reads the manifest only: no router is imported, nothing is started.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT_INVALID_MANIFEST, ManifestError } from '../errors.js';
import { readManifestText } from '../manifest/load.js';
import { renderOpenSlo } from '../slo/openslo.js';
import { renderPrometheusRules, renderPromtoolTests } from '../slo/prometheus.js';
import { sloList } from '../slo/model.js';

export const SLO_USAGE = `Usage: vigil slo [--manifest vigil.yaml] [--format prometheus|promtool-tests|openslo] [--out FILE] [--rules FILE]

Generates, from the endpoints' and flows' \`slo\` in the manifest:
  prometheus      recording rules (error ratio over 5m, 30m, 1h, 2h, 6h, 1d, 3d and the
                  whole window) and multi-window, multi-burn-rate alerts (default)
  promtool-tests  \`promtool test rules\` tests of those rules: a fast burn that pages,
                  a slow burn that opens a ticket, a healthy series that stays silent
  openslo         OpenSLO v1 documents (apiVersion: openslo/v1, kind: SLO)

  --out FILE    write there instead of stdout
  --rules FILE  promtool-tests: the rules file the tests load, relative to the test
                file (default: <service>.rules.yml)

Exit codes: 0 written, 2 bad manifest or usage, or no SLO declared.`;

const FORMATS = ['prometheus', 'promtool-tests', 'openslo'] as const;

export async function slo(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        manifest: { type: 'string' },
        format: { type: 'string', default: 'prometheus' },
        out: { type: 'string' },
        rules: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${SLO_USAGE}\n`);
    return EXIT_INVALID_MANIFEST;
  }
  if (values.help) {
    process.stdout.write(`${SLO_USAGE}\n`);
    return 0;
  }
  const format = values.format as (typeof FORMATS)[number];
  if (!FORMATS.includes(format)) {
    process.stderr.write(`--format: expected one of ${FORMATS.join(', ')}, got ${JSON.stringify(values.format)}\n`);
    return EXIT_INVALID_MANIFEST;
  }
  const file = path.resolve(values.manifest ?? 'vigil.yaml');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    process.stderr.write(`${new ManifestError(file, [{ path: '', message: `cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})` }]).message}\n`);
    return EXIT_INVALID_MANIFEST;
  }
  let output: string;
  try {
    const manifest = await readManifestText(text, file); // with its OpenAPI document's x-vigil-slo
    const slos = sloList(manifest);
    if (slos.length === 0) {
      process.stderr.write(`${file}: no endpoint or flow declares an "slo" (e.g. slo: { availability: 99.9% }): nothing to generate\n`);
      return EXIT_INVALID_MANIFEST;
    }
    output =
      format === 'openslo' ? renderOpenSlo(slos)
      : format === 'promtool-tests' ? renderPromtoolTests(slos, values.rules ?? `${manifest.service}.rules.yml`)
      : renderPrometheusRules(slos);
  } catch (err) {
    process.stderr.write(`${err instanceof ManifestError ? err.message : `vigil slo: ${(err as Error).message}`}\n`);
    return EXIT_INVALID_MANIFEST;
  }
  if (values.out) await writeFile(values.out, output);
  else process.stdout.write(output);
  return 0;
}
