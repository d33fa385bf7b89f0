/* Shared macros, prepended to every program by kernels.runtime.
 *
 * Views: every tensor argument is (pointer, element offset, strides), so slices of a
 * channel-concatenated buffer and strided getitem views are read and written in place
 * without copies. Flags are compile-time (-D) so that unused epilogues cost nothing.
 */
#ifndef PRE_RELU
#define PRE_RELU 0
#endif
#ifndef POST_RELU
#define POST_RELU 0
#endif
#ifndef HAS_ADD
#define HAS_ADD 0
#endif
#define CAT2_(a, b) a##b
#define CAT2(a, b) CAT2_(a, b)

/* Why no builtins in hot loops: PoCL (the CPU device these kernels are tested on) calls
 * OpenCL builtins such as fma, max, select, vload16 and vstore16 as out-of-line library
 * functions, and lowers contracted a * b + c (-cl-mad-enable) to calls to fma. Plain
 * operators, vector literals from scalar loads and per-lane stores compile to inline
 * vector instructions (LLVM merges the loads and stores), on GPUs as on CPUs. */
#define RELU(v) ((v) > 0.0f ? (v) : 0.0f) /* scalars and vectors */
#define IN_ACT(v) (PRE_RELU ? RELU(v) : (v))
#define OUT_ACT(v) (POST_RELU ? RELU(v) : (v))
#define LD8(p)                                                                           \
  ((float8)((p)[0], (p)[1], (p)[2], (p)[3], (p)[4], (p)[5], (p)[6], (p)[7]))
#define LD16(p) ((float16)(LD8(p), LD8((p) + 8)))
/* ST8/ST16 take a variable (evaluated once per lane) and a pointer */
#define ST8(v, p)                                                                        \
  do {                                                                                   \
    (p)[0] = (v).s0; (p)[1] = (v).s1; (p)[2] = (v).s2; (p)[3] = (v).s3;                   \
    (p)[4] = (v).s4; (p)[5] = (v).s5; (p)[6] = (v).s6; (p)[7] = (v).s7;                   \
  } while (0)
#define ST16(v, p)                                                                       \
  do {                                                                                   \
    ST8((v).lo, (p));                                                                    \
    ST8((v).hi, (p) + 8);                                                                \
  } while (0)
