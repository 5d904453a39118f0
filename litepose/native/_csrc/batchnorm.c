/*
 * Training-mode BatchNorm fused with the activation that follows it (none, ReLU or ReLU6), for
 * channels_last float32 tensors on CPU: litepose's fast BatchNorm (litepose/models/fastbn.py).
 *
 * Why: in LitePose training on CPU, aten's BatchNorm backward in channels_last and the separate
 * ReLU6 passes moved the same activation tensors through memory several times per layer and took
 * about a third of a training step. Viewing a channels_last tensor as M = N*H*W rows of C
 * channels, the whole layer needs
 *
 *   forward:  one pass for the per-channel (shifted) sums (bn_sums), one pass writing
 *             y = act(a[c] * (x - mean[c]) + beta[c]) with a = gamma * invstd (bn_act_forward;
 *             subtracting the mean first keeps precision when |mean| >> std);
 *   backward: one pass for the per-channel sums of dz and dz * (x - mean), where
 *             dz = dy * act'(a (x - mean) + beta)
 *             (recomputed from x, so nothing but x is kept; bn_act_backward_sums), one
 *             pass writing dx = a * dz + k1[c] * (x - mean) + k0[c] (bn_act_backward_dx).
 *
 * litepose_bn_forward and litepose_bn_backward do a layer's whole step in one call each (the
 * per-channel arithmetic too, so Python does no small-tensor work).
 * Sums are taken per thread over a fixed split of the rows, in float over blocks of RB rows and
 * CB channels and in double across blocks, and added in thread order, so results are reproducible
 * for a given thread count. Built with -O3 -march=native -fopenmp;
 * the loops over channels vectorise.
 */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { ACT_NONE = 0, ACT_RELU = 1, ACT_RELU6 = 2 };

#define CB 16 /* channels per block of the sums: one AVX-512 register of floats */
#define RB 64 /* rows per block of the sums */

/* Rows [lo, hi) of M split into T near-equal parts: part t. */
static void split(int64_t M, int T, int t, int64_t *lo, int64_t *hi) {
    *lo = M * t / T;
    *hi = M * (t + 1) / T;
}

static int clamp_threads(int nthreads, int64_t M, int C) {
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    if (M * C < 32768 || M < 2 * RB) nthreads = 1; /* too small to be worth a parallel region */
    return nthreads;
}

/* Sum the threads' partial sums part[T][2][C] (in thread order) into out0[C], out1[C]; frees part. */
static void add_parts(double *part, int T, int C, double *out0, double *out1) {
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int t = 0; t < T; t++) {
            s += part[(size_t)t * 2 * C + c];
            q += part[(size_t)t * 2 * C + C + c];
        }
        out0[c] = s;
        out1[c] = q;
    }
    free(part);
}

/* The sums run over blocks of CB channels (one AVX-512 register of floats) and RB rows: a block's
 * partial sums stay in float registers over its RB rows (a few dozen shifted values, so float keeps
 * them exact to ~1e-6 relative) and are then added into the per-thread double sums. Summing row by
 * row straight into double arrays is compute-bound: a load, a float-to-double conversion and a
 * store per element, at half the vector width. */

/* Add, for channels c0 + [0, w) of rows [r0, r1), (x - sh) and its square into sa[], qa[]. */
static inline __attribute__((always_inline)) void block_sums(const float *x, int64_t C, int64_t r0, int64_t r1,
                                                             int c0, const int w, const float *sh, float *sa,
                                                             float *qa) {
    for (int64_t r = r0; r < r1; r++) {
        const float *row = x + r * C + c0;
        for (int j = 0; j < w; j++) {
            const float v = row[j] - sh[j];
            sa[j] += v;
            qa[j] += v * v;
        }
    }
}

/* Per-channel sums of (x - shift[c]) and of its square over x[M][C] (double). A shift near the
 * mean (e.g. the first row) keeps E[x^2] - E[x]^2 from cancelling when |mean| >> std. */
static int bn_sums(const float *x, const float *shift, int64_t M, int C, double *sum, double *sumsq,
                     int nthreads) {
    const int T = clamp_threads(nthreads, M, C);
    double *part = calloc((size_t)T * 2 * C, sizeof(double));
    if (!part) return -1;
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int t = 0; t < T; t++) {
        int64_t lo, hi;
        split(M, T, t, &lo, &hi);
        double *s = part + (size_t)t * 2 * C, *q = s + C;
        for (int64_t r0 = lo; r0 < hi; r0 += RB) {
            const int64_t r1 = r0 + RB < hi ? r0 + RB : hi;
            for (int c0 = 0; c0 < C; c0 += CB) {
                float sa[CB] = {0}, qa[CB] = {0}, sh[CB] = {0};
                const int w = C - c0 < CB ? C - c0 : CB;
                for (int j = 0; j < w; j++) sh[j] = shift[c0 + j];
                /* a literal CB lets the inlined loop vectorise to whole registers */
                if (w == CB)
                    block_sums(x, C, r0, r1, c0, CB, sh, sa, qa);
                else
                    block_sums(x, C, r0, r1, c0, w, sh, sa, qa);
                for (int j = 0; j < w; j++) {
                    s[c0 + j] += sa[j];
                    q[c0 + j] += qa[j];
                }
            }
        }
    }
    add_parts(part, T, C, sum, sumsq);
    return 0;
}

/* y[M][C] = act(a[c] * (x - mean[c]) + b[c]). */
static int bn_act_forward(const float *restrict x, float *restrict y, const float *restrict mean,
                          const float *restrict a, const float *restrict b, int64_t M, int C, int act, int nthreads) {
    const int T = clamp_threads(nthreads, M, C);
#pragma omp parallel for num_threads(T) schedule(static)
    for (int64_t r = 0; r < M; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        if (act == ACT_RELU6) {
            for (int c = 0; c < C; c++) {
                float z = a[c] * (xr[c] - mean[c]) + b[c];
                z = z > 0.0f ? z : 0.0f;
                yr[c] = z < 6.0f ? z : 6.0f;
            }
        } else if (act == ACT_RELU) {
            for (int c = 0; c < C; c++) {
                const float z = a[c] * (xr[c] - mean[c]) + b[c];
                yr[c] = z > 0.0f ? z : 0.0f;
            }
        } else {
            for (int c = 0; c < C; c++) yr[c] = a[c] * (xr[c] - mean[c]) + b[c];
        }
    }
    return 0;
}

/* dz = dy * act'(a (x - mean) + b) for one element: dy inside the activation's linear range (open
 * at the ends, as aten's threshold / hardtanh backward), else 0. */
static inline float act_grad(float g, float xc, float a, float b, int act) {
    if (act == ACT_NONE) return g;
    const float z = a * xc + b;
    if (act == ACT_RELU) return z > 0.0f ? g : 0.0f;
    return (z > 0.0f) & (z < 6.0f) ? g : 0.0f;
}

/* Add, for channels c0 + [0, w) of rows [r0, r1), dz and dz * (x - mean) into sa[], qa[]. */
static inline __attribute__((always_inline)) void block_grad_sums(const float *x, const float *dy, int64_t C,
                                                                  int64_t r0, int64_t r1, int c0, const int w,
                                                                  const float *am, const float *bm,
                                                                  const float *mm, int act, float *sa, float *qa) {
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * C + c0, *gr = dy + r * C + c0;
        for (int j = 0; j < w; j++) {
            const float xc = xr[j] - mm[j];
            const float dz = act_grad(gr[j], xc, am[j], bm[j], act);
            sa[j] += dz;
            qa[j] += dz * xc;
        }
    }
}

/* Per-channel sums of dz and dz * (x - mean[c]), blocked as bn_sums. */
static int bn_act_backward_sums(const float *x, const float *dy, const float *a, const float *b,
                                  const float *mean, int64_t M, int C, int act, double *sdz, double *sdzx,
                                  int nthreads) {
    const int T = clamp_threads(nthreads, M, C);
    double *part = calloc((size_t)T * 2 * C, sizeof(double));
    if (!part) return -1;
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int t = 0; t < T; t++) {
        int64_t lo, hi;
        split(M, T, t, &lo, &hi);
        double *s = part + (size_t)t * 2 * C, *q = s + C;
        for (int64_t r0 = lo; r0 < hi; r0 += RB) {
            const int64_t r1 = r0 + RB < hi ? r0 + RB : hi;
            for (int c0 = 0; c0 < C; c0 += CB) {
                float sa[CB] = {0}, qa[CB] = {0}, am[CB] = {0}, bm[CB] = {0}, mm[CB] = {0};
                const int w = C - c0 < CB ? C - c0 : CB;
                for (int j = 0; j < w; j++) {
                    am[j] = a[c0 + j];
                    bm[j] = b[c0 + j];
                    mm[j] = mean[c0 + j];
                }
                if (w == CB)
                    block_grad_sums(x, dy, C, r0, r1, c0, CB, am, bm, mm, act, sa, qa);
                else
                    block_grad_sums(x, dy, C, r0, r1, c0, w, am, bm, mm, act, sa, qa);
                for (int j = 0; j < w; j++) {
                    s[c0 + j] += sa[j];
                    q[c0 + j] += qa[j];
                }
            }
        }
    }
    add_parts(part, T, C, sdz, sdzx);
    return 0;
}

/* dx[M][C] = a[c] * dz + k1[c] * (x - mean[c]) + k0[c], with dz = dy * act'(a (x - mean) + b). */
static int bn_act_backward_dx(const float *restrict x, const float *restrict dy, float *restrict dx,
                              const float *restrict a, const float *restrict b, const float *restrict mean,
                              const float *restrict k1, const float *restrict k0, int64_t M, int C, int act,
                              int nthreads) {
    const int T = clamp_threads(nthreads, M, C);
#pragma omp parallel for num_threads(T) schedule(static)
    for (int64_t r = 0; r < M; r++) {
        const float *xr = x + r * C, *gr = dy + r * C;
        float *dr = dx + r * C;
        for (int c = 0; c < C; c++) {
            const float xc = xr[c] - mean[c];
            dr[c] = a[c] * act_grad(gr[c], xc, a[c], b[c], act) + k1[c] * xc + k0[c];
        }
    }
    return 0;
}

/*
 * Forward: y = act(BatchNorm(x)) with the batch's statistics. stats[5][C] receives the batch mean,
 * the biased variance, a = gamma * invstd, beta, and invstd (what backward needs).
 */
int litepose_bn_forward(const float *x, float *y, const float *gamma, const float *beta, double eps, int64_t M,
                        int C, int act, float *stats, int nthreads) {
    double *s = malloc(2 * (size_t)C * sizeof(double));
    if (!s) return -1;
    double *q = s + C;
    /* shift: the first row, close to the mean for typical activations */
    if (bn_sums(x, x, M, C, s, q, nthreads)) {
        free(s);
        return -1;
    }
    float *mean = stats, *var = stats + C, *a = stats + 2 * C, *b = stats + 3 * C, *invstd = stats + 4 * C;
    for (int c = 0; c < C; c++) {
        const double d = s[c] / (double)M;
        double v = q[c] / (double)M - d * d;
        if (v < 0) v = 0;
        const double m = (double)x[c] + d, is = 1.0 / sqrt(v + eps);
        const double ac = (double)gamma[c] * is;
        mean[c] = (float)m;
        var[c] = (float)v;
        invstd[c] = (float)is;
        a[c] = (float)ac;
        b[c] = beta[c];
    }
    free(s);
    return bn_act_forward(x, y, mean, a, b, M, C, act, nthreads);
}

/*
 * Backward from the forward's stats: grads[2][C] receives dgamma and dbeta; dx (may be NULL) the
 * input gradient.
 */
int litepose_bn_backward(const float *x, const float *dy, float *dx, const float *stats, int64_t M, int C, int act,
                         float *grads, int nthreads) {
    const float *mean = stats, *a = stats + 2 * C, *b = stats + 3 * C, *invstd = stats + 4 * C;
    double *s = malloc(2 * (size_t)C * sizeof(double));
    float *k = malloc(2 * (size_t)C * sizeof(float));
    if (!s || !k) {
        free(s);
        free(k);
        return -1;
    }
    double *q = s + C;
    if (bn_act_backward_sums(x, dy, a, b, mean, M, C, act, s, q, nthreads)) {
        free(s);
        free(k);
        return -1;
    }
    float *k1 = k, *k0 = k + C;
    for (int c = 0; c < C; c++) {
        const double dgamma = q[c] * (double)invstd[c], dbeta = s[c];
        grads[c] = (float)dgamma;
        grads[C + c] = (float)dbeta;
        k1[c] = (float)(-(double)a[c] * (double)invstd[c] * dgamma / (double)M);
        k0[c] = (float)(-(double)a[c] * dbeta / (double)M);
    }
    int rc = 0;
    if (dx) rc = bn_act_backward_dx(x, dy, dx, a, b, mean, k1, k0, M, C, act, nthreads);
    free(s);
    free(k);
    return rc;
}

int litepose_bn_abi_version(void) { return 3; }
