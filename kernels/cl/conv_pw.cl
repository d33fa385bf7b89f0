/* 2-D convolutions, NCHW float32. BN is folded into (weights, bias) on the host; ReLU
 * may be applied to the input on load (PRE_RELU) and/or to the output (POST_RELU); an
 * addend tensor may be added after the activation (HAS_ADD: fuses a following `a + b`).
 *
 * Epilogue order is conv -> +bias -> relu -> +addend, which is the order of the torch
 * graph conv -> bn -> relu -> add that the executor fuses.
 */

/* Pointwise (1x1) convolution as a register-tiled GEMM: out[m, p] = sum_k W[m, k] x[k, p].
 * One work-item computes TM output channels x VW pixels. Weights are stored transposed
 * and zero-padded to Mp (a multiple of TM): wt[k * Mp + m], so the TM weights of one k
 * are contiguous and the inner loop has no bounds checks. CONTIG means input pixel p
 * sits at x[p] (stride 1, pixel-contiguous view); otherwise a strided gather is used
 * (the 1x1 stride-2 convs of FactorizedReduce, possibly on an offset view). */
#define VT CAT2(float, VW)
#define VLOAD(o, p) CAT2(LD, VW)(p)
#define VSTORE(v, o, p) CAT2(ST, VW)(v, p)

__kernel void conv_pw(__global const float *x, int x_off, int x_sn, int x_sc, int x_sh,
                      int x_sw, __global const float *wt, __global const float *bias,
                      __global float *y, int y_off, int y_sn, int y_sc,
                      __global const float *r, int r_off, int r_sn, int r_sc, int K, int M,
                      int Mp, int OH, int OW, int stride) {
  const int P = OH * OW;
  const int p0 = get_global_id(0) * VW;
  const int m0 = get_global_id(1) * TM;
  const int n = get_global_id(2);
  if (p0 >= P || m0 >= M)
    return;
  __global const float *xn = x + x_off + n * x_sn;
  VT acc[TM];
#pragma unroll
  for (int i = 0; i < TM; i++)
    acc[i] = (VT)(0.0f);
  if (CONTIG && p0 + VW <= P) {
    __global const float *xp = xn + p0;
    __global const float *wr = wt + m0;
    for (int k = 0; k < K; k++) {
      VT xv = VLOAD(0, xp);
#if PRE_RELU
      xv = RELU(xv);
#endif
#pragma unroll
      for (int i = 0; i < TM; i++)
        acc[i] += (VT)(wr[i]) * xv;
      xp += x_sc;
      wr += Mp;
    }
  } else {
    /* tail or strided input: gather VW pixels per k (clamped; extra lanes not stored) */
    int offs[VW];
    for (int j = 0; j < VW; j++) {
      int p = min(p0 + j, P - 1);
      int oh = p / OW, ow = p - (p / OW) * OW;
      offs[j] = oh * stride * x_sh + ow * stride * x_sw;
    }
    for (int k = 0; k < K; k++) {
      float tmp[VW];
      for (int j = 0; j < VW; j++)
        tmp[j] = IN_ACT(xn[k * x_sc + offs[j]]);
      VT xv = VLOAD(0, tmp);
      __global const float *wr = wt + k * Mp + m0;
#pragma unroll
      for (int i = 0; i < TM; i++)
        acc[i] += (VT)(wr[i]) * xv;
    }
  }
  const int nvalid = min(VW, P - p0);
  for (int i = 0; i < TM; i++) {
    const int m = m0 + i;
    if (m >= M)
      break;
    VT v = OUT_ACT(acc[i] + (VT)(bias[m]));
#if HAS_ADD
    __global const float *rp = r + r_off + n * r_sn + m * r_sc + p0;
#endif
    __global float *yp = y + y_off + n * y_sn + m * y_sc + p0;
    if (nvalid == VW) {
#if HAS_ADD
      v += VLOAD(0, rp);
#endif
      VSTORE(v, 0, yp);
    } else {
      float tmp[VW];
      VSTORE(v, 0, tmp);
      for (int j = 0; j < nvalid; j++) {
#if HAS_ADD
        tmp[j] += rp[j];
#endif
        yp[j] = tmp[j];
      }
    }
  }
}
