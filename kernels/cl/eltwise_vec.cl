/* Element-wise kernels for views whose channel planes are contiguous (pixel p of plane
 * (n, c) at off + n*sn + c*sc + p): one work-item handles 16 pixels of one plane, global
 * size (ceil(P / 16), N*C). Loads may overhang the plane (guard band, kernels.plan.GUARD);
 * the tail is stored lane by lane. */
#define PLANE_PROLOGUE                                                                   \
  const int p0 = get_global_id(0) * 16, nc = get_global_id(1);                           \
  if (p0 >= P)                                                                           \
    return;                                                                              \
  const int n = nc / C, c = nc - (nc / C) * C;
#define STORE_TAIL(v, yp)                                                                \
  if (p0 + 16 <= P) {                                                                    \
    ST16(v, yp);                                                                         \
  } else {                                                                               \
    float tmp[16];                                                                       \
    ST16(v, tmp);                                                                        \
    for (int j = 0; j < P - p0; j++)                                                     \
      (yp)[j] = tmp[j];                                                                  \
  }

/* y = relu?(a + b) */
__kernel void add2_vec(__global const float *a, int a_off, int a_sn, int a_sc,
                       __global const float *b, int b_off, int b_sn, int b_sc,
                       __global float *y, int y_off, int y_sn, int y_sc, int C, int P) {
  PLANE_PROLOGUE
  float16 v = LD16(a + a_off + n * a_sn + c * a_sc + p0) +
              LD16(b + b_off + n * b_sn + c * b_sc + p0);
  v = OUT_ACT(v);
  __global float *yp = y + y_off + n * y_sn + c * y_sc + p0;
  STORE_TAIL(v, yp)
}

/* y = relu?(relu?(x) * scale[c] + shift[c]) (BN, scaling, copy, ReLU) */
__kernel void affine_vec(__global const float *x, int x_off, int x_sn, int x_sc,
                         __global const float *scale, __global const float *shift,
                         __global float *y, int y_off, int y_sn, int y_sc, int C, int P) {
  PLANE_PROLOGUE
  float16 v = LD16(x + x_off + n * x_sn + c * x_sc + p0);
  v = OUT_ACT(IN_ACT(v) * scale[c] + shift[c]);
  __global float *yp = y + y_off + n * y_sn + c * y_sc + p0;
  STORE_TAIL(v, yp)
}
