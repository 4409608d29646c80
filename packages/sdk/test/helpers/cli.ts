/** Runs the `vigil` command (its TypeScript source, through tsx) as a child process. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const TSX = import.meta.resolve('tsx');
const CLI = fileURLToPath(new URL('../../src/cli/vigil.ts', import.meta.url));

/** Runs `vigil …` in `cwd`; resolves with the exit code and output, never rejects. */
export function runVigil(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', TSX, CLI, ...args], { cwd, env: { ...process.env, ...env }, timeout: 30_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
