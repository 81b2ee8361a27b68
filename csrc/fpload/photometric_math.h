// Photometric, fused in one pass over a 3x3 neighbourhood of the input:
//   m = dry: 3x3 max (thinner dark ridges) | wet: 3x3 min (thicker ridges) | none: the pixel
//   v = m + blur * (binomial3x3(input) - m)                       (blur strength in [0, 1])
//   t = tone(v): a 257-entry table of 255 * clamp((v/255 - 0.5) * contrast + 0.5 + brightness)
//       ^ gamma, linearly interpolated
//   t = clamp(t + noise_std * n(pixel), 0, 255); t = 255 - t if inverted
// Output uint8 round(t), or float/half (t - mean) / std. Borders replicate the edge pixel.
#ifndef FPLOAD_PHOTOMETRIC_MATH_H_
#define FPLOAD_PHOTOMETRIC_MATH_H_

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "fpload/common.h"
#include "fpload/philox.h"

namespace fpload {

constexpr int kLutSize = 257;

enum Morph : int { kMorphNone = 0, kMorphDry = 1, kMorphWet = 2 };

struct PhotometricArgs {
  float contrast[2] = {1.f, 1.f};
  float brightness[2] = {0.f, 0.f};  // fraction of full scale
  float gamma[2] = {1.f, 1.f};
  float noise_std[2] = {0.f, 0.f};   // grey levels
  float blur_prob = 0.f;
  float blur_strength[2] = {1.f, 1.f};
  float dry_prob = 0.f;
  float wet_prob = 0.f;
  float invert_prob = 0.f;
  float mean = 0.f;  // float outputs only
  float std = 1.f;
};

struct PhotometricParams {
  float blur;      // 0: no blur
  float noise;     // noise standard deviation, grey levels
  uint32_t noise_key;
  int morph;
  int invert;
  float lut[kLutSize];
};

inline PhotometricParams draw_photometric_params(const SampleKey &key, const PhotometricArgs &a) {
  auto u = [&](uint32_t k) { return u01(draw_u32(key, kTagPhotometric, k)); };
  auto lerp = [](const float *r, double t) {
    return static_cast<double>(r[0]) + (static_cast<double>(r[1]) - static_cast<double>(r[0])) * t;
  };
  PhotometricParams p{};
  double contrast = lerp(a.contrast, u(0));
  double brightness = lerp(a.brightness, u(1));
  double gamma = lerp(a.gamma, u(2));
  p.noise = static_cast<float>(lerp(a.noise_std, u(3)));
  p.blur = u(4) < a.blur_prob ? static_cast<float>(lerp(a.blur_strength, u(5))) : 0.f;
  double m = u(6);
  p.morph = m < a.dry_prob ? kMorphDry
                           : (m < static_cast<double>(a.dry_prob) + a.wet_prob ? kMorphWet
                                                                               : kMorphNone);
  p.invert = u(7) < a.invert_prob ? 1 : 0;
  p.noise_key = draw_u32(key, kTagPhotometric, 8);
  for (int i = 0; i < 256; ++i) {
    double t = (static_cast<double>(i) / 255.0 - 0.5) * contrast + 0.5 + brightness;
    t = std::min(std::max(t, 0.0), 1.0);
    t = std::pow(t, gamma);
    p.lut[i] = static_cast<float>(t * 255.0);
  }
  p.lut[256] = p.lut[255];
  return p;
}

/// The spatial stage (morphology and blur) at (x, y) from the 3x3 neighbourhood rows.
FPLOAD_HD float photometric_spatial(const PhotometricParams &p, const uint8_t *r0,
                                    const uint8_t *r1, const uint8_t *r2, int xl, int x, int xr) {
  int c = r1[x];
  float m;
  if (p.morph == kMorphNone) {
    m = static_cast<float>(c);
  } else {
    int a = r0[xl], b = r0[x], d = r0[xr], e = r1[xl], f = r1[xr], g = r2[xl], h = r2[x],
        k = r2[xr];
    int v = c;
    if (p.morph == kMorphDry) {
      v = imax(imax(imax(v, a), imax(b, d)), imax(imax(e, f), imax(imax(g, h), k)));
    } else {
      v = imin(imin(imin(v, a), imin(b, d)), imin(imin(e, f), imin(imin(g, h), k)));
    }
    m = static_cast<float>(v);
  }
  if (p.blur > 0.f) {
    int s = (r0[xl] + 2 * r0[x] + r0[xr]) + 2 * (r1[xl] + 2 * c + r1[xr]) +
            (r2[xl] + 2 * r2[x] + r2[xr]);
    float bl = static_cast<float>(s) * 0.0625f;
    m = m + p.blur * (bl - m);
  }
  return m;
}

/// Tone, noise and inversion of spatial value v for pixel index i; result in [0, 255].
FPLOAD_HD float photometric_tone(const PhotometricParams &p, const float *lut, float v,
                                 uint32_t i) {
  int vi = static_cast<int>(v);
  float fr = v - static_cast<float>(vi);
  float t = lut[vi] + fr * (lut[vi + 1] - lut[vi]);
  if (p.noise > 0.f) t = t + p.noise * hash_normal(p.noise_key, i);
  t = clampf(t, 0.0f, 255.0f);
  if (p.invert) t = 255.0f - t;
  return t;
}

/// CPU backend for one sample. `store(out_ptr, t)` writes one output value.
template <typename Out, typename Store>
void photometric_sample_cpu(const PhotometricParams &p, const uint8_t *in, Out *out, int h, int w,
                            Store store) {
  const bool spatial = p.morph != kMorphNone || p.blur > 0.f;
  for (int y = 0; y < h; ++y) {
    const uint8_t *r1 = in + static_cast<int64_t>(y) * w;
    const uint8_t *r0 = in + static_cast<int64_t>(imax(y - 1, 0)) * w;
    const uint8_t *r2 = in + static_cast<int64_t>(imin(y + 1, h - 1)) * w;
    Out *orow = out + static_cast<int64_t>(y) * w;
    uint32_t base = static_cast<uint32_t>(y) * static_cast<uint32_t>(w);
    if (!spatial) {
      for (int x = 0; x < w; ++x)
        store(orow + x, photometric_tone(p, p.lut, static_cast<float>(r1[x]), base + x));
    } else {
      for (int x = 0; x < w; ++x) {
        float v = photometric_spatial(p, r0, r1, r2, imax(x - 1, 0), x, imin(x + 1, w - 1));
        store(orow + x, photometric_tone(p, p.lut, v, base + x));
      }
    }
  }
}

}  // namespace fpload

#endif  // FPLOAD_PHOTOMETRIC_MATH_H_
