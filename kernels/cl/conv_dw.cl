/* 2-D convolutions, NCHW float32. BN is folded into (weights, bias) on the host; ReLU
 * may be applied to the input on load (PRE_RELU) and/or to the output (POST_RELU); an
 * addend tensor may be added after the activation (HAS_ADD: fuses a following `a + b`).
 *
 * Epilogue order is conv -> +bias -> relu -> +addend, which is the order of the torch
 * graph conv -> bn -> relu -> add that the executor fuses.
 */

/* Depthwise convolution (groups == C_in == C_out). One work-item computes VW adjacent
 * output pixels (one vector register) of one row of one channel. KH, KW, STRIDE, DIL and
 * VW are compile-time, so the tap loops unroll into vector multiply-adds.
 *
 * Rows with unit stride (x_sw == 1, every executor tensor) are read with whole-vector
 * loads that may overhang the row: the executor keeps a guard band around every buffer
 * (kernels.plan.GUARD), and lanes outside [0, W) are zeroed by a vector conditional: the
 * zero padding. Other views take a scalar, bounds-checked path. */
#define VT CAT2(float, VW)
#define VI CAT2(int, VW)
#define VLOAD(o, p) CAT2(LD, VW)(p)
#define VSTORE(v, o, p) CAT2(ST, VW)(v, p)
#if VW == 16
#define LANES ((VI)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#else
#define LANES ((VI)(0, 1, 2, 3, 4, 5, 6, 7))
#endif
#define RW (VW * STRIDE + (KW - 1) * DIL)

__kernel void conv_dw(__global const float *x, int x_off, int x_sn, int x_sc, int x_sh,
                      int x_sw, __global const float *w, __global const float *bias,
                      __global float *y, int y_off, int y_sn, int y_sc,
                      __global const float *r, int r_off, int r_sn, int r_sc, int C, int H,
                      int W, int OH, int OW, int pad_h, int pad_w) {
  const int ow0 = get_global_id(0) * VW;
  const int oh = get_global_id(1);
  const int nc = get_global_id(2);
  if (ow0 >= OW || oh >= OH)
    return;
  const int n = nc / C, c = nc - (nc / C) * C;
  __global const float *xc = x + x_off + n * x_sn + c * x_sc;
  __global const float *wc = w + c * KH * KW;
  const int iw0 = ow0 * STRIDE - pad_w;
  const VI lane_w = iw0 + LANES * STRIDE; /* input column of each lane at tap kw = 0 */
  VT acc = (VT)(0.0f);
#pragma unroll
  for (int kh = 0; kh < KH; kh++) {
    const int ih = oh * STRIDE - pad_h + kh * DIL;
    if (ih < 0 || ih >= H)
      continue;
    __global const float *xr = xc + ih * x_sh;
    if (x_sw == 1) {
#pragma unroll
      for (int kw = 0; kw < KW; kw++) {
        __global const float *p = xr + iw0 + kw * DIL;
#if STRIDE == 1
        VT v = VLOAD(0, p);
#else
        VT v = (VT)(VLOAD(0, p).even, VLOAD(0, p + VW).even);
#endif
        const VI col = lane_w + kw * DIL;
        v = (col >= 0 && col < W) ? v : (VT)(0.0f);
#if PRE_RELU
        v = RELU(v);
#endif
        acc = (VT)(wc[kh * KW + kw]) * v + acc;
      }
    } else {
      float row[RW];
#pragma unroll
      for (int t = 0; t < RW; t++) {
        const int iw = iw0 + t;
        row[t] = (iw >= 0 && iw < W) ? IN_ACT(xr[iw * x_sw]) : 0.0f;
      }
#pragma unroll
      for (int kw = 0; kw < KW; kw++) {
#if STRIDE == 1
        const VT v = VLOAD(0, row + kw * DIL);
#else
        const VT v = (VT)(VLOAD(0, row + kw * DIL).even, VLOAD(0, row + kw * DIL + VW).even);
#endif
        acc = (VT)(wc[kh * KW + kw]) * v + acc;
      }
    }
  }
  acc = OUT_ACT(acc + (VT)(bias[c]));
  __global float *yp = y + y_off + n * y_sn + c * y_sc + oh * OW + ow0;
#if HAS_ADD
  __global const float *rp = r + r_off + n * r_sn + c * r_sc + oh * OW + ow0;
#endif
  if (ow0 + VW <= OW) {
#if HAS_ADD
    acc += VLOAD(0, rp);
#endif
    VSTORE(acc, 0, yp);
  } else {
    float tmp[VW];
    VSTORE(acc, 0, tmp);
    for (int j = 0; j < OW - ow0; j++) {
#if HAS_ADD
      tmp[j] += rp[j];
#endif
      yp[j] = tmp[j];
    }
  }
}
