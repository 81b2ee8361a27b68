// Partial print / occlusion: random contact-area masks filled with background.
//
// A pixel is kept when it lies inside the contact ellipse (if drawn) and inside the sensor
// window (if drawn), and outside every erased rectangle and every blob ellipse; otherwise it
// becomes `fill`. Ellipses are evaluated per row as an integer interval of columns, computed
// with the same float expression on every backend.
#ifndef FPLOAD_OCCLUSION_MATH_H_
#define FPLOAD_OCCLUSION_MATH_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "fpload/common.h"
#include "fpload/philox.h"

namespace fpload {

constexpr int kMaxErase = 4;
constexpr int kMaxBlobs = 4;

struct OcclusionArgs {
  uint8_t fill = 255;
  float contact_prob = 0.f;
  float contact_axes[2] = {0.6f, 1.0f};  // semi-axes as a fraction of half width / height
  float contact_jitter = 0.f;            // centre offset as a fraction of width / height
  float window_prob = 0.f;
  float window_size[2] = {0.6f, 0.9f};   // window side as a fraction of width / height
  int erase_max = 0;
  float erase_area[2] = {0.02f, 0.08f};  // fraction of the image area per rectangle
  int blob_max = 0;
  float blob_radius[2] = {0.03f, 0.08f};  // fraction of min(height, width)
};

/// An ellipse as per-row quadratic coefficients: x in [cx + (-B -+ sqrt(B^2 - 4aC)) / 2a].
struct Ellipse {
  float cx, cy, qb, qc, q4a, inv2a;
};

struct Rect {
  int x0, y0, x1, y1;  // half-open
};

struct OcclusionParams {
  int has_contact, has_window, n_erase, n_blobs;
  Ellipse contact;
  Rect window;
  Rect erase[kMaxErase];
  Ellipse blobs[kMaxBlobs];
};

inline Ellipse make_ellipse(double cx, double cy, double ra, double rb, double theta) {
  double c = std::cos(theta), s = std::sin(theta);
  double ia = 1.0 / (ra * ra), ib = 1.0 / (rb * rb);
  double qa = c * c * ia + s * s * ib;
  Ellipse e;
  e.cx = static_cast<float>(cx);
  e.cy = static_cast<float>(cy);
  e.qb = static_cast<float>(2.0 * c * s * (ia - ib));
  e.qc = static_cast<float>(s * s * ia + c * c * ib);
  e.q4a = static_cast<float>(4.0 * qa);
  e.inv2a = static_cast<float>(0.5 / qa);
  return e;
}

inline double lerp_range(const float *r, double u) {
  return static_cast<double>(r[0]) + (static_cast<double>(r[1]) - static_cast<double>(r[0])) * u;
}

/// Draws one sample's masks for an h x w image (host only).
inline OcclusionParams draw_occlusion_params(const SampleKey &key, const OcclusionArgs &a,
                                             int h, int w) {
  auto u = [&](uint32_t k) { return u01(draw_u32(key, kTagOcclusion, k)); };
  const double pi = 3.14159265358979323846;
  OcclusionParams p{};
  p.has_contact = u(0) < a.contact_prob ? 1 : 0;
  if (p.has_contact) {
    double ra = lerp_range(a.contact_axes, u(1)) * w * 0.5;
    double rb = lerp_range(a.contact_axes, u(2)) * h * 0.5;
    double cx = w * 0.5 + (2.0 * u(3) - 1.0) * a.contact_jitter * w;
    double cy = h * 0.5 + (2.0 * u(4) - 1.0) * a.contact_jitter * h;
    p.contact = make_ellipse(cx, cy, std::max(ra, 0.5), std::max(rb, 0.5),
                             (2.0 * u(5) - 1.0) * pi / 6.0);
  }
  p.has_window = u(6) < a.window_prob ? 1 : 0;
  if (p.has_window) {
    int ww = std::clamp(static_cast<int>(std::lround(lerp_range(a.window_size, u(7)) * w)), 1, w);
    int wh = std::clamp(static_cast<int>(std::lround(lerp_range(a.window_size, u(8)) * h)), 1, h);
    int x0 = std::min(static_cast<int>(u(9) * (w - ww + 1)), w - ww);
    int y0 = std::min(static_cast<int>(u(10) * (h - wh + 1)), h - wh);
    p.window = Rect{x0, y0, x0 + ww, y0 + wh};
  }
  p.n_erase = std::min(static_cast<int>(u(11) * (a.erase_max + 1)), a.erase_max);
  for (int k = 0; k < p.n_erase; ++k) {
    uint32_t b = 12 + 4 * k;
    double area = lerp_range(a.erase_area, u(b)) * h * w;
    double aspect = std::exp((2.0 * u(b + 1) - 1.0) * std::log(2.0));
    int rh = std::clamp(static_cast<int>(std::lround(std::sqrt(area * aspect))), 1, h);
    int rw = std::clamp(static_cast<int>(std::lround(std::sqrt(area / aspect))), 1, w);
    int x0 = std::min(static_cast<int>(u(b + 2) * (w - rw + 1)), w - rw);
    int y0 = std::min(static_cast<int>(u(b + 3) * (h - rh + 1)), h - rh);
    p.erase[k] = Rect{x0, y0, x0 + rw, y0 + rh};
  }
  p.n_blobs = std::min(static_cast<int>(u(28) * (a.blob_max + 1)), a.blob_max);
  for (int k = 0; k < p.n_blobs; ++k) {
    uint32_t b = 29 + 5 * k;
    double ra = lerp_range(a.blob_radius, u(b)) * std::min(h, w);
    double rb = ra * (0.5 + 0.5 * u(b + 1));
    p.blobs[k] = make_ellipse(u(b + 2) * w, u(b + 3) * h, std::max(ra, 0.5), std::max(rb, 0.5),
                              u(b + 4) * pi);
  }
  return p;
}

/// Columns [x0, x1) of row y inside ellipse e (x1 <= x0 when none), clamped to [0, w].
FPLOAD_HD void ellipse_row(const Ellipse &e, int y, int w, int &x0, int &x1) {
  float dy = (static_cast<float>(y) + 0.5f) - e.cy;
  float b = e.qb * dy;
  float c = (e.qc * dy) * dy - 1.0f;
  float disc = b * b - e.q4a * c;
  if (!(disc >= 0.0f)) {
    x0 = 0;
    x1 = 0;
    return;
  }
  float r = sqrtf(disc);
  float xl = e.cx + (-b - r) * e.inv2a;
  float xr = e.cx + (-b + r) * e.inv2a;
  float lo = ceil_f(clampf(xl - 0.5f, -1.0f, static_cast<float>(w) + 1.0f));
  float hi = floor_f(clampf(xr - 0.5f, -2.0f, static_cast<float>(w))) + 1.0f;
  x0 = clampi(static_cast<int>(lo), 0, w);
  x1 = clampi(static_cast<int>(hi), 0, w);
}

/// Kept columns [k0, k1) of row y (before erasing).
FPLOAD_HD void kept_row(const OcclusionParams &p, int y, int w, int &k0, int &k1) {
  k0 = 0;
  k1 = w;
  if (p.has_contact) ellipse_row(p.contact, y, w, k0, k1);
  if (p.has_window) {
    if (y < p.window.y0 || y >= p.window.y1) {
      k1 = k0;
    } else {
      k0 = k0 > p.window.x0 ? k0 : p.window.x0;
      k1 = k1 < p.window.x1 ? k1 : p.window.x1;
    }
  }
}

/// CPU backend, rows [y0, y1) of one sample: per row, copy the kept span and fill the rest.
inline void occlusion_rows_cpu(const OcclusionParams &p, const uint8_t *in, uint8_t *out, int h,
                               int w, int y0, int y1, uint8_t fill) {
  (void)h;
  for (int y = y0; y < y1; ++y) {
    const uint8_t *irow = in + static_cast<int64_t>(y) * w;
    uint8_t *orow = out + static_cast<int64_t>(y) * w;
    int k0, k1;
    kept_row(p, y, w, k0, k1);
    if (k1 <= k0) {
      std::memset(orow, fill, w);
      continue;
    }
    if (k0 > 0) std::memset(orow, fill, k0);
    std::memcpy(orow + k0, irow + k0, k1 - k0);
    if (k1 < w) std::memset(orow + k1, fill, w - k1);
    for (int k = 0; k < p.n_erase; ++k) {
      const Rect &r = p.erase[k];
      if (y >= r.y0 && y < r.y1) std::memset(orow + r.x0, fill, r.x1 - r.x0);
    }
    for (int k = 0; k < p.n_blobs; ++k) {
      int b0, b1;
      ellipse_row(p.blobs[k], y, w, b0, b1);
      if (b1 > b0) std::memset(orow + b0, fill, b1 - b0);
    }
  }
}

/// CPU backend for one whole sample.
inline void occlusion_sample_cpu(const OcclusionParams &p, const uint8_t *in, uint8_t *out, int h,
                                 int w, uint8_t fill) {
  occlusion_rows_cpu(p, in, out, h, w, 0, h, fill);
}

}  // namespace fpload

#endif  // FPLOAD_OCCLUSION_MATH_H_
