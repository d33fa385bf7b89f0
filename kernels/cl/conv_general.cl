/* 2-D convolutions, NCHW float32. BN is folded into (weights, bias) on the host; ReLU
 * may be applied to the input on load (PRE_RELU) and/or to the output (POST_RELU); an
 * addend tensor may be added after the activation (HAS_ADD: fuses a following `a + b`).
 *
 * Epilogue order is conv -> +bias -> relu -> +addend, which is the order of the torch
 * graph conv -> bn -> relu -> add that the executor fuses.
 */

/* General grouped convolution (stride, padding, dilation, groups). One work-item
 * computes TM output channels of one output pixel; TM divides the channels per group.
 * wt[(g * Kg + (ci * KH + kh) * KW + kw) * COG + oc] with Kg = CIG * KH * KW. */
__kernel void conv_general(__global const float *x, int x_off, int x_sn, int x_sc, int x_sh,
                           int x_sw, __global const float *wt, __global const float *bias,
                           __global float *y, int y_off, int y_sn, int y_sc,
                           __global const float *r, int r_off, int r_sn, int r_sc, int H,
                           int W, int OH, int OW, int CIG, int COG, int M, int stride_h,
                           int stride_w, int pad_h, int pad_w, int dil_h, int dil_w) {
  const int p = get_global_id(0);
  const int m0 = get_global_id(1) * TM;
  const int n = get_global_id(2);
  if (p >= OH * OW || m0 >= M)
    return;
  const int oh = p / OW, ow = p - (p / OW) * OW;
  const int g = m0 / COG, oc0 = m0 - g * COG;
  __global const float *xg = x + x_off + n * x_sn + g * CIG * x_sc;
  __global const float *wg = wt + g * CIG * KH * KW * COG + oc0;
  float acc[TM];
  for (int i = 0; i < TM; i++)
    acc[i] = 0.0f;
  for (int ci = 0; ci < CIG; ci++) {
    for (int kh = 0; kh < KH; kh++) {
      const int ih = oh * stride_h - pad_h + kh * dil_h;
      if (ih < 0 || ih >= H)
        continue;
      for (int kw = 0; kw < KW; kw++) {
        const int iw = ow * stride_w - pad_w + kw * dil_w;
        if (iw < 0 || iw >= W)
          continue;
        const float v = IN_ACT(xg[ci * x_sc + ih * x_sh + iw * x_sw]);
        __global const float *wr = wg + ((ci * KH + kh) * KW + kw) * COG;
        for (int i = 0; i < TM; i++)
          acc[i] += wr[i] * v;
      }
    }
  }
  for (int i = 0; i < TM; i++) {
    const int m = m0 + i;
    float v = OUT_ACT(acc[i] + bias[m]);
#if HAS_ADD
    v += r[r_off + n * r_sn + m * r_sc + p];
#endif
    y[y_off + n * y_sn + m * y_sc + p] = v;
  }
}
