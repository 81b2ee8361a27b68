// LZ4 block decoding (the raw block format, no frame), host only, bounds-checked.
// The CPU twin of DALI's GPU `decoders.inflate(algorithm="LZ4")` for fpload's raw-lz4 shards.
#ifndef FPLOAD_LZ4_BLOCK_H_
#define FPLOAD_LZ4_BLOCK_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace fpload {

enum class Lz4Status { kOk, kTruncated, kBadOffset, kOverflow, kShort };

/// Decodes one LZ4 block of `n` bytes into exactly `cap` bytes at `dst`.
/// kTruncated: the input ends inside a sequence; kBadOffset: a match points before the output;
/// kOverflow: the data decodes to more than `cap` bytes; kShort: to fewer.
inline Lz4Status lz4_block_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap) {
  size_t ip = 0, op = 0;
  while (true) {
    if (ip >= n) return Lz4Status::kTruncated;
    const unsigned token = src[ip++];
    size_t lit = token >> 4;
    if (lit == 15) {
      unsigned b;
      do {
        if (ip >= n) return Lz4Status::kTruncated;
        b = src[ip++];
        lit += b;
      } while (b == 255);
    }
    if (lit > n - ip) return Lz4Status::kTruncated;
    if (lit > cap - op) return Lz4Status::kOverflow;
    std::memcpy(dst + op, src + ip, lit);
    ip += lit;
    op += lit;
    if (ip == n) break;  // the last sequence holds literals only
    if (n - ip < 2) return Lz4Status::kTruncated;
    const size_t offset = size_t{src[ip]} | (size_t{src[ip + 1]} << 8);
    ip += 2;
    if (offset == 0 || offset > op) return Lz4Status::kBadOffset;
    size_t len = token & 15u;
    if (len == 15) {
      unsigned b;
      do {
        if (ip >= n) return Lz4Status::kTruncated;
        b = src[ip++];
        len += b;
      } while (b == 255);
    }
    len += 4;
    if (len > cap - op) return Lz4Status::kOverflow;
    const uint8_t *from = dst + op - offset;
    if (offset >= len) {
      std::memcpy(dst + op, from, len);
    } else {  // overlapping match: repeats the last `offset` bytes
      for (size_t k = 0; k < len; ++k) dst[op + k] = from[k];
    }
    op += len;
  }
  return op == cap ? Lz4Status::kOk : Lz4Status::kShort;
}

inline const char *lz4_status_text(Lz4Status s) {
  switch (s) {
    case Lz4Status::kOk: return "ok";
    case Lz4Status::kTruncated: return "the compressed data is truncated";
    case Lz4Status::kBadOffset: return "a match points before the start of the output (corrupt data)";
    case Lz4Status::kOverflow: return "the data decodes to more bytes than its shape holds";
    case Lz4Status::kShort: return "the data decodes to fewer bytes than its shape holds";
  }
  return "unknown error";
}

}  // namespace fpload

#endif  // FPLOAD_LZ4_BLOCK_H_
