/*
 * Depthwise 2-D convolution gradients for litepose on CPU (float32).
 *
 * Why: oneDNN's depthwise weight gradient in channels_last runs several times slower than the
 * arithmetic needs on AVX2 CPUs, and it dominated LitePose training there. This file computes
 *
 *     dw[c, ky, kx] = sum_{n, oy, ox} x[n, c, oy*S - P + ky, ox*S - P + kx] * g[n, c, oy, ox]
 *
 * for square kernels K in {3, 5, 7}, stride S in {1, 2}, padding P = K / 2, dilation 1
 * (litepose_dw_wgrad), and the stride-1 input gradient (litepose_dw_dgrad, at the end).
 *
 * Weight gradient:
 * How:
 * - Channels are cut into blocks of LANES*V (V vectors of LANES = 8 or 16 floats, see LANES;
 *   V = 1 for what is left over).
 *   One work item is (image, group of consecutive blocks, band of output rows); the group is as
 *   wide as fits GROUP_BYTES (all channels when it can), so the item reads whole pixels and its
 *   memory traffic is sequential.
 * - An item walks down its band in chunks of R output rows. For each chunk it copies the new
 *   input rows into a ring of zero-padded rows per block ([col][8*V channels], so the inner loop
 *   needs no bounds checks) and the chunk's output-gradient rows into a small buffer. R is chosen
 *   so that one block's rows of a chunk fit CHUNK_BYTES (L1).
 * - For each block and kernel row ky, the K x V accumulator vectors of that row stay in registers
 *   while every pixel of the chunk is swept (per pixel: V gradient loads, K * V input loads and
 *   K * V FMAs). Input rows that are padding (outside the image) are skipped.
 * - Each chunk's sums start from zero and are added to a per-thread [K*K][C] accumulator (blocked
 *   summation: the float32 error grows with the chunk, not the whole batch); the threads'
 *   accumulators are summed at the end in a fixed order, so results are reproducible run to run
 *   for a given thread count.
 *
 * Tensors may have any strides; channels_last (pixels are contiguous channel vectors) is the fast
 * case. Built with -O3 -march=native -fopenmp; GCC/Clang vector extensions, no intrinsics. With
 * PyTorch's own libgomp already loaded (soname libgomp.so.1), the parallel regions run on
 * PyTorch's OpenMP thread pool.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
/* Predictive commoning would carry input vectors from pixel to pixel in registers, which spills
 * the accumulators; the loads are cheap L1 hits anyway. */
#pragma GCC optimize("no-predictive-commoning")
#endif

/* Floats per vector: one AVX-512 register where the CPU has it (this library is built with
 * -march=native), else one AVX2 register. 16 lanes took the kernels' share of an XS training step
 * (batch 16, 128 px) from ~55 to ~34 ms on an AVX-512 CPU; on AVX2 a 16-lane vector would be two
 * registers and the accumulators below would spill. */
#if defined(__AVX512F__)
#define LANES 16
#else
#define LANES 8
#endif
typedef float vfloat __attribute__((vector_size(LANES * sizeof(float))));

#ifndef GROUP_BYTES
#define GROUP_BYTES (256 * 1024) /* an item's ring and gradient rows, all its blocks (L2) */
#endif
#ifndef CHUNK_BYTES
#define CHUNK_BYTES (24 * 1024) /* one block's rows of one chunk (L1) */
#endif

/* Hide a pointer's origin from the optimiser, so that loads from it use immediate offsets instead
 * of hoisted offset registers (which spill). */
#if defined(__GNUC__)
#define OPAQUE(p) __asm__("" : "+r"(p))
#else
#define OPAQUE(p) ((void)0)
#endif

static inline vfloat load_u(const float *p) {
    vfloat v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* A per-thread scratch buffer, kept between calls (the OpenMP pool's threads persist). */
static __thread float *scratch_ptr;
static __thread size_t scratch_cap;

static float *scratch(size_t nfloats) {
    if (nfloats > scratch_cap) {
        free(scratch_ptr);
        size_t bytes = (nfloats * sizeof(float) + 63) & ~(size_t)63;
        scratch_ptr = aligned_alloc(64, bytes);
        scratch_cap = scratch_ptr ? nfloats : 0;
    }
    return scratch_ptr;
}

/* Strides of a 4-D tensor (N, C, H, W), in elements. */
typedef struct {
    int64_t n, c, h, w;
} strides4;

/* A channel block: channels [c0, c0 + cb) (cb = LANES * V; channels >= C are zero). */
typedef struct {
    int c0, cb;
} block;

/*
 * Copy row y of image n, for the channels of blocks blk[0..nb), into dst[j] (block j's row of wp
 * columns x cb_j channels): column px holds image column px - pad; columns outside the image and
 * channels >= C are zero.
 */
static void pack_row(const float *src, strides4 st, int n, int y, int C, int W, int pad, int wp, const block *blk,
                     int nb, float *const *dst) {
    const int lo = pad < wp ? pad : wp;
    const int hi = pad + W < wp ? pad + W : wp;
    for (int j = 0; j < nb; j++) {
        const size_t cb = (size_t)blk[j].cb;
        if (lo > 0) memset(dst[j], 0, lo * cb * sizeof(float));
        if (hi < wp) memset(dst[j] + hi * cb, 0, (wp - hi) * cb * sizeof(float));
    }
    const float *row = src + n * st.n + y * st.h;
    if (st.c == 1) {
        for (int px = lo; px < hi; px++) {
            const float *sp = row + (int64_t)(px - pad) * st.w;
            for (int j = 0; j < nb; j++) {
                const int c0 = blk[j].c0, cb = blk[j].cb;
                float *d = dst[j] + (size_t)px * cb;
                if (c0 + cb <= C) {
                    for (int v = 0; v < cb; v += LANES) *(vfloat *)(d + v) = load_u(sp + c0 + v);
                } else {
                    for (int c = 0; c < cb; c++) d[c] = c0 + c < C ? sp[c0 + c] : 0.0f;
                }
            }
        }
    } else {
        /* Channel-planar source (e.g. NCHW): read each channel's row sequentially. */
        for (int j = 0; j < nb; j++) {
            const int c0 = blk[j].c0, cb = blk[j].cb;
            const int cw = C - c0 < cb ? C - c0 : cb;
            float *d = dst[j];
            if (cw < cb)
                for (int px = lo; px < hi; px++) memset(d + (size_t)px * cb + cw, 0, (size_t)(cb - cw) * sizeof(float));
            for (int c = 0; c < cw; c++) {
                const float *sp = row + (int64_t)(c0 + c) * st.c - (int64_t)pad * st.w;
                for (int px = lo; px < hi; px++) d[(size_t)px * cb + c] = sp[px * st.w];
            }
        }
    }
}

/*
 * One block, one chunk: `rows` output rows whose gradient rows are gp[rows][wo][cb]; output row r
 * reads the padded input rows xrow[r*S + ky] ([wp][cb] each; NULL for a padding row, which adds
 * nothing). Adds the sums to acc[(ky * K + kx) * ldacc + channel].
 */
static inline __attribute__((always_inline)) void wgrad_chunk(const float *const *xrow, const float *restrict gp,
                                                              int rows, int wo, float *restrict acc, int ldacc,
                                                              const int K, const int V, const int S) {
    const int cb = V * LANES;
    for (int ky = 0; ky < K; ky++) {
        vfloat a[7][4];
#pragma GCC unroll 8
        for (int kx = 0; kx < K; kx++)
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) a[kx][v] = (vfloat){0}; /* the chunk's own sums: blocked summation */
        for (int r = 0; r < rows; r++) {
            const float *restrict xr = xrow[r * S + ky];
            if (!xr) continue;
            const float *gr = gp + (size_t)r * wo * cb;
            for (int ox = 0; ox < wo; ox++) {
                const float *xo = xr + (size_t)ox * S * cb;
                vfloat g[4];
#pragma GCC unroll 4
                for (int v = 0; v < V; v++) g[v] = *(const vfloat *)(gr + (size_t)ox * cb + v * LANES);
#pragma GCC unroll 8
                for (int kx = 0; kx < K; kx++)
#pragma GCC unroll 4
                    for (int v = 0; v < V; v++) a[kx][v] += *(const vfloat *)(xo + kx * cb + v * LANES) * g[v];
            }
        }
#pragma GCC unroll 8
        for (int kx = 0; kx < K; kx++)
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) *(vfloat *)(acc + (size_t)(ky * K + kx) * ldacc + v * LANES) += a[kx][v];
    }
}

typedef void (*chunk_fn)(const float *const *, const float *, int, int, float *, int);

#define DEFINE_CHUNK(K, V, S)                                                                                  \
    static void chunk_k##K##_v##V##_s##S(const float *const *xrow, const float *gp, int rows, int wo, float *acc, \
                                         int ldacc) {                                                           \
        wgrad_chunk(xrow, gp, rows, wo, acc, ldacc, K, V, S);                                                   \
    }

/* Wide blocks use K * V + V <= 16 vector registers (AVX2 has 16, AVX-512 32); V = 1 takes the
 * remaining channels. */
DEFINE_CHUNK(3, 4, 1)
DEFINE_CHUNK(3, 4, 2)
DEFINE_CHUNK(3, 1, 1)
DEFINE_CHUNK(3, 1, 2)
DEFINE_CHUNK(5, 2, 1)
DEFINE_CHUNK(5, 2, 2)
DEFINE_CHUNK(5, 1, 1)
DEFINE_CHUNK(5, 1, 2)
DEFINE_CHUNK(7, 2, 1)
DEFINE_CHUNK(7, 2, 2)
DEFINE_CHUNK(7, 1, 1)
DEFINE_CHUNK(7, 1, 2)

static int wide_vectors(int K) { return K == 3 ? 4 : 2; }

static chunk_fn pick_chunk(int K, int V, int S) {
#define PICK(k, v, s) \
    if (K == k && V == v && S == s) return chunk_k##k##_v##v##_s##s;
    PICK(3, 4, 1) PICK(3, 4, 2) PICK(3, 1, 1) PICK(3, 1, 2)
    PICK(5, 2, 1) PICK(5, 2, 2) PICK(5, 1, 1) PICK(5, 1, 2)
    PICK(7, 2, 1) PICK(7, 2, 2) PICK(7, 1, 1) PICK(7, 1, 2)
#undef PICK
    return NULL;
}

static int ceil_div(int64_t a, int64_t b) { return (int)((a + b - 1) / b); }

/* Version of the calling convention below; the Python side checks it. */
int litepose_dw_abi_version(void) { return 2; }

/*
 * Weight gradient of a depthwise conv (groups == C, padding K / 2, no dilation).
 *
 *   x:  input (N, C, H, W) with strides xs[4] (elements)
 *   g:  output gradient (N, C, Ho, Wo) with strides gs[4]
 *   dw: output, contiguous (C, 1, K, K); overwritten
 *
 * Returns 0 on success, 1 for unsupported arguments, 2 if memory ran out (dw is then unspecified
 * and the caller falls back).
 */
int litepose_dw_wgrad(const float *x, const int64_t *xs, const float *g, const int64_t *gs, float *dw, int N, int C,
                      int H, int W, int Ho, int Wo, int K, int S, int nthreads) {
    if ((K != 3 && K != 5 && K != 7) || (S != 1 && S != 2) || N < 1 || C < 1 || H < 1 || W < 1) return 1;
    const int P = K / 2;
    if (Ho != (H + 2 * P - K) / S + 1 || Wo != (W + 2 * P - K) / S + 1) return 1;
    const int VW = wide_vectors(K);
    const int cbw = VW * LANES;
    const chunk_fn wide_fn = pick_chunk(K, VW, S), narrow_fn = pick_chunk(K, 1, S);

    /* Channel blocks: wide ones, then 8-channel ones for the rest (the last may be partial). */
    const int nwide = C / cbw;
    const int nnarrow = ceil_div(C - nwide * cbw, LANES);
    const int nb = nwide + nnarrow;
    const int cpad = nwide * cbw + nnarrow * LANES;
    block *blocks = malloc((size_t)nb * sizeof(block));
    if (!blocks) return 2;
    for (int b = 0; b < nb; b++) {
        blocks[b].c0 = b < nwide ? b * cbw : nwide * cbw + (b - nwide) * LANES;
        blocks[b].cb = b < nwide ? cbw : LANES;
    }

    const int wp = (Wo - 1) * S + K; /* padded input columns the output columns read */
    /* Chunk rows R: one wide block's ring rows and gradient rows within CHUNK_BYTES. */
    const int64_t ring_base = (int64_t)(K - S) * wp * cbw * sizeof(float);
    const int64_t per_row = (int64_t)(S * wp + Wo) * cbw * sizeof(float);
    int R = CHUNK_BYTES > ring_base ? (int)((CHUNK_BYTES - ring_base) / per_row) : 1;
    if (R < 1) R = 1;
    if (R > Ho) R = Ho;
    const int cap = (R - 1) * S + K; /* ring rows: all rows one chunk reads */
    const int64_t floats_per_channel = (int64_t)cap * wp + (int64_t)R * Wo;
    /* Groups of blocks: as few as fit GROUP_BYTES. */
    int ngroups = ceil_div(floats_per_channel * cpad * (int64_t)sizeof(float), GROUP_BYTES);
    if (ngroups > nb) ngroups = nb;
    const int bpg = ceil_div(nb, ngroups);
    ngroups = ceil_div(nb, bpg);
    /* Bands of chunks: one per image and group unless that leaves threads idle. */
    if (nthreads < 1) nthreads = 1;
    const int nchunks = ceil_div(Ho, R);
    int nbands = 1;
    if ((int64_t)N * ngroups < 4 * (int64_t)nthreads) {
        nbands = ceil_div(4 * (int64_t)nthreads, (int64_t)N * ngroups);
        if (nbands > nchunks) nbands = nchunks;
    }
    const int cpb = ceil_div(nchunks, nbands);
    nbands = ceil_div(nchunks, cpb);
    const int64_t nitems = (int64_t)N * ngroups * nbands;
    if ((int64_t)nthreads > nitems) nthreads = (int)nitems;

    const size_t accfloats = (size_t)K * K * cpad;
    const size_t groupfloats = (size_t)floats_per_channel * bpg * cbw;
    const strides4 xst = {xs[0], xs[1], xs[2], xs[3]};
    const strides4 gst = {gs[0], gs[1], gs[2], gs[3]};
    float **accs = calloc((size_t)nthreads, sizeof(float *));
    if (!accs) {
        free(blocks);
        return 2;
    }
    int failed = 0;

#pragma omp parallel num_threads(nthreads)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        float *buf = scratch(accfloats + groupfloats);
        if (!buf) {
#pragma omp atomic write
            failed = 1;
        } else {
            accs[t] = buf;
            memset(buf, 0, accfloats * sizeof(float));
        }
        /* row pointers: block destinations of a packed input / gradient row, a chunk's input rows */
        float **xdst = malloc((2 * (size_t)bpg + cap) * sizeof(float *));
        float **gdst = xdst ? xdst + bpg : NULL;
        const float **xrow = xdst ? (const float **)(gdst + bpg) : NULL;
        if (!xdst) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t it = 0; it < nitems; it++) {
            if (!buf || !xdst) continue;
            const int band = (int)(it % nbands);
            const int grp = (int)(it / nbands % ngroups);
            const int n = (int)(it / nbands / ngroups);
            const block *blk = blocks + grp * bpg;
            const int gb = nb - grp * bpg < bpg ? nb - grp * bpg : bpg;
            /* Layout of the item's buffer: every block's ring, then every block's gradient rows. */
            float *ring0 = buf + accfloats;
            float *grad0 = ring0;
            for (int j = 0; j < gb; j++) grad0 += (size_t)cap * wp * blk[j].cb;
            const int ch0 = band * cpb;
            const int ch1 = ch0 + cpb < nchunks ? ch0 + cpb : nchunks;
            int have = ch0 * R * S; /* next padded input row to copy */
            for (int ch = ch0; ch < ch1; ch++) {
                const int oy0 = ch * R;
                const int rows = Ho - oy0 < R ? Ho - oy0 : R;
                const int pr_lo = oy0 * S, pr_hi = (oy0 + rows - 1) * S + K;
                for (int pr = have > pr_lo ? have : pr_lo; pr < pr_hi; pr++) {
                    const int iy = pr - P;
                    if (iy < 0 || iy >= H) continue;
                    float *r = ring0;
                    for (int j = 0; j < gb; j++) {
                        xdst[j] = r + (size_t)(pr % cap) * wp * blk[j].cb;
                        r += (size_t)cap * wp * blk[j].cb;
                    }
                    pack_row(x, xst, n, iy, C, W, P, wp, blk, gb, xdst);
                }
                have = pr_hi;
                for (int r = 0; r < rows; r++) {
                    float *q = grad0;
                    for (int j = 0; j < gb; j++) {
                        gdst[j] = q + (size_t)r * Wo * blk[j].cb;
                        q += (size_t)R * Wo * blk[j].cb;
                    }
                    pack_row(g, gst, n, oy0 + r, C, Wo, 0, Wo, blk, gb, gdst);
                }
                const float *rj = ring0, *qj = grad0;
                for (int j = 0; j < gb; j++) {
                    for (int i = 0; i < pr_hi - pr_lo; i++) {
                        const int iy = pr_lo + i - P;
                        xrow[i] = iy < 0 || iy >= H ? NULL : rj + (size_t)((pr_lo + i) % cap) * wp * blk[j].cb;
                    }
                    (blk[j].cb == cbw ? wide_fn : narrow_fn)(xrow, qj, rows, Wo, buf + blk[j].c0, cpad);
                    rj += (size_t)cap * wp * blk[j].cb;
                    qj += (size_t)R * Wo * blk[j].cb;
                }
            }
        }
        /* implicit barrier: every thread's sums are complete */
        if (!failed) {
#pragma omp for schedule(static)
            for (int c = 0; c < C; c++)
                for (int tap = 0; tap < K * K; tap++) {
                    float s = 0.0f;
                    for (int u = 0; u < nt; u++) s += accs[u][(size_t)tap * cpad + c];
                    dw[(size_t)c * K * K + tap] = s;
                }
        }
        free(xdst);
    }
    free(accs);
    free(blocks);
    return failed ? 2 : 0;
}

/* ------------------------------------------------------------------------------------------------
 * Input gradient, stride 1 (then Ho = H, Wo = W):
 *
 *     dx[n, c, y, x] = sum_{a, b} g[n, c, y - P + a, x - P + b] * w[c, K-1-a, K-1-b]
 *
 * Items are (image, group of blocks, band of rows) as above. An item keeps the K gradient rows
 * around its current output row in a ring of zero-padded rows per block, computes T pixels x V
 * vectors of the row at a time in registers over all K x K taps, and writes the row out.
 */

/* Copy row y of the item's blocks (rows src[j], [cols][cb_j]) to image n of dst. */
static void unpack_row(float *dst, strides4 st, int n, int y, int C, int W, const block *blk, int nb,
                       const float *const *src) {
    float *row = dst + n * st.n + y * st.h;
    if (st.c == 1) {
        for (int px = 0; px < W; px++) {
            float *dp = row + (int64_t)px * st.w;
            for (int j = 0; j < nb; j++) {
                const int c0 = blk[j].c0, cb = blk[j].cb;
                const float *s = src[j] + (size_t)px * cb;
                if (c0 + cb <= C) {
                    for (int v = 0; v < cb; v += LANES) memcpy(dp + c0 + v, s + v, sizeof(vfloat));
                } else {
                    for (int c = 0; c < C - c0; c++) dp[c0 + c] = s[c];
                }
            }
        }
    } else {
        for (int j = 0; j < nb; j++) {
            const int c0 = blk[j].c0, cb = blk[j].cb;
            const int cw = C - c0 < cb ? C - c0 : cb;
            for (int c = 0; c < cw; c++) {
                float *dp = row + (int64_t)(c0 + c) * st.c;
                for (int px = 0; px < W; px++) dp[px * st.w] = src[j][(size_t)px * cb + c];
            }
        }
    }
}

/*
 * One output row of one block: grow[a] is gradient row y - P + a ([cols][cb], column q = image
 * column q - P; NULL outside the image), wf the block's flipped weights [K*K][cb]. Writes wout
 * pixels (a multiple of T) to orow [wout][cb].
 */
static inline __attribute__((always_inline)) void dgrad_row(const float *const *grow, const float *restrict wf,
                                                            int wout, float *restrict orow, const int K, const int V,
                                                            const int T) {
    const int cb = V * LANES;
    for (int x0 = 0; x0 < wout; x0 += T) {
        vfloat acc[8][2];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
#pragma GCC unroll 2
            for (int v = 0; v < V; v++) acc[t][v] = (vfloat){0};
        for (int a = 0; a < K; a++) {
            const float *restrict gr = grow[a];
            if (!gr) continue;
            gr += (size_t)x0 * cb;
            OPAQUE(gr);
#pragma GCC unroll 8
            for (int b = 0; b < K; b++) {
                vfloat w[2];
#pragma GCC unroll 2
                for (int v = 0; v < V; v++) w[v] = *(const vfloat *)(wf + (a * K + b) * cb + v * LANES);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++)
#pragma GCC unroll 2
                    for (int v = 0; v < V; v++) acc[t][v] += *(const vfloat *)(gr + (size_t)(t + b) * cb + v * LANES) * w[v];
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
#pragma GCC unroll 2
            for (int v = 0; v < V; v++) *(vfloat *)(orow + (size_t)(x0 + t) * cb + v * LANES) = acc[t][v];
    }
}

typedef void (*drow_fn)(const float *const *, const float *, int, float *);

#define DEFINE_DROW(K, V, T)                                                                      \
    static void drow_k##K##_v##V(const float *const *grow, const float *wf, int wout, float *orow) { \
        dgrad_row(grow, wf, wout, orow, K, V, T);                                                  \
    }

/* T * V + V <= 16 vector registers; wide blocks (V = 2) take 4 pixels, narrow ones 8. */
DEFINE_DROW(3, 2, 4)
DEFINE_DROW(3, 1, 8)
DEFINE_DROW(5, 2, 4)
DEFINE_DROW(5, 1, 8)
DEFINE_DROW(7, 2, 4)
DEFINE_DROW(7, 1, 8)

/*
 * Input gradient of a stride-1 depthwise conv (groups == C, padding K / 2, no dilation).
 *
 *   g:  output gradient (N, C, H, W) with strides gs[4] (elements)
 *   w:  weight (C, 1, K, K) with strides ws[4]
 *   dx: output (N, C, H, W) with strides dxs[4]; every element is written
 *
 * Returns 0 on success, 1 for unsupported arguments, 2 if memory ran out.
 */
int litepose_dw_dgrad(const float *g, const int64_t *gs, const float *w, const int64_t *ws, float *dx,
                      const int64_t *dxs, int N, int C, int H, int W, int K, int nthreads) {
    if ((K != 3 && K != 5 && K != 7) || N < 1 || C < 1 || H < 1 || W < 1) return 1;
    const int P = K / 2;
    drow_fn wide_fn = K == 3 ? drow_k3_v2 : K == 5 ? drow_k5_v2 : drow_k7_v2;
    drow_fn narrow_fn = K == 3 ? drow_k3_v1 : K == 5 ? drow_k5_v1 : drow_k7_v1;
    const int cbw = 2 * LANES;
    const int nwide = C / cbw;
    const int nnarrow = ceil_div(C - nwide * cbw, LANES);
    const int nb = nwide + nnarrow;
    const int cpad = nwide * cbw + nnarrow * LANES;
    const int wout = ceil_div(W, 8) * 8; /* computed pixels per row: a multiple of both T */
    const int wq = wout + K - 1;          /* gradient row columns the computed pixels read */
    const int64_t floats_per_channel = (int64_t)K * wq + wout;
    int ngroups = ceil_div(floats_per_channel * cpad * (int64_t)sizeof(float), GROUP_BYTES);
    if (ngroups > nb) ngroups = nb;
    const int bpg = ceil_div(nb, ngroups);
    ngroups = ceil_div(nb, bpg);
    if (nthreads < 1) nthreads = 1;
    int nbands = 1;
    if ((int64_t)N * ngroups < 4 * (int64_t)nthreads) {
        nbands = ceil_div(4 * (int64_t)nthreads, (int64_t)N * ngroups);
        if (nbands > H) nbands = H;
    }
    const int rpb = ceil_div(H, nbands);
    nbands = ceil_div(H, rpb);
    const int64_t nitems = (int64_t)N * ngroups * nbands;
    if ((int64_t)nthreads > nitems) nthreads = (int)nitems;

    block *blocks = malloc((size_t)nb * sizeof(block));
    float *wf = aligned_alloc(64, ((size_t)K * K * cpad * sizeof(float) + 63) & ~(size_t)63);
    if (!blocks || !wf) {
        free(blocks);
        free(wf);
        return 2;
    }
    for (int b = 0; b < nb; b++) {
        blocks[b].c0 = b < nwide ? b * cbw : nwide * cbw + (b - nwide) * LANES;
        blocks[b].cb = b < nwide ? cbw : LANES;
    }
    /* flipped weights per block, channels innermost: block j at wf + K*K*c0, [a * K + b][cb] holds
     * w[c0 + i, 0, K-1-a, K-1-b] (zero for channels >= C) */
    for (int b = 0; b < nb; b++) {
        const int c0 = blocks[b].c0, cb = blocks[b].cb;
        for (int tap = 0; tap < K * K; tap++)
            for (int i = 0; i < cb; i++) {
                const int64_t ky = K - 1 - tap / K, kx = K - 1 - tap % K;
                wf[(size_t)K * K * c0 + (size_t)tap * cb + i] =
                    c0 + i < C ? w[(c0 + i) * ws[0] + ky * ws[2] + kx * ws[3]] : 0.0f;
            }
    }

    const strides4 gst = {gs[0], gs[1], gs[2], gs[3]};
    const strides4 dst = {dxs[0], dxs[1], dxs[2], dxs[3]};
    const size_t groupfloats = (size_t)floats_per_channel * bpg * cbw;
    int failed = 0;

#pragma omp parallel num_threads(nthreads)
    {
        float *buf = scratch(groupfloats);
        const float **ptrs = malloc((3 * (size_t)bpg + K) * sizeof(float *));
        if (!buf || !ptrs) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t it = 0; it < nitems; it++) {
            if (!buf || !ptrs) continue;
            const int band = (int)(it % nbands);
            const int grp = (int)(it / nbands % ngroups);
            const int n = (int)(it / nbands / ngroups);
            const block *blk = blocks + grp * bpg;
            const int gb = nb - grp * bpg < bpg ? nb - grp * bpg : bpg;
            float **pdst = (float **)ptrs;             /* ring slot of each block for a packed row */
            const float **orows = ptrs + bpg;          /* each block's output row */
            const float **rings = ptrs + 2 * bpg;      /* each block's ring */
            const float **grow = ptrs + 3 * bpg;       /* the K gradient rows of one block */
            float *p = buf;
            for (int j = 0; j < gb; j++) {
                rings[j] = p;
                p += (size_t)K * wq * blk[j].cb;
            }
            for (int j = 0; j < gb; j++) {
                orows[j] = p;
                p += (size_t)wout * blk[j].cb;
            }
            const int y0 = band * rpb;
            const int y1 = y0 + rpb < H ? y0 + rpb : H;
            int have = y0 - P; /* next gradient row to copy */
            for (int y = y0; y < y1; y++) {
                for (int r = have > y - P ? have : y - P; r <= y + P; r++) {
                    if (r < 0 || r >= H) continue;
                    for (int j = 0; j < gb; j++) pdst[j] = (float *)rings[j] + (size_t)(r % K) * wq * blk[j].cb;
                    pack_row(g, gst, n, r, C, W, P, wq, blk, gb, pdst);
                }
                have = y + P + 1;
                for (int j = 0; j < gb; j++) {
                    for (int a = 0; a < K; a++) {
                        const int r = y - P + a;
                        grow[a] = r < 0 || r >= H ? NULL : rings[j] + (size_t)(r % K) * wq * blk[j].cb;
                    }
                    (blk[j].cb == cbw ? wide_fn : narrow_fn)(grow, wf + (size_t)K * K * blk[j].c0, wout, (float *)orows[j]);
                }
                unpack_row(dx, dst, n, y, C, W, blk, gb, orows);
            }
        }
        free(ptrs);
    }
    free(wf);
    free(blocks);
    return failed ? 2 : 0;
}
