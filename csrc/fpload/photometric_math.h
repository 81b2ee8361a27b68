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
#include <cstring>

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

// ------------------------------------------------------------------ CPU backend (host)
//
// The same expressions as photometric_spatial / photometric_tone, reorganised per chunk of a
// row so that the compiler vectorises every pass but the table look-ups: 3x3 max/min and the
// binomial sum separably (integers: exact in any order), the blur blend, the tone-table
// interpolation (a gather), the noise hash, clamp, inversion and the store. When the value
// before noise is a grey level (no blur) the table interpolation is the table entry itself
// (fraction 0), and with no noise either the whole pixel is one look-up in a 256-entry table
// of finished output values.

constexpr int kPhotoChunk = 256;

/// IEEE half bits of f, rounded to nearest even (as __float2half_rn); NaN becomes a quiet NaN.
/// Branch-free (after F. Giesen's float_to_half_fast3_rtne) so that store loops vectorise.
inline uint16_t f32_to_f16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  // Inf or NaN, or too large for a half (>= 65536 before rounding)
  const uint32_t big = u > 0x7F800000u ? 0x7E00u : 0x7C00u;
  // subnormal or zero half: align the mantissa with a magic add (round to nearest even)
  const uint32_t magic_u = ((127u - 15u) + (23u - 10u) + 1u) << 23;
  float magic, a = 0.0f;
  std::memcpy(&magic, &magic_u, 4);
  std::memcpy(&a, &u, 4);
  a = a + magic;
  uint32_t au;
  std::memcpy(&au, &a, 4);
  const uint32_t sub = au - magic_u;
  // normal half: rebias the exponent and round the mantissa to nearest even
  const uint32_t norm = (u + ((15u - 127u) << 23) + 0xFFFu + ((u >> 13) & 1u)) >> 13;
  const uint32_t h = u >= (143u << 23) ? big : (u < (113u << 23) ? sub : norm);
  return static_cast<uint16_t>(h | (sign >> 16));
}

/// Rows [y0, y1) of one sample. `store(out_ptr, t)` writes one output value from t in [0, 255].
template <typename Out, typename Store>
FPLOAD_CPU_DISPATCH void photometric_rows_cpu(const PhotometricParams &p,
                                              const uint8_t *FPLOAD_RESTRICT in,
                                              Out *FPLOAD_RESTRICT out, int h, int w, int y0,
                                              int y1, Store store) {
  const bool spatial = p.morph != kMorphNone || p.blur > 0.f;
  const bool blur = p.blur > 0.f;
  const bool noise = p.noise > 0.f;
  const bool invert = p.invert != 0;
  const float *FPLOAD_RESTRICT lut = p.lut;
  auto finish = [&](float t) {
    t = clampf(t, 0.0f, 255.0f);
    return invert ? 255.0f - t : t;
  };
  Out table[256];  // finished output per grey level (no blur, no noise)
  if (!blur && !noise)
    for (int g = 0; g < 256; ++g) store(table + g, finish(lut[g]));
  alignas(64) uint8_t g8[kPhotoChunk];               // grey level (no blur)
  alignas(64) float t[kPhotoChunk], t1[kPhotoChunk];  // tone; next table entry (blur)
  alignas(64) float fr[kPhotoChunk];                  // fraction of the blurred value
  alignas(64) int32_t vi[kPhotoChunk];
  alignas(64) int16_t cs[kPhotoChunk + 2];            // column sums r0 + 2 r1 + r2
  alignas(64) uint8_t cm[kPhotoChunk + 2];            // column max / min
  for (int y = y0; y < y1; ++y) {
    const uint8_t *FPLOAD_RESTRICT r1 = in + static_cast<int64_t>(y) * w;
    const uint8_t *FPLOAD_RESTRICT r0 = in + static_cast<int64_t>(imax(y - 1, 0)) * w;
    const uint8_t *FPLOAD_RESTRICT r2 = in + static_cast<int64_t>(imin(y + 1, h - 1)) * w;
    Out *FPLOAD_RESTRICT orow = out + static_cast<int64_t>(y) * w;
    const uint32_t base = static_cast<uint32_t>(y) * static_cast<uint32_t>(w);
    for (int xa = 0; xa < w; xa += kPhotoChunk) {
      const int n = imin(kPhotoChunk, w - xa);
      const uint8_t *FPLOAD_RESTRICT grey = r1 + xa;
      if (spatial) {
        // column combinations of x in [xa - 1, xa + n], edge columns replicated
        const int c0 = imax(xa - 1, 0), c1 = imin(xa + n + 1, w);
        const int off = c0 - (xa - 1);  // 1 at the left edge of the image, else 0
        if (p.morph == kMorphDry) {
          for (int x = c0; x < c1; ++x) {
            uint8_t a = r0[x] > r1[x] ? r0[x] : r1[x];
            cm[x - c0 + off] = a > r2[x] ? a : r2[x];
          }
        } else if (p.morph == kMorphWet) {
          for (int x = c0; x < c1; ++x) {
            uint8_t a = r0[x] < r1[x] ? r0[x] : r1[x];
            cm[x - c0 + off] = a < r2[x] ? a : r2[x];
          }
        }
        if (blur)
          for (int x = c0; x < c1; ++x)
            cs[x - c0 + off] = static_cast<int16_t>(r0[x] + 2 * r1[x] + r2[x]);
        if (off) {  // column -1 is column 0
          if (p.morph != kMorphNone) cm[0] = cm[1];
          if (blur) cs[0] = cs[1];
        }
        if (xa + n == w) {  // column w is column w - 1
          if (p.morph != kMorphNone) cm[n + 1] = cm[n];
          if (blur) cs[n + 1] = cs[n];
        }
        if (p.morph == kMorphDry) {
          for (int j = 0; j < n; ++j) {
            uint8_t a = cm[j] > cm[j + 1] ? cm[j] : cm[j + 1];
            g8[j] = a > cm[j + 2] ? a : cm[j + 2];
          }
          grey = g8;
        } else if (p.morph == kMorphWet) {
          for (int j = 0; j < n; ++j) {
            uint8_t a = cm[j] < cm[j + 1] ? cm[j] : cm[j + 1];
            g8[j] = a < cm[j + 2] ? a : cm[j + 2];
          }
          grey = g8;
        }
        if (blur) {
          const float b = p.blur;
          for (int j = 0; j < n; ++j) {
            float m = static_cast<float>(grey[j]);
            int sum = cs[j] + 2 * cs[j + 1] + cs[j + 2];
            float bl = static_cast<float>(sum) * 0.0625f;
            m = m + b * (bl - m);
            int i = static_cast<int>(m);
            vi[j] = i;
            fr[j] = m - static_cast<float>(i);
          }
          for (int j = 0; j < n; ++j) {  // gather
            t[j] = lut[vi[j]];
            t1[j] = lut[vi[j] + 1];
          }
          for (int j = 0; j < n; ++j) t[j] = t[j] + fr[j] * (t1[j] - t[j]);
        }
      }
      Out *FPLOAD_RESTRICT o = orow + xa;
      if (!blur && !noise) {
        for (int j = 0; j < n; ++j) o[j] = table[grey[j]];
        continue;
      }
      if (!blur)
        for (int j = 0; j < n; ++j) t[j] = lut[grey[j]];  // gather
      if (noise) {
        const float s = p.noise;
        const uint32_t key = p.noise_key, i0 = base + static_cast<uint32_t>(xa);
        for (int j = 0; j < n; ++j)
          t[j] = t[j] + s * hash_normal(key, i0 + static_cast<uint32_t>(j));
      }
      for (int j = 0; j < n; ++j) store(o + j, finish(t[j]));
    }
  }
}

/// CPU backend for one whole sample.
template <typename Out, typename Store>
void photometric_sample_cpu(const PhotometricParams &p, const uint8_t *in, Out *out, int h, int w,
                            Store store) {
  photometric_rows_cpu(p, in, out, h, w, 0, h, store);
}

}  // namespace fpload

#endif  // FPLOAD_PHOTOMETRIC_MATH_H_
