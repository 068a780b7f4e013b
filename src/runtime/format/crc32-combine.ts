/**
 * crc32 (the zlib polynomial, what `node:zlib`'s `crc32` computes) of a concatenation from the crcs of its
 * parts: `crc32Combine(crc32(a), crc32(b), b.length) === crc32(a ‖ b)`. zlib's `crc32_combine` (multiplication
 * modulo the polynomial by x^(8·len), from a table of x^(2^k)); Node exposes no binding of it. Lets a reader
 * that crcs each frame of a file on its own derive the whole file's crc without a second pass over its bytes.
 */
const POLY = 0xedb88320; // reflected

/** a·b modulo the polynomial (reflected bit order, as zlib's `multmodp`). */
function multmodp(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) modulo the polynomial, k = 0..31. */
const X2N = new Uint32Array(32);
X2N[0] = 0x40000000; // x^1
for (let k = 1; k < 32; k++) X2N[k] = multmodp(X2N[k - 1]!, X2N[k - 1]!);

/** x^(n·2^k) modulo the polynomial. */
function x2nmodp(n: number, k: number): number {
  let p = 0x80000000; // x^0
  while (n > 0) {
    if (n % 2) p = multmodp(X2N[k & 31]!, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/**
 * x^(8·d·256^j) modulo the polynomial for each byte digit d of a length (j = 0..3), built at first use: the
 * operator for a length is then the product of its (at most 4) digits' entries, a few multiplications instead
 * of one per bit of the length (a frame's crc folded into a file's costs ~0.5 µs, not ~3).
 */
let digits: Uint32Array | null = null;

function lengthOp(n: number): number {
  if (n >= 2 ** 32) return x2nmodp(n, 3);
  if (!digits) {
    digits = new Uint32Array(4 * 256);
    for (let j = 0; j < 4; j++) {
      digits[j * 256] = 0x80000000; // x^0
      for (let d = 1; d < 256; d++) digits[j * 256 + d] = multmodp(digits[j * 256 + d - 1]!, X2N[3 + 8 * j]!); // · x^(8·256^j)
    }
  }
  let p = 0x80000000;
  for (let j = 0; n > 0; j++, n = Math.floor(n / 256)) {
    const d = n % 256;
    if (d) p = multmodp(digits[j * 256 + d]!, p);
  }
  return p;
}

/** crc32 of `a ‖ b` from `crcA` = crc32(a), `crcB` = crc32(b) and `lengthB` = b's length in bytes. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multmodp(lengthOp(lengthB), crcA) ^ crcB) >>> 0;
}
