/** Types for asciichart 1.5 (the package ships none): only what the simulator's chart uses. */
declare module 'asciichart' {
  export interface PlotConfig {
    min?: number;
    max?: number;
    height?: number;
    offset?: number;
    padding?: string;
    colors?: string[];
    symbols?: string[];
    format?: (value: number, index: number) => string;
  }
  interface AsciiChart {
    plot(series: number[] | number[][], config?: PlotConfig): string;
    readonly black: string;
    readonly red: string;
    readonly green: string;
    readonly yellow: string;
    readonly blue: string;
    readonly magenta: string;
    readonly cyan: string;
    readonly lightgray: string;
    readonly default: string;
    readonly darkgray: string;
    readonly reset: string;
  }
  const asciichart: AsciiChart;
  export default asciichart;
}
