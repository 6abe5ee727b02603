/**
 * The hand-written circom templates every generated circuit starts with. Each `<--` (a value
 * the prover computes outside the constraints) is pinned by constraints right below it; the
 * package README ("Gadgets and why they are sound") gives the argument for each template.
 *
 * They need no include path (no circomlib): the circuit text alone, with the compiler version,
 * determines the R1CS.
 */

/** The circom language version the generated text declares. */
export const CIRCOM_PRAGMA = 'pragma circom 2.1.0;';

/** Templates `Bits`, `Sign`, `Relu` and `Rescale`. */
export const GADGETS = `// Bits(n): 0 <= in < 2^n, with in = sum(bits[i] * 2^i) and every bits[i] in {0, 1} (n < 253).
template Bits(n) {
    signal input in;
    signal output bits[n];
    var sum = 0;
    var weight = 1;
    for (var i = 0; i < n; i++) {
        bits[i] <-- (in >> i) & 1;
        bits[i] * (bits[i] - 1) === 0;
        sum += bits[i] * weight;
        weight += weight;
    }
    sum === in;
}

// Sign(b): nonNegative = 1 if in >= 0 else 0, for -2^(b-1) <= in < 2^(b-1) (enforced).
template Sign(b) {
    signal input in;
    signal output nonNegative;
    component offset = Bits(b);
    offset.in <== in + 2 ** (b - 1);
    nonNegative <== offset.bits[b - 1];
}

// Relu(b): out = max(in, 0), for -2^(b-1) <= in < 2^(b-1) (enforced).
template Relu(b) {
    signal input in;
    signal output out;
    component sign = Sign(b);
    sign.in <== in;
    out <== in * sign.nonNegative;
}

// Rescale(s, b): out = floor((in + 2^(s-1)) / 2^s), i.e. in / 2^s rounded half up, for
// -2^(b-1) <= out < 2^(b-1) (enforced); nonNegative = 1 if out >= 0 else 0.
template Rescale(s, b) {
    signal input in;
    signal output out;
    signal output nonNegative;
    signal quotient;
    signal remainder;
    var shifted = in + 2 ** (s - 1) + 2 ** (b - 1 + s);
    quotient <-- shifted \\ (2 ** s);
    remainder <-- shifted % (2 ** s);
    shifted === quotient * (2 ** s) + remainder;
    component q = Bits(b);
    q.in <== quotient;
    component r = Bits(s);
    r.in <== remainder;
    out <== quotient - 2 ** (b - 1);
    nonNegative <== q.bits[b - 1];
}
`;
