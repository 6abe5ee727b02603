/**
 * The log's errors: damage found in its files (`LOG_CORRUPT`), bad arguments (`INVALID_ARGUMENT`),
 * and I/O failures (`INTERNAL`, the system error as cause).
 */
import { isVerityError, VerityError } from '@verity/protocol';

/** `LOG_CORRUPT`: the files do not back the signed checkpoint. */
export function corrupt(message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  throw new VerityError('LOG_CORRUPT', message, cause === undefined ? { details } : { details, cause });
}

/** `INVALID_ARGUMENT`. */
export function invalid(message: string, details: Record<string, unknown> = {}): never {
  throw new VerityError('INVALID_ARGUMENT', message, { details });
}

/** I/O failures become `INTERNAL` errors (the one error type), keeping the system error as cause. */
export function ioError(e: unknown, message: string): VerityError {
  if (isVerityError(e)) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return new VerityError('INTERNAL', message, { cause: e, details: code === undefined ? {} : { code } });
}
