/* Pooling, NCHW float32, output pixel-contiguous. Semantics follow torch: max pooling
 * ignores padding; average pooling divides by the number of in-range taps when
 * count_include_pad == 0, else by the window clipped to the padded input (torch's rule).
 */
__kernel void pool2d(__global const float *x, int x_off, int x_sn, int x_sc, int x_sh,
                     int x_sw, __global float *y, int y_off, int y_sn, int y_sc, int C, int H,
                     int W, int OH, int OW, int stride_h, int stride_w, int pad_h, int pad_w,
                     int dil_h, int dil_w, int count_include_pad) {
  /* window size KH x KW is compile-time so the tap loops unroll */
  const int ow = get_global_id(0), oh = get_global_id(1), nc = get_global_id(2);
  if (ow >= OW || oh >= OH)
    return;
  const int n = nc / C, c = nc - (nc / C) * C;
  __global const float *xc = x + x_off + n * x_sn + c * x_sc;
  const int h0 = oh * stride_h - pad_h, w0 = ow * stride_w - pad_w;
#if IS_MAX
  float acc = -INFINITY;
#else
  float acc = 0.0f;
  int cnt = 0;
#endif
#pragma unroll
  for (int kh = 0; kh < KH; kh++) {
    const int ih = h0 + kh * dil_h;
    if (ih < 0 || ih >= H)
      continue;
#pragma unroll
    for (int kw = 0; kw < KW; kw++) {
      const int iw = w0 + kw * dil_w;
      if (iw < 0 || iw >= W)
        continue;
      const float v = xc[ih * x_sh + iw * x_sw];
#if IS_MAX
      acc = v > acc ? v : acc;
#else
      acc += v;
      cnt++;
#endif
    }
  }
#if !IS_MAX
  if (count_include_pad) {
    const int he = min(h0 + KH, H + pad_h), we = min(w0 + KW, W + pad_w);
    cnt = (he - h0) * (we - w0);
  }
  acc = acc / (float)max(cnt, 1);
#endif
  y[y_off + n * y_sn + c * y_sc + oh * OW + ow] = acc;
}

/* Vectorised 2-D pooling for unit-stride rows (x_sw == 1) and a column stride SW of 1 or
 * 2: one work-item computes VW adjacent outputs of one row. Loads may overhang the row
 * (guard band, see kernels.plan.GUARD); out-of-range lanes are masked to -inf (max) or
 * left out of the sum and the count (average). Same semantics as pool2d. */
#ifdef VW
#define VT CAT2(float, VW)
#define VI CAT2(int, VW)
#define VLOAD(o, p) CAT2(LD, VW)(p)
#define VSTORE(v, o, p) CAT2(ST, VW)(v, p)
#if VW == 16
#define LANES ((VI)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#define LANES_F ((VT)(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f, 10.f, 11.f, 12.f, 13.f, 14.f, 15.f))
#else
#define LANES ((VI)(0, 1, 2, 3, 4, 5, 6, 7))
#define LANES_F ((VT)(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f))
#endif

__kernel void pool2d_vec(__global const float *x, int x_off, int x_sn, int x_sc, int x_sh,
                         int x_sw, __global float *y, int y_off, int y_sn, int y_sc, int C,
                         int H, int W, int OH, int OW, int stride_h, int pad_h, int pad_w,
                         int dil_h, int count_include_pad) {
  const int ow0 = get_global_id(0) * VW, oh = get_global_id(1), nc = get_global_id(2);
  if (ow0 >= OW || oh >= OH)
    return;
  const int n = nc / C, c = nc - (nc / C) * C;
  __global const float *xc = x + x_off + n * x_sn + c * x_sc;
  const int h0 = oh * stride_h - pad_h, iw0 = ow0 * SW - pad_w;
  const VI lane_w = iw0 + LANES * SW;
#if IS_MAX
  VT acc = (VT)(-INFINITY);
#else
  VT acc = (VT)(0.0f);
  VT cnt = (VT)(0.0f);
#endif
#pragma unroll
  for (int kh = 0; kh < KH; kh++) {
    const int ih = h0 + kh * dil_h;
    if (ih < 0 || ih >= H)
      continue;
    __global const float *xr = xc + ih * x_sh;
#pragma unroll
    for (int kw = 0; kw < KW; kw++) {
      __global const float *p = xr + iw0 + kw * DW;
#if SW == 1
      const VT v = VLOAD(0, p);
#else
      const VT v = (VT)(VLOAD(0, p).even, VLOAD(0, p + VW).even);
#endif
      const VI col = lane_w + kw * DW;
      const VI ok = col >= 0 && col < W;
#if IS_MAX
      acc = (ok && v > acc) ? v : acc;
#else
      acc += ok ? v : (VT)(0.0f);
      cnt += ok ? (VT)(1.0f) : (VT)(0.0f);
#endif
    }
  }
#if !IS_MAX
  if (count_include_pad) {
    const int he = min(h0 + KH, H + pad_h);
    /* in float, without vector builtins: PoCL 3.0 on AVX-512 hosts compiles 16-wide
       builtin calls with an ABI warning and its kernel cache then loses the kernel */
    const VT lane_wf = (VT)((float)iw0) + LANES_F * (float)SW;
    const VT w_end = (VT)((float)(W + pad_w));
    const VT we = lane_wf + (float)KW < w_end ? lane_wf + (float)KW : w_end;
    cnt = (VT)((float)(he - h0)) * (we - lane_wf);
  }
  acc = acc / (cnt > 1.0f ? cnt : 1.0f);
#endif
  __global float *yp = y + y_off + n * y_sn + c * y_sc + oh * OW + ow0;
  if (ow0 + VW <= OW) {
    VSTORE(acc, 0, yp);
  } else {
    float tmp[VW];
    VSTORE(acc, 0, tmp);
    for (int j = 0; j < OW - ow0; j++)
      yp[j] = tmp[j];
  }
}
#endif
