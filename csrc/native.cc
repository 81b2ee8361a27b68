// libfpload_native.so: the per-pixel loops of the pack's CPU work that NumPy does slowly, behind a
// plain C ABI loaded with ctypes by fpload/_native.py (no DALI, no CUDA, no Python headers).
//
//   fpl_png_unfilter   PNG scanline unfiltering (RFC 2083 section 6) of an inflated IDAT stream
//   fpl_block_moments  exact integer block sums of pixels, squared pixels and the Sobel structure tensor
//   fpl_cell_sums      exact integer sums of whole cells (the thumbnail's area average)
//   fpl_freq_windows   the mean-removed, tapered float32 windows the ridge-frequency FFT reads
//   fpl_band_stats     per window, the band power's peak-weighted total and radius moment (float64)
//
// Every function has a NumPy twin in fpload/features/_builtin.py or fpload/_png.py that computes
// the same bits: integer sums are exact, float expressions are written in one evaluation order,
// compiled without FMA contraction (-ffp-contract=off) and without reassociation, and the float64
// sums run sequentially in a documented order (the twins use cumsum, which is sequential).
// Inputs are sizes and pointers from fpload/_native.py, which checks every shape before the call;
// the loops read and write only inside the extents they are given.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fpload/common.h"

#define FPL_API extern "C" __attribute__((visibility("default")))

namespace {

inline int paeth(int a, int b, int c) {
  // RFC 2083 6.6: pa = |p - a| = |b - c|, pb = |p - b| = |a - c|, pc = |p - c| = |a + b - 2c|
  // written as selects, not branches: the choice depends on the data, and a mispredicted
  // branch per pixel costs more than the whole computation
  const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
  const int not_a = (pa > pb) | (pa > pc);
  const int bc = pb <= pc ? b : c;
  return not_a ? bc : a;
}

/// Paeth-unfilter K consecutive rows of n bytes at 1 byte per pixel (grey 8-bit), rows y..y+K-1 of
/// ``raw``/``out`` (``up``: the row above the first, all zero for the image's first row).
/// Each pixel depends on its left neighbour, so one row is a chain of dependent steps; K rows
/// run as a wavefront (row j one pixel behind row j-1), K independent chains at once, and a row
/// takes its upper neighbours from the registers of the row above instead of from memory.
template <int K>
void paeth_rows_gray8(const uint8_t* FPLOAD_RESTRICT raw, const uint8_t* FPLOAD_RESTRICT up, int64_t n,
                      uint8_t* FPLOAD_RESTRICT out) {
  const uint8_t* src[K];
  uint8_t* dst[K];
  for (int j = 0; j < K; ++j) {
    src[j] = raw + j * (n + 1) + 1;
    dst[j] = out + j * n;
  }
  int a[K], old[K];  // a[j]: row j's last pixel; old[j]: the one before it (0 left of the image)
  for (int j = 0; j < K; ++j) a[j] = old[j] = 0;
  int up_left = 0;  // the first row's upper-left neighbour
  auto step = [&](int j, int64_t x) {
    const int b = j == 0 ? up[x] : a[j - 1];
    const int c = j == 0 ? up_left : old[j - 1];
    const int v = static_cast<uint8_t>(src[j][x] + paeth(a[j], b, c));
    dst[j][x] = static_cast<uint8_t>(v);
    old[j] = a[j];
    a[j] = v;
    if (j == 0) up_left = b;
  };
  // step s: row j handles pixel s - j; rows in descending order, so that row j reads row j-1's
  // registers before row j-1 moves on
  const int64_t steps = n + K - 1;
  for (int64_t s = 0; s < steps; ++s) {
    if (s >= K - 1 && s < n) {  // every row inside: no bounds checks
#pragma GCC unroll 8
      for (int j = K - 1; j >= 0; --j) step(j, s - j);
    } else {
      for (int j = K - 1; j >= 0; --j)
        if (s - j >= 0 && s - j < n) step(j, s - j);
    }
  }
}

}  // namespace

/// ABI version of this library; fpload/_native.py refuses a library of another version.
FPL_API int32_t fpl_native_abi(void) { return 1; }

/// Unfilter ``h`` PNG scanlines of ``row_bytes`` bytes each (``bpp`` bytes per complete pixel,
/// 1..8): ``raw`` holds ``h * (1 + row_bytes)`` bytes, each row its filter-type byte then the
/// filtered bytes; ``out`` receives ``h * row_bytes`` bytes. Returns -1, or the index of the first
/// row whose filter type is not 0..4 (rows before it are written, the rest are not).
FPL_API FPLOAD_CPU_DISPATCH int64_t fpl_png_unfilter(const uint8_t* FPLOAD_RESTRICT raw, int64_t h,
                                                     int64_t row_bytes, int32_t bpp,
                                                     uint8_t* FPLOAD_RESTRICT out) {
  std::vector<uint8_t> zero(static_cast<size_t>(row_bytes), 0);
  const int64_t n = row_bytes;
  const int64_t lead = bpp < n ? bpp : n;  // the first pixel's bytes have no left neighbour
  constexpr int kWave = 4;
  for (int64_t y = 0; y < h; ++y) {
    const uint8_t* src = raw + y * (n + 1);
    const uint8_t type = src[0];
    if (type == 4 && bpp == 1 && y + kWave <= h) {
      bool run = true;
      for (int j = 1; j < kWave; ++j) run = run && raw[(y + j) * (n + 1)] == 4;
      if (run) {
        paeth_rows_gray8<kWave>(src, y == 0 ? zero.data() : out + (y - 1) * n, n, out + y * n);
        y += kWave - 1;
        continue;
      }
    }
    ++src;
    uint8_t* dst = out + y * n;
    const uint8_t* up = y == 0 ? zero.data() : out + (y - 1) * n;
    switch (type) {
      case 0:
        std::memcpy(dst, src, static_cast<size_t>(n));
        break;
      case 1:  // Sub
        for (int64_t x = 0; x < lead; ++x) dst[x] = src[x];
        for (int64_t x = lead; x < n; ++x) dst[x] = static_cast<uint8_t>(src[x] + dst[x - bpp]);
        break;
      case 2:  // Up
        for (int64_t x = 0; x < n; ++x) dst[x] = static_cast<uint8_t>(src[x] + up[x]);
        break;
      case 3:  // Average
        for (int64_t x = 0; x < lead; ++x) dst[x] = static_cast<uint8_t>(src[x] + (up[x] >> 1));
        for (int64_t x = lead; x < n; ++x)
          dst[x] = static_cast<uint8_t>(src[x] + ((dst[x - bpp] + up[x]) >> 1));
        break;
      case 4:  // Paeth
        for (int64_t x = 0; x < lead; ++x) dst[x] = static_cast<uint8_t>(src[x] + up[x]);  // paeth(0, b, 0) = b
        for (int64_t x = lead; x < n; ++x)
          dst[x] = static_cast<uint8_t>(src[x] + paeth(dst[x - bpp], up[x], up[x - bpp]));
        break;
      default:
        return y;
    }
  }
  return -1;
}

/// Exact per-block integer sums of an 8-bit image (``h × w``, rows ``stride`` bytes apart) in
/// ``block × block`` blocks, ``hb × wb = ceil(h / block) × ceil(w / block)`` of them, the last row
/// and column of blocks partial. ``out`` receives five ``hb × wb`` int64 planes, in order:
/// Σ px, Σ px², Σ gx², Σ gy², Σ gx·gy, where (gx, gy) are 8 × the Sobel gradients with the
/// image's border replicated outwards: gx = D(y-1) + 2 D(y) + D(y+1), D(r) = P(r, x+1) - P(r, x-1),
/// gy = E(x-1) + 2 E(x) + E(x+1), E(c) = P(y+1, c) - P(y-1, c), P clamping both indices.
FPL_API FPLOAD_CPU_DISPATCH void fpl_block_moments(const uint8_t* FPLOAD_RESTRICT img, int64_t h, int64_t w,
                                                   int64_t stride, int64_t block, int64_t* FPLOAD_RESTRICT out) {
  const int64_t hb = (h + block - 1) / block, wb = (w + block - 1) / block, plane = hb * wb;
  std::memset(out, 0, sizeof(int64_t) * 5 * static_cast<size_t>(plane));
  // rows padded by one replicated pixel each side, as int32; per column, the five sums over the
  // rows of the current block row (<= 256 rows of |gx·gy| <= 1020²: below 2^31)
  std::vector<int32_t> pm(w + 2), p0(w + 2), pp(w + 2), acc(5 * static_cast<size_t>(w));
  auto load = [&](std::vector<int32_t>& dst, int64_t r) {
    const uint8_t* row = img + r * stride;
    for (int64_t x = 0; x < w; ++x) dst[x + 1] = row[x];
    dst[0] = row[0];
    dst[w + 1] = row[w - 1];
  };
  int32_t* FPLOAD_RESTRICT a1 = acc.data();
  int32_t* FPLOAD_RESTRICT a2 = a1 + w;
  int32_t* FPLOAD_RESTRICT axx = a2 + w;
  int32_t* FPLOAD_RESTRICT ayy = axx + w;
  int32_t* FPLOAD_RESTRICT axy = ayy + w;
  for (int64_t y = 0; y < h; ++y) {
    if (y % block == 0) std::fill(acc.begin(), acc.end(), 0);
    load(pm, y > 0 ? y - 1 : 0);
    load(p0, y);
    load(pp, y + 1 < h ? y + 1 : h - 1);
    const int32_t* FPLOAD_RESTRICT a = pm.data();
    const int32_t* FPLOAD_RESTRICT b = p0.data();
    const int32_t* FPLOAD_RESTRICT c = pp.data();
    for (int64_t x = 0; x < w; ++x) {
      const int32_t gx = (a[x + 2] - a[x]) + 2 * (b[x + 2] - b[x]) + (c[x + 2] - c[x]);
      const int32_t gy = (c[x] - a[x]) + 2 * (c[x + 1] - a[x + 1]) + (c[x + 2] - a[x + 2]);
      const int32_t v = b[x + 1];
      a1[x] += v;
      a2[x] += v * v;
      axx[x] += gx * gx;
      ayy[x] += gy * gy;
      axy[x] += gx * gy;
    }
    if (y % block == block - 1 || y == h - 1) {
      int64_t* o = out + (y / block) * wb;
      for (int q = 0; q < 5; ++q) {
        const int32_t* src = acc.data() + q * w;
        for (int64_t bx = 0; bx < wb; ++bx) {
          const int64_t x0 = bx * block, x1 = x0 + block < w ? x0 + block : w;
          int64_t sum = 0;
          for (int64_t x = x0; x < x1; ++x) sum += src[x];
          o[q * plane + bx] = sum;
        }
      }
    }
  }
}

/// Exact integer sums of the ``ry × rx`` cells of an 8-bit image (``h × w``, rows ``stride``
/// bytes apart; ``h % ry == 0`` and ``w % rx == 0``): ``out`` receives ``(h / ry) × (w / rx)`` int64.
FPL_API FPLOAD_CPU_DISPATCH void fpl_cell_sums(const uint8_t* FPLOAD_RESTRICT img, int64_t h, int64_t w,
                                               int64_t stride, int64_t ry, int64_t rx, int64_t* FPLOAD_RESTRICT out) {
  const int64_t th = h / ry, tw = w / rx;
  std::vector<int32_t> col(w);
  for (int64_t cy = 0; cy < th; ++cy) {
    std::fill(col.begin(), col.end(), 0);
    for (int64_t r = 0; r < ry; ++r) {
      const uint8_t* row = img + (cy * ry + r) * stride;
      for (int64_t x = 0; x < w; ++x) col[x] += row[x];
    }
    for (int64_t cx = 0; cx < tw; ++cx) {
      int64_t s = 0;
      for (int64_t x = cx * rx; x < (cx + 1) * rx; ++x) s += col[x];
      out[cy * tw + cx] = s;
    }
  }
}

/// The ridge-frequency windows: for each of ``n`` windows ``k``, whose top-left pixel is at image
/// row ``wy[k]`` and column ``wx[k]`` (either may be negative, the window may reach past the image),
/// writes ``win × win`` float32 values to ``out + k * win * win``: ``(float(px) - m) * taper[i, j]``
/// on image pixels and 0 elsewhere, where ``m = float(S) / float(max(N, 1))`` (float32 division),
/// S and N the sum and the count of the window's image pixels; and ``sums[3k..3k+2] = S, Σ px², N``.
FPL_API FPLOAD_CPU_DISPATCH void fpl_freq_windows(const uint8_t* FPLOAD_RESTRICT img, int64_t h, int64_t w,
                                                  int64_t stride, const int64_t* wy, const int64_t* wx, int64_t n,
                                                  int64_t win, const float* FPLOAD_RESTRICT taper,
                                                  float* FPLOAD_RESTRICT out, int64_t* FPLOAD_RESTRICT sums) {
  for (int64_t k = 0; k < n; ++k) {
    const int64_t r0 = wy[k] < 0 ? 0 : wy[k], r1 = wy[k] + win < h ? wy[k] + win : h;
    const int64_t c0 = wx[k] < 0 ? 0 : wx[k], c1 = wx[k] + win < w ? wx[k] + win : w;
    float* o = out + k * win * win;
    std::memset(o, 0, sizeof(float) * static_cast<size_t>(win * win));
    sums[3 * k] = sums[3 * k + 1] = sums[3 * k + 2] = 0;
    if (r1 <= r0 || c1 <= c0) continue;
    int64_t s = 0, q = 0;
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = img + r * stride;
      int64_t rs = 0, rq = 0;
      for (int64_t c = c0; c < c1; ++c) {
        const int32_t v = row[c];
        rs += v;
        rq += v * v;
      }
      s += rs;
      q += rq;
    }
    const int64_t count = (r1 - r0) * (c1 - c0);
    sums[3 * k] = s;
    sums[3 * k + 1] = q;
    sums[3 * k + 2] = count;
    const float m = static_cast<float>(s) / static_cast<float>(count);
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = img + r * stride;
      const int64_t i = r - wy[k];
      float* orow = o + i * win - wx[k];
      const float* trow = taper + i * win - wx[k];
      for (int64_t c = c0; c < c1; ++c) orow[c] = (static_cast<float>(row[c]) - m) * trow[c];
    }
  }
}

/// Band statistics of ``n`` spectra (complex64, ``re, im`` interleaved, ``stride`` complex values
/// apart): over the ``nb`` bins ``idx`` (flat indices into one spectrum) with radii ``radius``,
/// power p = re·re + im·im (float32), peak = max p, weight q = p if p >= 0.5·peak else 0, then
/// ``total[k] = Σ q`` and ``moment[k] = Σ q·radius`` in float64, summed in bin order.
FPL_API FPLOAD_CPU_DISPATCH void fpl_band_stats(const float* FPLOAD_RESTRICT spec, int64_t n, int64_t stride,
                                                const int64_t* FPLOAD_RESTRICT idx,
                                                const double* FPLOAD_RESTRICT radius, int64_t nb,
                                                double* FPLOAD_RESTRICT total, double* FPLOAD_RESTRICT moment) {
  // four spectra at a time: their sums are independent chains the CPU overlaps (each one is
  // still summed in bin order, so the bits do not depend on the grouping)
  constexpr int kGroup = 4;
  std::vector<float> p(static_cast<size_t>(nb) * kGroup);
  for (int64_t k0 = 0; k0 < n; k0 += kGroup) {
    const int g = static_cast<int>(n - k0 < kGroup ? n - k0 : kGroup);
    float half[kGroup];
    for (int i = 0; i < g; ++i) {
      const float* s = spec + 2 * (k0 + i) * stride;
      float* pi = p.data() + i * nb;
      float peak = 0.0f;  // the max of values >= 0 (NaN cannot arise from finite spectra)
      for (int64_t j = 0; j < nb; ++j) {
        const float re = s[2 * idx[j]], im = s[2 * idx[j] + 1];
        const float v = re * re + im * im;
        pi[j] = v;
        peak = v > peak ? v : peak;
      }
      half[i] = 0.5f * peak;
    }
    double t[kGroup] = {0.0, 0.0, 0.0, 0.0}, mo[kGroup] = {0.0, 0.0, 0.0, 0.0};
    for (int64_t j = 0; j < nb; ++j) {
      const double r = radius[j];
      for (int i = 0; i < g; ++i) {
        const float v = p[i * nb + j];
        const double q = v >= half[i] ? static_cast<double>(v) : 0.0;
        t[i] += q;
        mo[i] += q * r;
      }
    }
    for (int i = 0; i < g; ++i) {
      total[k0 + i] = t[i];
      moment[k0 + i] = mo[i];
    }
  }
}
