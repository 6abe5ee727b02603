import { type ParseArgsConfig, parseArgs } from 'node:util';

/** A mistake in how the command was called: printed with the help text, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** Whether the help text helps here (a wrong flag) or not (a missing file). */
  readonly showHelp: boolean;
  constructor(message: string, options: { showHelp?: boolean } = {}) {
    super(message);
    this.showHelp = options.showHelp ?? true;
  }
}

/** `node:util` parseArgs, with its errors turned into {@link UsageError}s. */
export function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}
