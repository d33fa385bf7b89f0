/* Micro-benchmarks for roofline context: a streaming copy (bandwidth). Compute peak is
 * measured with conv_pw on a large square GEMM (see kernels.roofline). */
__kernel void copy16(__global const float16 *src, __global float16 *dst, int n16) {
  const int i = get_global_id(0);
  if (i < n16)
    dst[i] = src[i];
}
