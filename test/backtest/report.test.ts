import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  breachIntervals,
  escapeHtml,
  jsonForScript,
  REPORT_COLORS,
  renderHtmlReport,
} from '../../src/backtest/report.js';
import type { BacktestPoint, BacktestResult, SignalFit } from '../../src/backtest/types.js';
import type { SignalName } from '../../src/core/types.js';
import { chromiumLaunchOptions, chromiumMissing, countColor, decodePng, hexRgb } from '../support/browser.js';

// ---------- fixtures ----------

const STEP = 30;
const DAY_START = Date.UTC(2026, 10, 25) / 1000;

/** Deterministic noise in [-1, 1): the fixtures must be the same on every run. */
function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

interface PlantOptions {
  readonly from: number;
  readonly steps: number;
  /** Mirrored rate at which CPU reaches its guardrail. */
  readonly capacityRps: number;
  readonly production: (hourOfDay: number) => number;
  readonly actualPercent: (hourOfDay: number) => number;
  /** Steps [start, end) with no history at all. */
  readonly gap?: readonly [number, number];
}

/**
 * A replay shaped like the real one: diurnal production traffic, a controller that raises toward 85 % of
 * capacity, holds above 70 %, and cuts by 30 % three steps after the model starts breaching (the rate
 * window's lag).
 */
function replay(o: PlantOptions): BacktestPoint[] {
  const rnd = noise(7);
  const points: BacktestPoint[] = [];
  let pct = o.actualPercent(0);
  let over = 0;
  let lastChange = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < o.steps; i++) {
    const t = o.from + i * STEP;
    const hour = ((t - DAY_START) / 3600) % 24;
    const inGap = o.gap !== undefined && i >= o.gap[0] && i < o.gap[1];
    if (inGap) {
      points.push({
        t,
        productionRps: null,
        actualPercent: null,
        wouldBePercent: pct,
        actualMirroredRps: null,
        wouldBeMirroredRps: null,
        predicted: {},
        breaches: [],
        action: 'hold',
        reason: 'NoData',
      });
      continue;
    }
    const prod = o.production(hour) * (1 + 0.03 * rnd());
    const actual = o.actualPercent(hour);
    const inEffect = pct;
    const wbRps = (prod * inEffect) / 100;
    const cpu = 0.08 + (0.72 / o.capacityRps) * wbRps;
    const breaches: SignalName[] = wbRps > o.capacityRps ? ['cpuUtilization'] : [];
    if (wbRps > 1.3 * o.capacityRps) breaches.push('latencyP99Ms');
    over = breaches.length > 0 ? over + 1 : 0;
    let action: BacktestPoint['action'] = 'hold';
    let reason: BacktestPoint['reason'] = 'WithinTolerance';
    if (over >= 3) {
      pct = Math.round(pct * 70) / 100;
      action = 'decrease';
      reason = 'GuardrailBreached';
      over = 0;
      lastChange = t;
    } else if (over === 0 && t - lastChange >= 300 && wbRps < 0.7 * o.capacityRps) {
      const target = (inEffect * 0.85 * o.capacityRps) / Math.max(wbRps, 1e-9);
      const next = Math.min(100, Math.round(Math.min(inEffect * 1.5 + 1, target) * 100) / 100);
      if (next - inEffect >= 0.1) {
        pct = next;
        action = 'increase';
        reason = 'Headroom';
        lastChange = t;
      }
    } else if (over === 0 && t - lastChange < 300) {
      reason = 'Settling';
    }
    points.push({
      t,
      productionRps: prod,
      actualPercent: actual,
      wouldBePercent: pct,
      actualMirroredRps: (prod * actual) / 100,
      wouldBeMirroredRps: (prod * pct) / 100,
      predicted: { cpuUtilization: cpu },
      breaches,
      action,
      reason,
    });
  }
  return points;
}

function summarise(points: readonly BacktestPoint[], capacityRps: number): BacktestResult['summary'] {
  let actualMirrored = 0;
  let wouldBeMirrored = 0;
  let est = 0;
  let act = 0;
  for (const p of points) {
    actualMirrored += (p.actualMirroredRps ?? 0) * STEP;
    wouldBeMirrored += (p.wouldBeMirroredRps ?? 0) * STEP;
    if (p.breaches.length > 0) est += STEP;
    if ((p.actualMirroredRps ?? 0) > capacityRps) act += STEP;
  }
  const decreases = points.filter((p) => p.action === 'decrease').length;
  const increases = points.filter((p) => p.action === 'increase').length;
  return {
    writes: decreases + increases,
    estimatedBreachSeconds: est,
    actualBreachSeconds: act,
    actualMirroredRequests: actualMirrored,
    wouldBeMirroredRequests: wouldBeMirrored,
    decreases,
    increases,
  };
}

function signalFit(signal: SignalName, over: Partial<SignalFit> = {}): SignalFit {
  const base: Record<SignalName, SignalFit> = {
    cpuUtilization: {
      signal,
      limit: 0.8,
      intercept: 0.08,
      slope: 0.012,
      r2: 0.94,
      points: 2790,
      rpsRange: [7.4, 84.1],
      capacityRps: 60,
      trusted: true,
    },
    latencyP99Ms: {
      signal,
      limit: 400,
      intercept: 120,
      slope: 2.1,
      r2: 0.81,
      points: 2790,
      rpsRange: [7.4, 84.1],
      capacityRps: 133.3,
      trusted: true,
    },
    errorRate: {
      signal,
      limit: 0.02,
      intercept: 0.001,
      slope: 0.00002,
      r2: 0.71,
      points: 2790,
      rpsRange: [7.4, 84.1],
      capacityRps: 950,
      trusted: true,
    },
  };
  return { ...base[signal], ...over };
}

/** A day at 30 s steps: production peaks at 14:00, someone raised the mirror from 5 % to 8 % at 09:00. */
function realisticDay(): BacktestResult {
  const capacityRps = 60;
  const points = replay({
    from: DAY_START,
    steps: 2880,
    capacityRps,
    production: (h) => 350 + 700 * (0.5 - 0.5 * Math.cos((2 * Math.PI * (h - 2)) / 24)),
    actualPercent: (h) => (h < 9 ? 5 : 8),
  });
  return {
    policy: 'checkout',
    route: 'VirtualService shop/checkout',
    from: DAY_START,
    to: DAY_START + 2879 * STEP,
    stepSeconds: STEP,
    percentSource: 'metric',
    fits: [signalFit('cpuUtilization'), signalFit('errorRate'), signalFit('latencyP99Ms')],
    capacityRps,
    points,
    summary: summarise(points, capacityRps),
    warnings: [],
  };
}

const GAP: readonly [number, number] = [240, 360];

/** Six hours with an hour of missing history and a latency fit too poor to trust. */
function gappyWithUntrustedFit(): BacktestResult {
  const capacityRps = 40;
  const points = replay({
    from: DAY_START,
    steps: 720,
    capacityRps,
    production: () => 300,
    actualPercent: () => 6,
    gap: GAP,
  });
  return {
    policy: 'search',
    route: 'VirtualService shop/search',
    from: DAY_START,
    to: DAY_START + 719 * STEP,
    stepSeconds: STEP,
    percentSource: 'assumed',
    fits: [
      signalFit('cpuUtilization', { capacityRps: 40, slope: 0.018 }),
      signalFit('latencyP99Ms', {
        r2: 0.04,
        rpsRange: [23.8, 24.3],
        trusted: false,
        why: 'too little variation in the mirrored rate (23.8–24.3 rps)',
      }),
    ],
    capacityRps,
    points,
    summary: summarise(points, capacityRps),
    warnings: [
      'The latencyP99Ms fit is too poor to trust: too little variation in the mirrored rate.',
      'No data from 02:00 to 03:00 UTC (120 steps): the controller held.',
    ],
  };
}

const HOSTILE_POLICY = '</script><script>alert(1)</script>';
const HOSTILE_VS = 'shop/"><img src=x onerror=alert(2)>';
const HOSTILE_WARNING = 'Warning with <b>markup</b> & </style><script>alert(3)</script> \u2028 end';

function hostile(): BacktestResult {
  const base = gappyWithUntrustedFit();
  return {
    ...base,
    policy: HOSTILE_POLICY,
    route: HOSTILE_VS,
    fits: base.fits.map((f) => (f.trusted ? f : { ...f, why: '</script><script>alert(4)</script>' })),
    points: base.points.slice(0, 60),
    warnings: [HOSTILE_WARNING],
  };
}

// ---------- helpers ----------

function embeddedData(html: string): Record<string, unknown> {
  const m = /<script type="application\/json" id="backtest-data">([^<]*)<\/script>/.exec(html);
  if (m?.[1] === undefined) throw new Error('no backtest-data block in the report');
  const parsed: unknown = JSON.parse(m[1]);
  if (typeof parsed !== 'object' || parsed === null) throw new Error('backtest-data is not an object');
  return parsed as Record<string, unknown>;
}

function inlineScripts(html: string): string[] {
  return [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1] ?? '');
}

// ---------- unit tests ----------

describe('renderHtmlReport: the HTML', () => {
  const day = realisticDay();
  const dayHtml = renderHtmlReport(day);

  it('fixture sanity: the realistic day has cuts, raises and estimated breaches', () => {
    expect(day.summary.decreases).toBeGreaterThan(0);
    expect(day.summary.increases).toBeGreaterThan(0);
    expect(day.summary.estimatedBreachSeconds).toBeGreaterThan(0);
  });

  it.each([
    { name: 'realistic day', result: day },
    { name: 'gaps and an untrusted fit', result: gappyWithUntrustedFit() },
    { name: 'hostile names', result: hostile() },
  ])('$name: loads nothing from the network', ({ result }) => {
    const html = renderHtmlReport(result);
    expect(html).not.toMatch(/\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/<script[^>]*\bsrc\s*=/i);
    expect(html).not.toMatch(/url\(\s*["']?\s*(?:https?:)?\/\//i);
    expect(html).not.toMatch(/@import/i);
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(html)?.[1];
    expect(csp).toBeDefined();
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'none'");
    expect(csp).not.toMatch(/script-src[^;]*'unsafe-inline'/);
  });

  it('allows exactly its own inline scripts, by hash', () => {
    const csp = /content="([^"]*script-src[^"]*)"/.exec(dayHtml)?.[1] ?? '';
    const allowed = [...csp.matchAll(/'sha256-([^']+)'/g)].map((m) => m[1]).sort();
    const actual = inlineScripts(dayHtml)
      .map((s) => createHash('sha256').update(s, 'utf8').digest('base64'))
      .sort();
    expect(actual).toHaveLength(2);
    expect(allowed).toEqual(actual);
  });

  it('embeds the points as columns that round-trip', () => {
    const data = embeddedData(dayHtml);
    expect(data.t).toEqual(day.points.map((p) => p.t));
    expect(data.wouldBePercent).toEqual(day.points.map((p) => p.wouldBePercent));
    expect(data.actualPercent).toEqual(day.points.map((p) => p.actualPercent));
    const prod = data.productionRps as number[];
    day.points.forEach((p, i) => {
      expect(prod[i]).toBeCloseTo(p.productionRps ?? Number.NaN, 2);
    });
    expect(data.summary).toEqual(day.summary);
    expect(data.breaches).toEqual(breachIntervals(day.points, STEP));
  });

  it('keeps gaps as nulls', () => {
    const r = gappyWithUntrustedFit();
    const data = embeddedData(renderHtmlReport(r));
    const actual = data.actualPercent as (number | null)[];
    const wouldBeRps = data.wouldBeMirroredRps as (number | null)[];
    expect(actual.slice(GAP[0], GAP[1]).every((v) => v === null)).toBe(true);
    expect(wouldBeRps.slice(GAP[0], GAP[1]).every((v) => v === null)).toBe(true);
    expect(actual[GAP[0] - 1]).toBe(6);
    expect(actual[GAP[1]]).toBe(6);
  });

  it('keeps a hostile policy name as text and as data', () => {
    const r = hostile();
    const html = renderHtmlReport(r);
    // Exactly the three blocks the report writes: the JSON, uPlot and the page script.
    expect(html.match(/<script\b/gi)).toHaveLength(3);
    expect(html.match(/<\/script/gi)).toHaveLength(3);
    expect(html.match(/<\/style/gi)).toHaveLength(2);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>markup');
    expect(html).toContain(escapeHtml(HOSTILE_POLICY));
    const data = embeddedData(html);
    expect(data.policy).toBe(HOSTILE_POLICY);
    expect(data.route).toBe(HOSTILE_VS);
    expect(data.warnings).toEqual([HOSTILE_WARNING]);
  });

  it('puts the warnings first and flags untrusted fits', () => {
    const r = gappyWithUntrustedFit();
    const html = renderHtmlReport(r);
    const at = (needle: string) => html.indexOf(needle);
    expect(at('id="warnings"')).toBeGreaterThan(0);
    expect(at('id="warnings"')).toBeLessThan(at('id="summary"'));
    expect(at('id="summary"')).toBeLessThan(at('id="chart-percent"'));
    expect(html).toContain('The fit is too poor to trust');
    expect(html.match(/<tr class="untrusted">/g)).toHaveLength(1);
    expect(html.match(/<tr class="trusted">/g)).toHaveLength(1);
    expect(html).toContain('NOT TRUSTED');
    expect(html).toContain(escapeHtml('too little variation in the mirrored rate (23.8–24.3 rps)'));
    for (const w of r.warnings) expect(html).toContain(escapeHtml(w));
    expect(html).toContain('assumed constant');
  });

  it('has no warnings section when there is nothing to warn about', () => {
    expect(dayHtml).not.toContain('id="warnings"');
    expect(dayHtml).not.toContain('too poor to trust');
  });

  it('writes the headline numbers as text', () => {
    const s = day.summary;
    expect(dayHtml).toContain(`<h1>Backtest of checkout on VirtualService shop/checkout</h1>`);
    expect(dayHtml).toContain('2026-11-25 00:00 UTC – 2026-11-25 23:59 UTC');
    expect(dayHtml).toContain(`>${s.writes}</div>`);
    expect(dayHtml).toContain(`${Math.round(s.wouldBeMirroredRequests).toLocaleString('en-US')} would-be`);
    expect(dayHtml).toContain(`vs ${Math.round(s.actualMirroredRequests).toLocaleString('en-US')} actual`);
    expect(dayHtml).toContain(`(×${(s.wouldBeMirroredRequests / s.actualMirroredRequests).toFixed(2)})`);
    expect(dayHtml).toContain(`Would-be percentage changes (${s.writes})`);
  });

  it('stays small for a week of 30 s steps', () => {
    const week: BacktestResult = {
      ...day,
      points: Array.from({ length: 7 }, (_, d) =>
        day.points.map((p) => ({ ...p, t: p.t + d * 86_400 })),
      ).flat(),
    };
    const html = renderHtmlReport(week);
    expect(embeddedData(html).t).toHaveLength(20_160);
    expect(html.length).toBeLessThan(3_000_000);
  });
});

describe('breachIntervals', () => {
  const p = (t: number, breaches: SignalName[]): BacktestPoint => ({
    t,
    productionRps: 1,
    actualPercent: 1,
    wouldBePercent: 1,
    actualMirroredRps: 1,
    wouldBeMirroredRps: 1,
    predicted: {},
    breaches,
    action: 'hold',
    reason: 'WithinTolerance',
  });
  it.each([
    { name: 'none', points: [p(0, []), p(30, [])], want: [] },
    {
      name: 'one run, signals merged',
      points: [p(0, []), p(30, ['cpuUtilization']), p(60, ['latencyP99Ms']), p(90, [])],
      want: [{ from: 30, to: 90, signals: ['cpuUtilization', 'latencyP99Ms'] }],
    },
    {
      name: 'a missing step splits runs',
      points: [p(0, ['errorRate']), p(60, ['errorRate'])],
      want: [
        { from: 0, to: 30, signals: ['errorRate'] },
        { from: 60, to: 90, signals: ['errorRate'] },
      ],
    },
    {
      name: 'breach at the last step',
      points: [p(0, []), p(30, ['cpuUtilization'])],
      want: [{ from: 30, to: 60, signals: ['cpuUtilization'] }],
    },
  ])('$name', ({ points, want }) => {
    expect(breachIntervals(points, 30)).toEqual(want);
  });
});

describe('jsonForScript', () => {
  it.each([
    { name: 'script close', value: '</script><script>x</script>' },
    { name: 'comment open', value: '<!-- x' },
    { name: 'ampersand and line separators', value: 'a & b \u2028 \u2029' },
  ])('$name: no raw markup, same value back', ({ value }) => {
    const out = jsonForScript({ value });
    expect(out).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(out)).toEqual({ value });
  });
});

// ---------- in Chromium ----------

const missing = chromiumMissing();

if (missing !== undefined && !process.env.CI) {
  // Said out loud: a skipped describe is easy to miss in a long run.
  console.warn(`test/backtest/report.test.ts: browser tests skipped: ${missing}`);
}
if (missing !== undefined && process.env.CI) {
  describe('renderHtmlReport in Chromium', () => {
    it('needs Chromium on CI', () => {
      throw new Error(`${missing}; CI is set, so the browser tests must run`);
    });
  });
}

interface Opened {
  readonly page: Page;
  readonly requests: string[];
  readonly errors: string[];
  readonly dialogs: string[];
}

describe.skipIf(missing !== undefined)(
  `renderHtmlReport in Chromium${missing === undefined ? '' : ` (skipped: ${missing})`}`,
  () => {
    let browser: Browser;
    let dir: string;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'backtest-report-'));
      browser = await chromium.launch(chromiumLaunchOptions());
    });
    afterAll(async () => {
      await browser?.close();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    async function open(
      name: string,
      result: BacktestResult,
      { javaScriptEnabled = true, charts = 2 }: { javaScriptEnabled?: boolean; charts?: number } = {},
    ): Promise<Opened> {
      const file = join(dir, `${name}.html`);
      writeFileSync(file, renderHtmlReport(result));
      const context = await browser.newContext({
        viewport: { width: 1280, height: 900 },
        deviceScaleFactor: 1,
        javaScriptEnabled,
      });
      const page = await context.newPage();
      const opened: Opened = { page, requests: [], errors: [], dialogs: [] };
      page.on('request', (r) => opened.requests.push(r.url()));
      page.on('pageerror', (e) => opened.errors.push(`pageerror: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning')
          opened.errors.push(`console ${m.type()}: ${m.text()}`);
      });
      page.on('dialog', (d) => {
        opened.dialogs.push(d.message());
        void d.dismiss();
      });
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load', timeout: 10_000 });
      if (javaScriptEnabled) {
        await page.waitForFunction(
          (n) => (globalThis as unknown as { backtestCharts?: unknown[] }).backtestCharts?.length === n,
          charts,
          { timeout: 5_000 },
        );
      }
      return opened;
    }

    function expectClean(o: Opened): void {
      expect(o.requests.length).toBeGreaterThan(0);
      expect(o.requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
      expect(o.errors).toEqual([]);
      expect(o.dialogs).toEqual([]);
    }

    interface ChartInfo {
      labels: string[];
      strokes: string[];
      lengths: number[];
      nulls: number[];
    }

    function chartInfo(page: Page, index: number): Promise<ChartInfo> {
      return page.evaluate((i) => {
        interface U {
          series: { label?: string; stroke?: unknown; show?: boolean }[];
          data: (number | null)[][];
        }
        const u = (globalThis as unknown as { backtestCharts: U[] }).backtestCharts[i];
        if (u === undefined) throw new Error(`no chart ${i}`);
        return {
          labels: u.series.map((s) => String(s.label)),
          strokes: u.series.map((s) =>
            typeof s.stroke === 'function' ? String(s.stroke()) : String(s.stroke),
          ),
          lengths: u.data.map((d) => d.length),
          nulls: u.data.map((d) => d.filter((v) => v === null).length),
        };
      }, index);
    }

    async function canvasPixels(page: Page, chartId: string) {
      const png = await page.locator(`#${chartId} canvas`).screenshot();
      return decodePng(png);
    }

    it('realistic day: both series drawn, breaches shaded, nothing fetched', async () => {
      const o = await open('day', realisticDay());
      expectClean(o);
      const pct = await chartInfo(o.page, 0);
      expect(pct.labels).toEqual(['time (UTC)', 'actual %', 'would-be %']);
      expect(pct.lengths).toEqual([2880, 2880, 2880]);
      const legend = await o.page.locator('#chart-percent .u-legend').textContent();
      expect(legend).toContain('actual %');
      expect(legend).toContain('would-be %');

      const img = await canvasPixels(o.page, 'chart-percent');
      expect(countColor(img, hexRgb(REPORT_COLORS.actualPercent))).toBeGreaterThan(200);
      expect(countColor(img, hexRgb(REPORT_COLORS.wouldBePercent))).toBeGreaterThan(200);
      // The breach shade (red at 16 % over white) blends to about rgb(250, 222, 222).
      expect(countColor(img, [250, 222, 222], 6)).toBeGreaterThan(100);

      const rps = await chartInfo(o.page, 1);
      expect(rps.labels).toEqual([
        'time (UTC)',
        'production rps (right axis)',
        'actual mirrored rps',
        'would-be mirrored rps',
      ]);
      const rpsImg = await canvasPixels(o.page, 'chart-rps');
      for (const c of [
        REPORT_COLORS.productionRps,
        REPORT_COLORS.actualMirroredRps,
        REPORT_COLORS.wouldBeMirroredRps,
      ]) {
        expect(countColor(rpsImg, hexRgb(c)), c).toBeGreaterThan(200);
      }

      // The README's screenshot comes from a real backtest (test/backtest/backtest.test.ts); this one is for looking at.
      await o.page.screenshot({ path: join(dir, 'backtest-report.png'), fullPage: true });
      await o.page.context().close();
    });

    it('gaps: the actual line stops where the history has no data', async () => {
      const r = gappyWithUntrustedFit();
      const o = await open('gaps', r);
      expectClean(o);
      const info = await chartInfo(o.page, 0);
      expect(info.nulls).toEqual([0, GAP[1] - GAP[0], 0]);
      const [x0, x1, plotLeft, plotRight] = await o.page.evaluate(
        ([a, b]) => {
          interface U {
            valToPos(v: number, scale: string, canvasPixels?: boolean): number;
            bbox: { left: number; width: number };
          }
          const u = (globalThis as unknown as { backtestCharts: U[] }).backtestCharts[0];
          if (u === undefined) throw new Error('no chart');
          return [
            u.valToPos(a, 'x', true),
            u.valToPos(b, 'x', true),
            u.bbox.left,
            u.bbox.left + u.bbox.width,
          ];
        },
        [r.from + GAP[0] * STEP, r.from + (GAP[1] - 1) * STEP] as const,
      );
      const img = await canvasPixels(o.page, 'chart-percent');
      const blue = hexRgb(REPORT_COLORS.actualPercent);
      const orange = hexRgb(REPORT_COLORS.wouldBePercent);
      expect(x1 - x0).toBeGreaterThan(100);
      expect(countColor(img, blue, 10, [x0 + 4, x1 - 4])).toBe(0);
      expect(countColor(img, orange, 10, [x0 + 4, x1 - 4])).toBeGreaterThan(50);
      expect(countColor(img, blue, 10, [plotLeft, x0 - 4])).toBeGreaterThan(50);
      expect(countColor(img, blue, 10, [x1 + 4, plotRight])).toBeGreaterThan(50);

      const banner = o.page.locator('#warnings .untrusted-banner');
      await expect(banner.isVisible()).resolves.toBe(true);
      expect(await banner.textContent()).toContain('The fit is too poor to trust for latencyP99Ms');
      await o.page.context().close();
    });

    it('hostile names: shown as text, no script runs', async () => {
      const o = await open('hostile', hostile());
      expectClean(o);
      expect(await o.page.locator('h1').textContent()).toBe(`Backtest of ${HOSTILE_POLICY} on ${HOSTILE_VS}`);
      expect(await o.page.title()).toContain(HOSTILE_POLICY);
      expect(await o.page.locator('#warnings li').textContent()).toContain('<b>markup</b>');
      expect(await o.page.locator('img').count()).toBe(0);
      expect(await o.page.locator('script').count()).toBe(3);
      await o.page.context().close();
    });

    it('without JavaScript: the text parts still read', async () => {
      const r = gappyWithUntrustedFit();
      const o = await open('nojs', r, { javaScriptEnabled: false });
      expectClean(o);
      const text = await o.page.locator('main').textContent();
      expect(text).toContain('The fit is too poor to trust');
      expect(text).toContain(String(r.summary.writes));
      expect(text).toContain('NOT TRUSTED');
      expect(text).toContain('The charts need JavaScript');
      await o.page.context().close();
    });

    it('no points: says so, draws nothing, no errors', async () => {
      const r: BacktestResult = {
        ...gappyWithUntrustedFit(),
        points: [],
        summary: summarise([], 40),
        warnings: ['No data for the target shop/search-shadow in this range.'],
      };
      const o = await open('empty', r, { charts: 0 });
      expectClean(o);
      await expect(o.page.locator('#charts-empty').isVisible()).resolves.toBe(true);
      expect(await o.page.locator('canvas').count()).toBe(0);
      expect(await o.page.locator('#warnings').textContent()).toContain('No data for the target');
      await o.page.context().close();
    });
  },
);
