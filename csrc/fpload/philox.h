// Philox4x32-10 counter-based RNG (Salmon et al., SC'11), plus a cheap per-pixel hash.
//
// Random parameters of every operator are a pure function of (seed, epoch, sample index,
// operator tag, draw number), so the CPU and GPU backends -- and the NumPy reference, which
// implements the same functions vectorised -- produce the same augmentation of the same sample.
#ifndef FPLOAD_PHILOX_H_
#define FPLOAD_PHILOX_H_

#include <cstdint>

#include "fpload/common.h"

namespace fpload {

struct U32x4 {
  uint32_t v[4];
};

FPLOAD_HD void mulhilo32(uint32_t a, uint32_t b, uint32_t &hi, uint32_t &lo) {
  uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

/// Philox4x32 with 10 rounds; matches the Random123 known-answer vectors.
FPLOAD_HD U32x4 philox4x32_10(U32x4 ctr, uint32_t k0, uint32_t k1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += W0;
      k1 += W1;
    }
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(M0, ctr.v[0], hi0, lo0);
    mulhilo32(M1, ctr.v[2], hi1, lo1);
    U32x4 next = {{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    ctr = next;
  }
  return ctr;
}

/// Operator tags: keep each operator's random stream separate.
enum OpTag : uint32_t { kTagWarp = 1, kTagOcclusion = 2, kTagPhotometric = 3 };

/// The key of one sample's random stream: (seed) x (sample index, epoch).
struct SampleKey {
  uint64_t seed;
  int64_t sample_idx;
  int64_t epoch;
};

/// The k-th 32-bit random word of a sample's stream for one operator.
/// Counter = (idx lo, idx hi, epoch lo, tag << 24 | k / 4); key = (seed lo, seed hi).
FPLOAD_HD uint32_t draw_u32(const SampleKey &key, uint32_t tag, uint32_t k) {
  uint64_t idx = static_cast<uint64_t>(key.sample_idx);
  U32x4 ctr = {{static_cast<uint32_t>(idx), static_cast<uint32_t>(idx >> 32),
                static_cast<uint32_t>(static_cast<uint64_t>(key.epoch)), (tag << 24) | (k >> 2)}};
  U32x4 r = philox4x32_10(ctr, static_cast<uint32_t>(key.seed),
                          static_cast<uint32_t>(key.seed >> 32));
  return r.v[k & 3u];
}

/// A uniform in [0, 1) with 24 random bits (exact in float and double).
FPLOAD_HD double u01(uint32_t u) {
  return static_cast<double>(u >> 8) * (1.0 / 16777216.0);
}

/// Chris Wellons' lowbias32 integer hash: a bijection with good avalanche.
FPLOAD_HD uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x;
}

/// An approximately standard-normal value for pixel `i` of a sample with noise key `key`:
/// the centred sum of the four bytes of a hash (Irwin-Hall, |n| <= 3.45). Integer until the
/// last multiply, so every backend computes the same bits.
FPLOAD_HD float hash_normal(uint32_t key, uint32_t i) {
  uint32_t h = lowbias32((i * 0x9E3779B9u) ^ key);
  int s = static_cast<int>((h & 255u) + ((h >> 8) & 255u) + ((h >> 16) & 255u) + (h >> 24));
  return static_cast<float>(s - 510) * 0.0067658f;  // 1 / sqrt(4 * (256^2 - 1) / 12)
}

}  // namespace fpload

#endif  // FPLOAD_PHILOX_H_
