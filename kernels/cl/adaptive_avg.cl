/* Adaptive average pooling, NCHW float32, output pixel-contiguous. */

/* Adaptive average pooling (global average pooling when OH = OW = 1). Window of output
 * (oh, ow) is [floor(oh*H/OH), ceil((oh+1)*H/OH)) as in torch. */
__kernel void adaptive_avg(__global const float *x, int x_off, int x_sn, int x_sc, int x_sh,
                           int x_sw, __global float *y, int y_off, int y_sn, int y_sc, int NC,
                           int C, int H, int W, int OH, int OW) {
  /* one work-item per (n, c) x output pixel; (n, c) first so a group spans channels */
  const int nc = get_global_id(0), p = get_global_id(1);
  if (nc >= NC || p >= OH * OW)
    return;
  const int oh = p / OW, ow = p - (p / OW) * OW;
  const int n = nc / C, c = nc - (nc / C) * C;
  __global const float *xc = x + x_off + n * x_sn + c * x_sc;
  const int hs = (oh * H) / OH, he = ((oh + 1) * H + OH - 1) / OH;
  const int ws = (ow * W) / OW, we = ((ow + 1) * W + OW - 1) / OW;
  float acc = 0.0f;
  for (int ih = hs; ih < he; ih++)
    for (int iw = ws; iw < we; iw++)
      acc += xc[ih * x_sh + iw * x_sw];
  y[y_off + n * y_sn + c * y_sc + oh * OW + ow] = acc / (float)((he - hs) * (we - ws));
}
