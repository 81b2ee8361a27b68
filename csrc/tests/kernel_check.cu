// Standalone GPU check of the fpload kernels, no DALI: for each operator, runs the batched CUDA
// kernel and the CPU twin (the same functions the DALI CPU backend calls) on a random batch of
// mixed sizes, compares them (max |diff| <= 1 grey level), then times each kernel on a batch of
// N x S x S uint8 against a device-to-device copy of the same bytes, as achieved GB/s.
//
//   nvcc -std=c++20 -O3 --fmad=false -arch=sm_90 -I csrc csrc/tests/kernel_check.cu -o kernel_check
//   ./kernel_check [N=256] [S=512]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "fpload/occlusion_kernels.cuh"
#include "fpload/photometric_kernels.cuh"
#include "fpload/warp_kernels.cuh"

using namespace fpload;  // NOLINT

struct Batch {
  std::vector<int> h, w;
  std::vector<size_t> off;
  size_t bytes = 0;
  std::vector<uint8_t> host;
};

static Batch make_batch(const std::vector<std::pair<int, int>> &shapes, uint32_t seed) {
  Batch b;
  std::mt19937 rng(seed);
  for (auto [h, w] : shapes) {
    b.h.push_back(h);
    b.w.push_back(w);
    b.off.push_back(b.bytes);
    b.bytes += static_cast<size_t>(h) * w;
  }
  b.host.resize(b.bytes);
  for (size_t i = 0; i < b.h.size(); ++i)
    for (int y = 0; y < b.h[i]; ++y)
      for (int x = 0; x < b.w[i]; ++x) {
        float v = 128.f + 100.f * sinf((x * 0.77f + y * 0.64f) * 0.6f + i) + (rng() % 21) - 10.f;
        b.host[b.off[i] + static_cast<size_t>(y) * b.w[i] + x] = to_u8(v);
      }
  return b;
}

template <typename T>
static T *dev_copy(const T *src, size_t n) {
  T *d;
  FPLOAD_CUDA_CHECK(cudaMalloc(&d, n * sizeof(T)));
  FPLOAD_CUDA_CHECK(cudaMemcpy(d, src, n * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

static int compare(const char *name, const std::vector<uint8_t> &a, const std::vector<uint8_t> &b) {
  int worst = 0;
  size_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    int d = abs(static_cast<int>(a[i]) - static_cast<int>(b[i]));
    worst = d > worst ? d : worst;
    bad += d > 0;
  }
  printf("agree %-12s max|diff| %d, %zu of %zu pixels differ: %s\n", name, worst, bad, a.size(),
         worst <= 1 ? "OK" : "FAIL");
  return worst <= 1 ? 0 : 1;
}

int main(int argc, char **argv) {
  int N = argc > 1 ? atoi(argv[1]) : 256, S = argc > 2 ? atoi(argv[2]) : 512;
  int failures = 0;
  // ---- agreement on a mixed-size batch
  std::vector<std::pair<int, int>> shapes = {{64, 64}, {37, 51}, {128, 97}, {1, 7}, {300, 211}};
  Batch b = make_batch(shapes, 1);
  int n = static_cast<int>(shapes.size());
  WarpArgs wa;
  wa.angle[0] = -20; wa.angle[1] = 20; wa.scale[0] = 0.9f; wa.scale[1] = 1.1f;
  wa.translate[0] = wa.translate[1] = 5; wa.distortion = 6; wa.center_mode = kCenterForeground;
  OcclusionArgs oa;
  oa.contact_prob = 0.8f; oa.window_prob = 0.5f; oa.erase_max = 2; oa.blob_max = 3;
  PhotometricArgs pa;
  pa.contrast[0] = 0.7f; pa.contrast[1] = 1.3f; pa.noise_std[1] = 6; pa.blur_prob = 0.5f;
  pa.dry_prob = pa.wet_prob = 0.3f; pa.invert_prob = 0.3f;
  std::vector<WarpParams> wp(n);
  std::vector<OcclusionParams> op(n);
  std::vector<PhotometricParams> pp(n);
  for (int i = 0; i < n; ++i) {
    SampleKey k{42, i * 7 + 1, 3};
    wp[i] = draw_warp_params(k, wa);
    op[i] = draw_occlusion_params(k, oa, b.h[i], b.w[i]);
    pp[i] = draw_photometric_params(k, pa);
  }
  std::vector<uint8_t> cpu(b.bytes), gpu(b.bytes);
  uint8_t *din = dev_copy(b.host.data(), b.bytes), *dout;
  FPLOAD_CUDA_CHECK(cudaMalloc(&dout, b.bytes));
  std::vector<SampleIO> io(n);
  int mh = 0, mw = 0;
  for (int i = 0; i < n; ++i) {
    io[i] = SampleIO{din + b.off[i], dout + b.off[i], b.h[i], b.w[i], b.h[i], b.w[i]};
    mh = std::max(mh, b.h[i]);
    mw = std::max(mw, b.w[i]);
  }
  SampleIO *dio = dev_copy(io.data(), n);
  Moments *dm;
  FPLOAD_CUDA_CHECK(cudaMalloc(&dm, sizeof(Moments) * n));
  {  // warp
    WarpXTaps xt;
    std::vector<WarpParams> wc = wp;
    for (int i = 0; i < n; ++i) {
      const uint8_t *src = b.host.data() + b.off[i];
      center_from_moments(foreground_moments_cpu(src, b.h[i], b.w[i], wa.fg_threshold), b.h[i], b.w[i],
                          wc[i].cx, wc[i].cy);
      warp_sample_cpu(wc[i], src, b.h[i], b.w[i], cpu.data() + b.off[i], b.h[i], b.w[i], false, 255.f, xt);
    }
    WarpParams *dp = dev_copy(wp.data(), n);
    launch_warp(dio, dp, dm, n, mh, mw, mh, mw, wa, 0);
    FPLOAD_CUDA_CHECK(cudaMemcpy(gpu.data(), dout, b.bytes, cudaMemcpyDeviceToHost));
    failures += compare("warp", cpu, gpu);
  }
  {  // occlusion
    for (int i = 0; i < n; ++i)
      occlusion_sample_cpu(op[i], b.host.data() + b.off[i], cpu.data() + b.off[i], b.h[i], b.w[i], 255);
    OcclusionParams *dp = dev_copy(op.data(), n);
    launch_occlusion(dio, dp, n, mh, mw, 255, 0);
    FPLOAD_CUDA_CHECK(cudaMemcpy(gpu.data(), dout, b.bytes, cudaMemcpyDeviceToHost));
    failures += compare("occlusion", cpu, gpu);
  }
  {  // photometric (uint8)
    for (int i = 0; i < n; ++i)
      photometric_sample_cpu(pp[i], b.host.data() + b.off[i], cpu.data() + b.off[i], b.h[i], b.w[i],
                             [](uint8_t *o, float t) { *o = to_u8(t); });
    PhotometricParams *dp = dev_copy(pp.data(), n);
    launch_photometric(dio, dp, n, mh, mw, 0, 0.f, 1.f, 0);
    FPLOAD_CUDA_CHECK(cudaMemcpy(gpu.data(), dout, b.bytes, cudaMemcpyDeviceToHost));
    failures += compare("photometric", cpu, gpu);
  }
  // ---- bandwidth on N x S x S
  std::vector<std::pair<int, int>> big(N, {S, S});
  Batch bb = make_batch(big, 2);
  uint8_t *bin = dev_copy(bb.host.data(), bb.bytes), *bout;
  float *fout;
  FPLOAD_CUDA_CHECK(cudaMalloc(&bout, bb.bytes));
  FPLOAD_CUDA_CHECK(cudaMalloc(&fout, bb.bytes * sizeof(float)));
  std::vector<SampleIO> bio(N), fio(N);
  std::vector<WarpParams> bwp(N);
  std::vector<OcclusionParams> bop(N);
  std::vector<PhotometricParams> bpp(N);
  WarpArgs wimg = wa;
  wimg.center_mode = kCenterImage;
  for (int i = 0; i < N; ++i) {
    bio[i] = SampleIO{bin + bb.off[i], bout + bb.off[i], S, S, S, S};
    fio[i] = SampleIO{bin + bb.off[i], fout + bb.off[i], S, S, S, S};
    SampleKey k{7, i, 0};
    bwp[i] = draw_warp_params(k, wimg);
    bwp[i].cx = bwp[i].cy = S * 0.5f;
    bop[i] = draw_occlusion_params(k, oa, S, S);
    bpp[i] = draw_photometric_params(k, pa);
  }
  SampleIO *dbio = dev_copy(bio.data(), N), *dfio = dev_copy(fio.data(), N);
  WarpParams *dbwp = dev_copy(bwp.data(), N);
  OcclusionParams *dbop = dev_copy(bop.data(), N);
  PhotometricParams *dbpp = dev_copy(bpp.data(), N);
  Moments *dbm;
  FPLOAD_CUDA_CHECK(cudaMalloc(&dbm, sizeof(Moments) * N));
  cudaEvent_t e0, e1;
  FPLOAD_CUDA_CHECK(cudaEventCreate(&e0));
  FPLOAD_CUDA_CHECK(cudaEventCreate(&e1));
  auto time_ms = [&](auto &&fn) {
    fn();
    FPLOAD_CUDA_CHECK(cudaDeviceSynchronize());
    const int reps = 20;
    FPLOAD_CUDA_CHECK(cudaEventRecord(e0));
    for (int r = 0; r < reps; ++r) fn();
    FPLOAD_CUDA_CHECK(cudaEventRecord(e1));
    FPLOAD_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms;
    FPLOAD_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    return ms / reps;
  };
  double in_b = static_cast<double>(bb.bytes);
  double copy_ms = time_ms([&] { FPLOAD_CUDA_CHECK(cudaMemcpyAsync(bout, bin, bb.bytes, cudaMemcpyDeviceToDevice)); });
  struct Row { const char *name; double ms, bytes; };
  std::vector<Row> rows = {
      {"d2d copy", copy_ms, 2 * in_b},
      {"warp", time_ms([&] { launch_warp(dbio, dbwp, dbm, N, S, S, S, S, wimg, 0); }), 2 * in_b},
      {"occlusion", time_ms([&] { launch_occlusion(dbio, dbop, N, S, S, 255, 0); }), 2 * in_b},
      {"photo u8", time_ms([&] { launch_photometric(dbio, dbpp, N, S, S, 0, 0.f, 1.f, 0); }), 2 * in_b},
      {"photo f32", time_ms([&] { launch_photometric(dfio, dbpp, N, S, S, 1, 127.5f, 1 / 127.5f, 0); }), 5 * in_b},
  };
  double copy_gbs = rows[0].bytes / rows[0].ms / 1e6;
  printf("\nkernel       ms/batch   GB/s   vs copy   (batch %d x %dx%d uint8; GB/s = bytes read+written)\n", N, S, S);
  for (auto &r : rows) {
    double gbs = r.bytes / r.ms / 1e6;
    printf("%-12s %8.3f %7.1f %8.0f%%\n", r.name, r.ms, gbs, 100.0 * gbs / copy_gbs);
  }
  printf("%s\n", failures ? "AGREEMENT FAILED" : "agreement OK");
  return failures ? 1 : 0;
}
