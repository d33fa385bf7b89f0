/* Direct 2-D convolution (any kernel size, padding, dilation, groups) vectorised along
 * output columns, for unit-stride input rows (x_sw == 1) and a column stride SW of 1 or
 * 2. One work-item computes TM output channels x VW adjacent outputs of one row; per tap
 * it makes one (masked, possibly overhanging: kernels.plan.GUARD) vector load and TM
 * vector multiply-adds. Used for the stem and other dense convolutions that are not
 * 1x1 or depthwise. wt layout as conv_general: wt[(g * Kg + (ci * KH + kh) * KW + kw)
 * * COG + oc]. Epilogue: + bias, POST_RELU, + addend (HAS_ADD). */
#define VT CAT2(float, VW)
#define VI CAT2(int, VW)
#define VLOAD(p) CAT2(LD, VW)(p)
#define VSTORE(v, p) CAT2(ST, VW)(v, p)
#if VW == 16
#define LANES ((VI)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#else
#define LANES ((VI)(0, 1, 2, 3, 4, 5, 6, 7))
#endif

__kernel void conv_direct(__global const float *x, int x_off, int x_sn, int x_sc, int x_sh,
                          int x_sw, __global const float *wt, __global const float *bias,
                          __global float *y, int y_off, int y_sn, int y_sc,
                          __global const float *r, int r_off, int r_sn, int r_sc, int H,
                          int W, int OH, int OW, int CIG, int COG, int M, int stride_h,
                          int pad_h, int pad_w, int dil_h, int dil_w, int NB) {
  const int ow0 = get_global_id(0) * VW;
  const int oh = get_global_id(1);
  const int m0 = (get_global_id(2) % NB) * TM;
  const int n = get_global_id(2) / NB;
  if (ow0 >= OW || oh >= OH || m0 >= M)
    return;
  const int g = m0 / COG, oc0 = m0 - g * COG;
  __global const float *xg = x + x_off + n * x_sn + g * CIG * x_sc;
  __global const float *wg = wt + g * CIG * KH * KW * COG + oc0;
  const int iw0 = ow0 * SW - pad_w;
  const VI lane_w = iw0 + LANES * SW;
  VT acc[TM];
#pragma unroll
  for (int i = 0; i < TM; i++)
    acc[i] = (VT)(0.0f);
  for (int ci = 0; ci < CIG; ci++) {
#pragma unroll
    for (int kh = 0; kh < KH; kh++) {
      const int ih = oh * stride_h - pad_h + kh * dil_h;
      if (ih < 0 || ih >= H)
        continue;
      __global const float *xr = xg + ci * x_sc + ih * x_sh;
      __global const float *wr = wg + (ci * KH + kh) * KW * COG;
#pragma unroll
      for (int kw = 0; kw < KW; kw++) {
        __global const float *p = xr + iw0 + kw * dil_w;
#if SW == 1
        VT v = VLOAD(p);
#else
        VT v = (VT)(VLOAD(p).even, VLOAD(p + VW).even);
#endif
        const VI col = lane_w + kw * dil_w;
        v = (col >= 0 && col < W) ? v : (VT)(0.0f);
        v = IN_ACT(v);
#pragma unroll
        for (int i = 0; i < TM; i++)
          acc[i] += (VT)(wr[kw * COG + i]) * v;
      }
    }
  }
  const int nvalid = OW - ow0 < VW ? OW - ow0 : VW;
  for (int i = 0; i < TM; i++) {
    const int m = m0 + i;
    VT v = OUT_ACT(acc[i] + (VT)(bias[m]));
    __global float *yp = y + y_off + n * y_sn + m * y_sc + oh * OW + ow0;
#if HAS_ADD
    __global const float *rp = r + r_off + n * r_sn + m * r_sc + oh * OW + ow0;
#endif
    if (nvalid == VW) {
#if HAS_ADD
      v += VLOAD(rp);
#endif
      VSTORE(v, yp);
    } else {
      float tmp[VW];
      VSTORE(v, tmp);
      for (int j = 0; j < nvalid; j++) {
#if HAS_ADD
        tmp[j] += rp[j];
#endif
        yp[j] = tmp[j];
      }
    }
  }
}
