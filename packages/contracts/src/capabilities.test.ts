import { isVerityError, QUORUM_CAPABILITY } from '@verity/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CAPABILITY_BITS,
  type Capability,
  capabilityBits,
  decodeCapabilities,
  encodeCapabilities,
} from './capabilities.js';

const ALL = Object.keys(CAPABILITY_BITS) as Capability[];

describe('capabilities', () => {
  // The protocol (which cannot import this package) selects quorum candidates by this bit.
  it("mode:quorum is the protocol's QUORUM_CAPABILITY", () => {
    expect(encodeCapabilities(['mode:quorum'])).toBe(QUORUM_CAPABILITY);
  });
  it('encodes names as bits and back', () => {
    expect(encodeCapabilities(['mode:signed', 'runtime:onnx-native'])).toBe(0x10001n);
    expect(decodeCapabilities(0x10001n)).toEqual(['mode:signed', 'runtime:onnx-native']);
    expect(encodeCapabilities([])).toBe(0n);
  });

  it('round-trips every subset, in canonical order', () => {
    fc.assert(
      fc.property(fc.subarray(ALL), (subset) => {
        expect(decodeCapabilities(encodeCapabilities(subset))).toEqual(subset);
      }),
    );
  });

  it('ignores unknown bits when decoding, and refuses what does not fit a uint64', () => {
    expect(decodeCapabilities((1n << 63n) | 1n)).toEqual(['mode:signed']);
    expect(capabilityBits(1n << 63n)).toBe(1n << 63n);
    for (const bad of [1n << 64n, -1n]) {
      expect(
        isVerityError(
          catchError(() => capabilityBits(bad)),
          'INVALID_ARGUMENT',
        ),
      ).toBe(true);
    }
    expect(
      isVerityError(
        catchError(() => encodeCapabilities(['mode:nope' as Capability])),
        'INVALID_ARGUMENT',
      ),
    ).toBe(true);
  });
});

function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}
