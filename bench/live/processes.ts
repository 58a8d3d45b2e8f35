/**
 * Process helpers of the live benchmark: stopping a child by PID, waiting with a deadline, and the real
 * Prometheus scraping one target on 127.0.0.1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatDuration } from '../../src/policy/duration.js';
import { freePort, PROMETHEUS_BIN } from '../../test/support/prometheus.js';

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed by a signal). */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return child.exitCode;
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    // Gone between the check and the signal.
  }
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }, graceMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

export function prometheusYaml(scrapeSeconds: number, plantPort: number): string {
  const timeout = Math.min(scrapeSeconds, 10);
  return `global:
  scrape_interval: ${formatDuration(scrapeSeconds)}
  evaluation_interval: ${formatDuration(scrapeSeconds)}
  scrape_timeout: ${formatDuration(timeout)}
scrape_configs:
  - job_name: plant
    static_configs:
      - targets: ['127.0.0.1:${plantPort}']
`;
}

/** Starts Prometheus on 127.0.0.1 scraping the plant; retries when the port was taken meanwhile. */
export async function startScrapingPrometheus(
  dir: string,
  scrapeSeconds: number,
  plantPort: number,
): Promise<{ url: string; child: ChildProcess }> {
  const config = join(dir, 'prometheus.yml');
  await writeFile(config, prometheusYaml(scrapeSeconds, plantPort));
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, `tsdb-${attempt}`)}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1d',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    try {
      await waitFor(
        'Prometheus to be ready',
        async () => {
          if (child.exitCode !== null || child.signalCode !== null)
            throw new Error(`prometheus exited:\n${stderr}`);
          try {
            const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
            return res.ok ? true : undefined;
          } catch {
            return undefined;
          }
        },
        30_000,
      );
      return { url, child };
    } catch (err) {
      await stopChild(child, 5000);
      if (attempt < 3 && /address already in use/.test(stderr)) continue;
      throw err;
    }
  }
}
