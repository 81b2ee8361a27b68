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

inline Moments foreground_moments_cpu(const uint8_t *in, int h, int w, int threshold) {
  Moments m{0, 0, 0};
  for (int y = 0; y < h; ++y) {
    const uint8_t *row = in + static_cast<int64_t>(y) * w;
    unsigned long long rw = 0, rx = 0;  // NOLINT(runtime/int)
    for (int x = 0; x < w; ++x) {
      int wt = threshold - static_cast<int>(row[x]);
      wt = wt > 0 ? wt : 0;
      rw += static_cast<unsigned>(wt);
      rx += static_cast<unsigned long long>(wt) * static_cast<unsigned>(x);  // NOLINT
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

/// CPU backend for one sample: row-wise, with grid columns and x-taps precomputed.
inline void warp_sample_cpu(const WarpParams &p, const uint8_t *in, int h, int w, uint8_t *out,
                            int oh, int ow, bool nearest, float fill,
                            std::vector<float> &wbuf, std::vector<int> &ibuf) {
  const int G = p.grid;
  if (p.distort) {
    wbuf.resize(static_cast<size_t>(ow) * 4);
    ibuf.resize(static_cast<size_t>(ow) * 4);
    for (int x = 0; x < ow; ++x) grid_taps(x, ow, G, &ibuf[x * 4], &wbuf[x * 4]);
  }
  float hxr[kMaxWarpGrid], hyr[kMaxWarpGrid];
  const float bx = p.cx + p.tx, by = p.cy + p.ty;
  const float ocx = static_cast<float>(ow) * 0.5f, ocy = static_cast<float>(oh) * 0.5f;
  for (int y = 0; y < oh; ++y) {
    float dy = (static_cast<float>(y) + 0.5f) - ocy;
    float ry_x = p.a01 * dy, ry_y = p.a11 * dy;
    if (p.distort) {
      int jy[4];
      float wy[4];
      grid_taps(y, oh, G, jy, wy);
      for (int i = 0; i < G; ++i) {
        hxr[i] = grid_column(p.gx, G, i, jy, wy);
        hyr[i] = grid_column(p.gy, G, i, jy, wy);
      }
    }
    uint8_t *orow = out + static_cast<int64_t>(y) * ow;
    for (int x = 0; x < ow; ++x) {
      float dx = (static_cast<float>(x) + 0.5f) - ocx;
      float sx = bx + (p.a00 * dx + ry_x);
      float sy = by + (p.a10 * dx + ry_y);
      if (p.distort) {
        const int *ix = &ibuf[x * 4];
        const float *wx = &wbuf[x * 4];
        sx = sx + combine4(wx, hxr[ix[0]], hxr[ix[1]], hxr[ix[2]], hxr[ix[3]]);
        sy = sy + combine4(wx, hyr[ix[0]], hyr[ix[1]], hyr[ix[2]], hyr[ix[3]]);
      }
      orow[x] = to_u8(sample_at(in, h, w, sx, sy, nearest, fill));
    }
  }
}

}  // namespace fpload

#endif  // FPLOAD_WARP_MATH_H_
