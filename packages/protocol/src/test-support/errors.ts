/** Test helpers for the one error type: tests compare stable codes, never messages. */
import { expect } from 'vitest';
import { type ErrorCode, isVerityError } from '../errors.js';

/** The code `fn` throws, or `undefined` when it returns; anything but a VerityError is rethrown. */
export function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (!isVerityError(e)) throw e;
    return e.code;
  }
}

/** Asserts that `fn` throws a VerityError with exactly `code`. */
export function expectCode(fn: () => unknown, code: ErrorCode): void {
  expect(codeOf(fn)).toBe(code);
}
