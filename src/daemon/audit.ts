import { type Logger, type LoggerOptions, pino } from 'pino';

/** Options of the root logger. */
export interface LoggerSettings {
  level?: string;
  /** Where JSON lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

/**
 * The one root logger of a process. Secrets never reach it: credentials live in adapters that do not log
 * them, and the redact list below is a second line of defence for anything that slips into a log object.
 */
export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    base: { name: 'mirror-autoscaler' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: [
        'password',
        'token',
        'bearerToken',
        '*.password',
        '*.token',
        '*.bearerToken',
        'headers.authorization',
        '*.headers.authorization',
      ],
      censor: '[redacted]',
    },
  };
  return settings.destination ? pino(options, settings.destination) : pino(options);
}
