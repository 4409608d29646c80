import type { StartupReport } from './startup/report.js';

/** The exit code of an app (from `vigil()`) and of `vigil preflight` whose manifest is invalid. */
export const EXIT_INVALID_MANIFEST = 2;

/** `VIGIL_DEBUG=1` (or `true`): errors Vigil reports in one message also print their stack. */
export function debugging(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.VIGIL_DEBUG === '1' || env.VIGIL_DEBUG === 'true';
}

/** One problem in a manifest: where it is and what was expected. */
export interface ConfigIssue {
  /** Dotted path inside the file, e.g. `components.admin.policy`. */
  path: string;
  message: string;
  /** 1-based position in the file, when the input was a file. */
  line?: number;
  column?: number;
}

/** A config file could not be read or does not match its schema. Names the file, the path and the expectation. */
export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
  constructor(
    readonly file: string,
    readonly issues: ConfigIssue[],
    /** What kind of file it is, for the message: `Vigil manifest`, `evaluator config`. */
    kind = 'config',
  ) {
    super(
      `Invalid ${kind} ${file}:\n` +
        issues
          .map((i) => `  ✖ ${i.line ? `${file}:${i.line}:${i.column ?? 1} ` : ''}${i.path || '(root)'}: ${i.message}`)
          .join('\n'),
    );
  }
}

/** The manifest could not be read or does not match the schema. */
export class ManifestError extends ConfigError {
  override readonly name = 'ManifestError';
  constructor(file: string, issues: ConfigIssue[]) {
    super(file, issues, 'Vigil manifest');
  }
}

/**
 * A fail-fast component failed startup validation. Thrown by `guard.validate()`
 * after the evidence has been exported, so the process can exit non-zero without
 * losing why.
 */
export class VigilStartupError extends Error {
  override readonly name = 'VigilStartupError';
  constructor(readonly report: StartupReport) {
    const failing = report.components.filter((c) => c.status === 'fail');
    // The reasons come along, so that the one message an app prints when it refuses to start says why.
    const why = failing.flatMap((c) => c.reasons.map((r) => `\n  ${c.name}: ${r.replace(/\n/g, '\n    ')}`));
    super(`Vigil startup validation failed: fail-fast component(s) ${failing.map((c) => c.name).join(', ')} failed${why.join('')}`);
  }
}
