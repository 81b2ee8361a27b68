// Warp: rotation, scale, translation and a smooth non-linear skin distortion in one pass.
//
// Inverse mapping of output pixel (x, y) of an out_h x out_w image to the input:
//   d  = (x + 0.5, y + 0.5) - (out_w / 2, out_h / 2)
//   s  = (c + t) + A d + D(x, y)
// with A = R(-angle) / scale, t a translation, c the centre in the input (image centre,
// foreground centroid or a given point) and D a displacement field: a G x G grid of random
// vectors (|component| <= distortion pixels) spanning the output, interpolated with
// Catmull-Rom (bicubic) weights, rows first. The input is sampled at s with bilinear or
// nearest interpolation; taps outside the input read `fill`.
#ifndef FPLOAD_WARP_MATH_H_
#define FPLOAD_WARP_MATH_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fpload/common.h"
#include "fpload/philox.h"

namespace fpload {

constexpr int kMaxWarpGrid = 8;

enum CenterMode : int { kCenterImage = 0, kCenterForeground = 1, kCenterGiven = 2 };

/// Operator arguments (parameter ranges), validated by the operator before use.
struct WarpArgs {
  float angle[2] = {0.f, 0.f};      // degrees
  float scale[2] = {1.f, 1.f};
  float translate[2] = {0.f, 0.f};  // max |shift| in pixels, x and y
  float distortion = 0.f;           // max |displacement| of a grid node, pixels
  int grid = 4;                     // nodes per axis, 2..kMaxWarpGrid
  bool nearest = false;
  float fill = 255.f;
  int center_mode = kCenterImage;
  int fg_threshold = 200;           // pixels darker than this count as foreground
};

/// Per-sample parameters, drawn from the sample's random stream.
struct WarpParams {
  float a00, a01, a10, a11;
  float tx, ty;
  float cx, cy;  // centre in the input, set by resolve_center
  int grid;
  int distort;   // 0: no displacement field
  float gx[kMaxWarpGrid * kMaxWarpGrid];
  float gy[kMaxWarpGrid * kMaxWarpGrid];
};

/// Draws one sample's warp parameters (host only; double math, then rounded to float).
inline WarpParams draw_warp_params(const SampleKey &key, const WarpArgs &a) {
  auto u = [&](uint32_t k) { return u01(draw_u32(key, kTagWarp, k)); };
  WarpParams p{};
  double ang = static_cast<double>(a.angle[0]) +
               (static_cast<double>(a.angle[1]) - static_cast<double>(a.angle[0])) * u(0);
  double sc = static_cast<double>(a.scale[0]) +
              (static_cast<double>(a.scale[1]) - static_cast<double>(a.scale[0])) * u(1);
  double tx = (2.0 * u(2) - 1.0) * static_cast<double>(a.translate[0]);
  double ty = (2.0 * u(3) - 1.0) * static_cast<double>(a.translate[1]);
  double th = ang * (3.14159265358979323846 / 180.0);
  double c = std::cos(th) / sc, s = std::sin(th) / sc;
  p.a00 = static_cast<float>(c);
  p.a01 = static_cast<float>(s);
  p.a10 = static_cast<float>(-s);
  p.a11 = static_cast<float>(c);
  p.tx = static_cast<float>(tx);
  p.ty = static_cast<float>(ty);
  p.grid = a.grid;
  p.distort = a.distortion > 0.f ? 1 : 0;
  double m = static_cast<double>(a.distortion);
  for (int n = 0; n < a.grid * a.grid; ++n) {
    p.gx[n] = static_cast<float>((2.0 * u(4 + 2 * n) - 1.0) * m);
    p.gy[n] = static_cast<float>((2.0 * u(5 + 2 * n) - 1.0) * m);
  }
  p.cx = p.cy = 0.f;
  return p;
}

/// Foreground moments of one image: weight w = max(0, threshold - pixel).
struct Moments {
  unsigned long long sw, sx, sy;  // NOLINT(runtime/int): matches CUDA atomicAdd
};

/// Centre from moments: the weighted centroid of pixel centres, or the image centre if empty.
FPLOAD_HD void center_from_moments(const Moments &m, int h, int w, float &cx, float &cy) {
  if (m.sw == 0) {
    cx = static_cast<float>(w) * 0.5f;
    cy = static_cast<float>(h) * 0.5f;
  } else {
    cx = static_cast<float>(static_cast<double>(m.sx) / static_cast<double>(m.sw) + 0.5);
    cy = static_cast<float>(static_cast<double>(m.sy) / static_cast<double>(m.sw) + 0.5);
  }
}

/// CPU: foreground moments of one image. Integer sums (exact in any order); per-row sums in
/// 32 bits when they cannot overflow, which lets the compiler vectorise the inner loop.
FPLOAD_CPU_DISPATCH
inline Moments foreground_moments_cpu(const uint8_t *FPLOAD_RESTRICT in, int h, int w,
                                      int threshold) {
  Moments m{0, 0, 0};
  const int thr = threshold > 0 ? threshold : 0;
  // max per-row sum of wt * x: thr * w (w - 1) / 2
  const bool narrow = static_cast<uint64_t>(thr) * static_cast<uint64_t>(w) *
                          static_cast<uint64_t>(w > 0 ? w - 1 : 0) / 2 <= 0xFFFFFFFFull;
  for (int y = 0; y < h; ++y) {
    const uint8_t *FPLOAD_RESTRICT row = in + static_cast<int64_t>(y) * w;
    unsigned long long rw = 0, rx = 0;  // NOLINT(runtime/int)
    if (narrow) {
      uint32_t nw = 0, nx = 0;
      for (int x = 0; x < w; ++x) {
        int wt = thr - static_cast<int>(row[x]);
        uint32_t u = static_cast<uint32_t>(wt > 0 ? wt : 0);
        nw += u;
        nx += u * static_cast<uint32_t>(x);
      }
      rw = nw;
      rx = nx;
    } else {
      for (int x = 0; x < w; ++x) {
        int wt = thr - static_cast<int>(row[x]);
        wt = wt > 0 ? wt : 0;
        rw += static_cast<unsigned>(wt);
        rx += static_cast<unsigned long long>(wt) * static_cast<unsigned>(x);  // NOLINT
      }
    }
    m.sw += rw;
    m.sx += rx;
    m.sy += rw * static_cast<unsigned>(y);
  }
  return m;
}

/// Catmull-Rom weights of the four nodes around fractional position f.
FPLOAD_HD void catmull_rom(float f, float *w) {
  w[0] = ((-0.5f * f + 1.0f) * f - 0.5f) * f;
  w[1] = ((1.5f * f - 2.5f) * f) * f + 1.0f;
  w[2] = ((-1.5f * f + 2.0f) * f + 0.5f) * f;
  w[3] = ((0.5f * f - 0.5f) * f) * f;
}

/// Node indices and weights along one axis for pixel `i` of an axis of `n` pixels.
FPLOAD_HD void grid_taps(int i, int n, int grid, int *idx, float *w) {
  float k = static_cast<float>(grid - 1) / static_cast<float>(n);
  float g = (static_cast<float>(i) + 0.5f) * k;
  int gi = clampi(static_cast<int>(floor_f(g)), 0, grid - 2);
  float f = g - static_cast<float>(gi);
  catmull_rom(f, w);
  idx[0] = clampi(gi - 1, 0, grid - 1);
  idx[1] = gi;
  idx[2] = gi + 1;
  idx[3] = clampi(gi + 2, 0, grid - 1);
}

/// Interpolates node column `i` of a grid along y (rows first).
FPLOAD_HD float grid_column(const float *g, int grid, int i, const int *jy, const float *wy) {
  return ((wy[0] * g[jy[0] * grid + i] + wy[1] * g[jy[1] * grid + i]) +
          wy[2] * g[jy[2] * grid + i]) + wy[3] * g[jy[3] * grid + i];
}

FPLOAD_HD float combine4(const float *w, float h0, float h1, float h2, float h3) {
  return ((w[0] * h0 + w[1] * h1) + w[2] * h2) + w[3] * h3;
}

FPLOAD_HD float tap(const uint8_t *in, int h, int w, int x, int y, float fill) {
  return (x >= 0 && x < w && y >= 0 && y < h) ? static_cast<float>(in[y * w + x]) : fill;
}

/// Samples the input at continuous position (sx, sy) (pixel centres at +0.5).
FPLOAD_HD float sample_at(const uint8_t *in, int h, int w, float sx, float sy, bool nearest,
                          float fill) {
  if (nearest) {
    float fx = floor_f(clampf(sx, -1.0f, static_cast<float>(w) + 1.0f));
    float fy = floor_f(clampf(sy, -1.0f, static_cast<float>(h) + 1.0f));
    return tap(in, h, w, static_cast<int>(fx), static_cast<int>(fy), fill);
  }
  float px = clampf(sx - 0.5f, -2.0f, static_cast<float>(w) + 1.0f);
  float py = clampf(sy - 0.5f, -2.0f, static_cast<float>(h) + 1.0f);
  float x0f = floor_f(px), y0f = floor_f(py);
  float fx = px - x0f, fy = py - y0f;
  int x0 = static_cast<int>(x0f), y0 = static_cast<int>(y0f);
  float v00, v01, v10, v11;
  if (x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h) {
    const uint8_t *r0 = in + y0 * w + x0;
    v00 = r0[0];
    v01 = r0[1];
    v10 = r0[w];
    v11 = r0[w + 1];
  } else {
    v00 = tap(in, h, w, x0, y0, fill);
    v01 = tap(in, h, w, x0 + 1, y0, fill);
    v10 = tap(in, h, w, x0, y0 + 1, fill);
    v11 = tap(in, h, w, x0 + 1, y0 + 1, fill);
  }
  float top = v00 + fx * (v01 - v00);
  float bot = v10 + fx * (v11 - v10);
  return top + fy * (bot - top);
}

/// One output pixel, self-contained (used by the GPU kernel; the CPU path hoists per-row work).
FPLOAD_HD uint8_t warp_pixel(const WarpParams &p, const uint8_t *in, int h, int w, int oh, int ow,
                             int x, int y, bool nearest, float fill) {
  float dx = (static_cast<float>(x) + 0.5f) - static_cast<float>(ow) * 0.5f;
  float dy = (static_cast<float>(y) + 0.5f) - static_cast<float>(oh) * 0.5f;
  float sx = (p.cx + p.tx) + (p.a00 * dx + p.a01 * dy);
  float sy = (p.cy + p.ty) + (p.a10 * dx + p.a11 * dy);
  if (p.distort) {
    int jy[4], ix[4];
    float wy[4], wx[4];
    grid_taps(y, oh, p.grid, jy, wy);
    grid_taps(x, ow, p.grid, ix, wx);
    float hx[4], hy[4];
    for (int k = 0; k < 4; ++k) {
      hx[k] = grid_column(p.gx, p.grid, ix[k], jy, wy);
      hy[k] = grid_column(p.gy, p.grid, ix[k], jy, wy);
    }
    sx = sx + combine4(wx, hx[0], hx[1], hx[2], hx[3]);
    sy = sy + combine4(wx, hy[0], hy[1], hy[2], hy[3]);
  }
  return to_u8(sample_at(in, h, w, sx, sy, nearest, fill));
}

// ------------------------------------------------------------------ CPU backend (host)
//
// The same expressions as warp_pixel, reorganised for a CPU: per row, output pixels are done in
// chunks of kWarpChunk, each in three passes -- source coordinates and bilinear weights
// (vectorisable), a scalar gather of the four taps of every pixel whose taps are all inside
// the input (two 16-bit loads), then the interpolation and rounding (vectorisable); the few
// pixels with a tap outside the input are redone one by one with tap(). The distortion
// field is combined from per-row node columns and per-sample x weights; the x weights are
// stored per column and the node indices per run of columns between two grid nodes, so the
// combination is a plain multiply-add loop. Every float is computed as warp_pixel computes it.

constexpr int kWarpChunk = 256;

/// floor as an int: floor_f's value for |v| < 2^24, written so that it vectorises with and
/// without SSE4.1.
inline int floor_i(float v) {
  int i = static_cast<int>(v);
  return i - (static_cast<float>(i) > v ? 1 : 0);
}

/// Two adjacent pixels p[0] | p[1] << 8 (one 16-bit load on little-endian machines).
inline uint16_t load_pair(const uint8_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
#else
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
#endif
}

/// Per-sample x-axis taps of the distortion grid (host only): weights per output column
/// (four arrays of ow) and the runs of columns that share their four node indices.
struct WarpXTaps {
  int ow = 0, grid = 0;
  std::vector<float> w;  // w[k * ow + x], k = 0..3
  int n_runs = 0;
  int run_x0[kMaxWarpGrid], run_x1[kMaxWarpGrid], run_idx[kMaxWarpGrid][4];

  void init(int out_w, int g) {
    ow = out_w;
    grid = g;
    w.resize(static_cast<size_t>(ow) * 4);
    n_runs = 0;
    for (int x = 0; x < ow; ++x) {
      int idx[4];
      float wt[4];
      grid_taps(x, ow, g, idx, wt);
      for (int k = 0; k < 4; ++k) w[static_cast<size_t>(k) * ow + x] = wt[k];
      if (n_runs == 0 || idx[1] != run_idx[n_runs - 1][1]) {
        run_x0[n_runs] = x;
        for (int k = 0; k < 4; ++k) run_idx[n_runs][k] = idx[k];
        ++n_runs;
      }
      run_x1[n_runs - 1] = x + 1;
    }
  }
};

/// Rows [y0, y1) of one sample's output. `xt` must hold the x taps of (ow, p.grid) when
/// p.distort is set.
FPLOAD_CPU_DISPATCH
inline void warp_rows_cpu(const WarpParams &p, const uint8_t *FPLOAD_RESTRICT in, int h, int w,
                          uint8_t *FPLOAD_RESTRICT out, int oh, int ow, int y0, int y1,
                          bool nearest, float fill, const WarpXTaps *xt) {
  const int G = p.grid;
  const float bx = p.cx + p.tx, by = p.cy + p.ty;
  const float a00 = p.a00, a10 = p.a10;
  const float ocx = static_cast<float>(ow) * 0.5f, ocy = static_cast<float>(oh) * 0.5f;
  const float wf = static_cast<float>(w), hf = static_cast<float>(h);
  const uint8_t fill_u8 = to_u8(fill);
  // a pixel's four taps are inside when x0 < w - 1 and y0 < h - 1 (as unsigned); offsets of
  // the top-left tap are int (images below 2^31 pixels, as in warp_pixel)
  const unsigned wi1 = w > 1 ? static_cast<unsigned>(w - 1) : 0u;
  const unsigned hi1 = h > 1 ? static_cast<unsigned>(h - 1) : 0u;
  const uint8_t dummy[2] = {0, 0};  // read instead of the input by pixels not inside
  alignas(64) float sx[kWarpChunk], sy[kWarpChunk];
  alignas(64) int32_t ix[kWarpChunk], iy[kWarpChunk], off[kWarpChunk];
  alignas(64) uint16_t top[kWarpChunk], bot[kWarpChunk];
  float hxr[kMaxWarpGrid], hyr[kMaxWarpGrid];
  for (int y = y0; y < y1; ++y) {
    const float dy = (static_cast<float>(y) + 0.5f) - ocy;
    const float ry_x = p.a01 * dy, ry_y = p.a11 * dy;
    if (p.distort) {
      int jy[4];
      float wy[4];
      grid_taps(y, oh, G, jy, wy);
      for (int i = 0; i < G; ++i) {
        hxr[i] = grid_column(p.gx, G, i, jy, wy);
        hyr[i] = grid_column(p.gy, G, i, jy, wy);
      }
    }
    uint8_t *FPLOAD_RESTRICT orow = out + static_cast<int64_t>(y) * ow;
    for (int xa = 0; xa < ow; xa += kWarpChunk) {
      const int n = imin(kWarpChunk, ow - xa);
      for (int j = 0; j < n; ++j) {
        float dx = (static_cast<float>(xa + j) + 0.5f) - ocx;
        sx[j] = bx + (a00 * dx + ry_x);
        sy[j] = by + (a10 * dx + ry_y);
      }
      if (p.distort) {
        for (int r = 0; r < xt->n_runs; ++r) {
          const int s0 = imax(xt->run_x0[r], xa), s1 = imin(xt->run_x1[r], xa + n);
          if (s0 >= s1) continue;
          const int *idx = xt->run_idx[r];
          const float hx0 = hxr[idx[0]], hx1 = hxr[idx[1]], hx2 = hxr[idx[2]], hx3 = hxr[idx[3]];
          const float hy0 = hyr[idx[0]], hy1 = hyr[idx[1]], hy2 = hyr[idx[2]], hy3 = hyr[idx[3]];
          const float *FPLOAD_RESTRICT w0 = xt->w.data();
          const float *FPLOAD_RESTRICT w1 = w0 + ow;
          const float *FPLOAD_RESTRICT w2 = w1 + ow;
          const float *FPLOAD_RESTRICT w3 = w2 + ow;
          for (int x = s0; x < s1; ++x) {
            const int j = x - xa;
            sx[j] = sx[j] + (((w0[x] * hx0 + w1[x] * hx1) + w2[x] * hx2) + w3[x] * hx3);
            sy[j] = sy[j] + (((w0[x] * hy0 + w1[x] * hy1) + w2[x] * hy2) + w3[x] * hy3);
          }
        }
      }
      uint8_t *FPLOAD_RESTRICT o = orow + xa;
      if (nearest) {
        for (int j = 0; j < n; ++j) {
          ix[j] = floor_i(clampf(sx[j], -1.0f, wf + 1.0f));
          iy[j] = floor_i(clampf(sy[j], -1.0f, hf + 1.0f));
        }
        for (int j = 0; j < n; ++j) {
          const int xi = ix[j], yi = iy[j];
          o[j] = (static_cast<unsigned>(xi) < static_cast<unsigned>(w) &&
                  static_cast<unsigned>(yi) < static_cast<unsigned>(h))
                     ? in[static_cast<int64_t>(yi) * w + xi]
                     : fill_u8;
        }
        continue;
      }
      // pass 1: tap positions, weights (sx, sy become fx, fy) and, for pixels whose four
      // taps are inside the input, the offset of the top-left tap (else -1)
      int n_out = 0;
      for (int j = 0; j < n; ++j) {
        float px = clampf(sx[j] - 0.5f, -2.0f, wf + 1.0f);
        float py = clampf(sy[j] - 0.5f, -2.0f, hf + 1.0f);
        int xi = floor_i(px), yi = floor_i(py);
        sx[j] = px - static_cast<float>(xi);
        sy[j] = py - static_cast<float>(yi);
        ix[j] = xi;
        iy[j] = yi;
        const bool ok = static_cast<unsigned>(xi) < wi1 && static_cast<unsigned>(yi) < hi1;
        off[j] = ok ? yi * w + xi : -1;
        n_out += ok ? 0 : 1;
      }
      // pass 2: gather the two tap pairs of every inside pixel
      for (int j = 0; j < n; ++j) {
        const int32_t k = off[j];
        const uint8_t *r0 = k >= 0 ? in + k : dummy;
        const uint8_t *r1 = k >= 0 ? r0 + w : dummy;
        top[j] = load_pair(r0);
        bot[j] = load_pair(r1);
      }
      // pass 3: interpolate and round
      for (int j = 0; j < n; ++j) {
        float v00 = static_cast<float>(top[j] & 255), v01 = static_cast<float>(top[j] >> 8);
        float v10 = static_cast<float>(bot[j] & 255), v11 = static_cast<float>(bot[j] >> 8);
        float fx = sx[j], fy = sy[j];
        float t = v00 + fx * (v01 - v00);
        float b = v10 + fx * (v11 - v10);
        o[j] = to_u8(t + fy * (b - t));
      }
      if (n_out) {  // pixels with a tap outside the input: the general path
        for (int j = 0; j < n; ++j) {
          if (off[j] >= 0) continue;
          const int xi = ix[j], yi = iy[j];
          float v00 = tap(in, h, w, xi, yi, fill), v01 = tap(in, h, w, xi + 1, yi, fill);
          float v10 = tap(in, h, w, xi, yi + 1, fill), v11 = tap(in, h, w, xi + 1, yi + 1, fill);
          float fx = sx[j], fy = sy[j];
          float t = v00 + fx * (v01 - v00);
          float b = v10 + fx * (v11 - v10);
          o[j] = to_u8(t + fy * (b - t));
        }
      }
    }
  }
}

/// CPU backend for one whole sample (p.cx, p.cy resolved).
inline void warp_sample_cpu(const WarpParams &p, const uint8_t *in, int h, int w, uint8_t *out,
                            int oh, int ow, bool nearest, float fill, WarpXTaps &xt) {
  if (p.distort && (xt.ow != ow || xt.grid != p.grid)) xt.init(ow, p.grid);
  warp_rows_cpu(p, in, h, w, out, oh, ow, 0, oh, nearest, fill, &xt);
}

}  // namespace fpload

#endif  // FPLOAD_WARP_MATH_H_
