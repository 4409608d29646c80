/**
 * Runs a benchmark of bench/ in its --quick version, the way `npm run bench`
 * would, writing its result document to a temporary directory, and checks the
 * shape every result document shares.
 */
import { execFile, type ExecFileOptions } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { REPO_ROOT } from './rig.js';

const run = promisify(execFile);

export interface QuickBenchOptions {
  /** Prefix of the temporary directory the result document is written to. */
  tmpPrefix: string;
  /** Kill the benchmark after this long. */
  timeout: number;
  env?: NodeJS.ProcessEnv;
  maxBuffer?: number;
}

/**
 * `node bench/<name>.mjs --quick --out <tmp>/<name>.json` from the repository root:
 * the parsed result document and what the benchmark wrote to stderr. The directory is removed afterwards.
 */
export async function runQuickBench(name: string, o: QuickBenchOptions): Promise<{ doc: any; stderr: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), o.tmpPrefix));
  try {
    const out = path.join(dir, `${name}.json`);
    const options: ExecFileOptions = { cwd: REPO_ROOT, timeout: o.timeout };
    if (o.env) options.env = o.env;
    if (o.maxBuffer) options.maxBuffer = o.maxBuffer;
    const { stderr } = await run(process.execPath, [path.join(REPO_ROOT, `bench/${name}.mjs`), '--quick', '--out', out], { ...options, encoding: 'utf8' });
    return { doc: JSON.parse(await readFile(out, 'utf8')), stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The shared bench shape: its name, a title, this Node.js, and rows of a metric, a unit and a finite value (and baseline). */
export function expectBenchDoc(doc: any, name: string): void {
  expect(doc.name).to.equal(name);
  expect(doc.title).to.be.a('string');
  expect(doc.environment.node).to.equal(process.version);
  expect(doc.rows).to.be.an('array').that.is.not.empty;
  for (const row of doc.rows) {
    expect(row.metric, JSON.stringify(row)).to.be.a('string');
    expect(row.unit, row.metric).to.be.a('string');
    expect(Number.isFinite(row.value), row.metric).to.equal(true);
    if ('baseline' in row) expect(Number.isFinite(row.baseline), row.metric).to.equal(true);
  }
}
