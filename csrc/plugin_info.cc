// Build facts baked into the plugin, read by fpload.ops._plugin before DALI loads it.
#define FPLOAD_STR2(x) #x
#define FPLOAD_STR(x) FPLOAD_STR2(x)

extern "C" __attribute__((visibility("default"))) const char *fpload_ops_build_info() {
  return "dali=" FPLOAD_STR(FPLOAD_DALI_VERSION) ";cuda=" FPLOAD_STR(FPLOAD_CUDA_VERSION)
         ";gpu=" FPLOAD_STR(FPLOAD_WITH_GPU);
}
