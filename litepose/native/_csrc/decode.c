/* Kernels of the grouping decoder (litepose/decode): each computes exactly what its Python
 * version computes (the same IEEE operations in the same order), only faster; the Python versions
 * stay, and are used when this library is unavailable.
 *
 * No contraction of a * b + c into one fused multiply-add: numpy rounds the product first. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX__) || defined(__SSE4_1__)
#include <immintrin.h>
#endif

int litepose_decode_abi_version(void) { return 2; }

/* The minimum-cost assignment of litepose/decode/assignment.py (_min_cost_assignment_py): the same
 * algorithm, float64 operations and tie-breaking, so the same columns. Warm start (each row reduced
 * by its minimum takes the first free column at that minimum), then a shortest augmenting path
 * (Dijkstra with row / column potentials) per row left over, first column on ties. */

/* cost: (n, m) row-major float64, n <= m, finite. col: out, n ints. Returns 0, or -1 (no memory,
 * or a step found no column: not for finite costs), and then col is not to be used. */
/* Insert row `row` along a shortest augmenting path (Dijkstra over reduced costs; column m is the
 * virtual start column), first column on ties. Returns 0, or -1 when a step finds no column. */
static int augment(const double *cost, int m, int row, double *u, double *v, double *minv, int *owner, int *way,
                   char *used) {
    owner[m] = row;
    int j0 = m;
    for (int j = 0; j <= m; j++) {
        minv[j] = INFINITY;
        used[j] = 0;
    }
    for (;;) {
        used[j0] = 1;
        int i0 = owner[j0];
        double ui = u[i0];
        const double *r = cost + (size_t)i0 * m;
        for (int j = 0; j < m; j++) {
            if (!used[j]) {
                double cur = r[j] - ui - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
            }
        }
        double delta = INFINITY;
        int j1 = -1;
        for (int j = 0; j < m; j++) {
            if (!used[j] && minv[j] < delta) {
                delta = minv[j];
                j1 = j;
            }
        }
        if (j1 < 0) return -1;
        for (int j = 0; j <= m; j++) {
            if (used[j]) {
                u[owner[j]] += delta;
                v[j] -= delta;
            } else if (minv[j] != INFINITY) {
                minv[j] -= delta;
            }
        }
        j0 = j1;
        if (owner[j0] == -1) break;
    }
    while (j0 != m) { /* flip the augmenting path */
        int j1 = way[j0];
        owner[j0] = owner[j1];
        j0 = j1;
    }
    return 0;
}

int litepose_min_cost_assignment(const double *cost, int n, int m, int *col) {
    double *u = calloc((size_t)n + 1, sizeof(double));
    double *v = calloc((size_t)m + 1, sizeof(double));
    double *minv = malloc(((size_t)m + 1) * sizeof(double));
    int *owner = malloc(((size_t)m + 1) * sizeof(int));
    int *way = calloc((size_t)m + 1, sizeof(int));
    int *left = malloc(((size_t)n + 1) * sizeof(int));
    char *used = malloc((size_t)m + 1);
    int rc = 0, nleft = 0;
    if (!u || !v || !minv || !owner || !way || !left || !used) {
        rc = -1;
        goto done;
    }
    for (int j = 0; j <= m; j++) owner[j] = -1;
    for (int i = 0; i < n; i++) { /* warm start */
        const double *row = cost + (size_t)i * m;
        double low = row[0];
        for (int j = 1; j < m; j++)
            if (row[j] < low) low = row[j];
        u[i] = low;
        int taken = 0;
        for (int j = 0; j < m && !taken; j++) {
            if (row[j] == low && owner[j] == -1) {
                owner[j] = i;
                taken = 1;
            }
        }
        if (!taken) left[nleft++] = i;
    }
    for (int l = 0; l < nleft && rc == 0; l++) rc = augment(cost, m, left[l], u, v, minv, owner, way, used);
    for (int i = 0; i < n; i++) col[i] = -1;
    for (int j = 0; j < m; j++)
        if (owner[j] >= 0) col[owner[j]] = j;
done:
    free(u);
    free(v);
    free(minv);
    free(owner);
    free(way);
    free(left);
    free(used);
    return rc;
}

/* Squared tag distance of one pixel to one mean tag, as numpy computes it in float32:
 * (t0 - m0)^2, then + (tc - mc)^2 for each further channel, each product rounded. */
static inline float sq_distance(const float *t, int64_t sc, const float *m, int L) {
    float e = t[0] - m[0];
    float s = e * e;
    for (int c = 1; c < L; c++) {
        e = t[c * sc] - m[c];
        float q = e * e;
        s = s + q;
    }
    return s;
}

/* Squared distances of n pixels' tags (at tag + idx[p] * sp, channel stride sc) to one mean tag:
 * for the tests, which compare them with numpy's bit for bit. */
int litepose_tag_sq(const float *tag, const int64_t *idx, int64_t n, int64_t sp, int64_t sc, int L,
                    const float *mean, float *out) {
    for (int64_t p = 0; p < n; p++) out[p] = sq_distance(tag + idx[p] * sp, sc, mean, L);
    return 0;
}

/* Block summaries for refine's search: per block, the largest heatmap value and per tag channel
 * the smallest and largest tag (channel c of the tags at lo / hi + c * nb). */
typedef struct {
    int ny, nx, nb;
    float *dmax, *lo, *hi;
} Blocks;

/* The upper bound of the scores in block k for mean tag m: its largest heatmap value minus the
 * rounded distance of m to the box of its tags. Float rounding is monotone, so this bounds the
 * float32 scores as computed (same operations, in the same order, on values at least as close). */
static inline float block_bound(const Blocks *B, int k, const float *m, int L) {
    float s = 0.0f;
    for (int c = 0; c < L; c++) {
        float t0 = B->lo[(int64_t)c * B->nb + k], t1 = B->hi[(int64_t)c * B->nb + k], mc = m[c];
        float e = mc < t0 ? t0 - mc : (mc > t1 ? t1 - mc : 0.0f);
        float q = e * e;
        s = c == 0 ? q : s + q;
    }
    return B->dmax[k] - rintf(sqrtf(s));
}

/* block_bound of every block into ub: 8 blocks at a time with AVX where the compiler targets it
 * (the same IEEE operations: correctly rounded square root, rounding to nearest even). */
static void all_bounds(const Blocks *B, const float *m, int L, float *ub) {
    int k = 0;
#if defined(__AVX__)
    for (; k + 8 <= B->nb; k += 8) {
        __m256 s = _mm256_setzero_ps(), zero = _mm256_setzero_ps();
        for (int c = 0; c < L; c++) {
            __m256 t0 = _mm256_loadu_ps(B->lo + (int64_t)c * B->nb + k);
            __m256 t1 = _mm256_loadu_ps(B->hi + (int64_t)c * B->nb + k);
            __m256 mc = _mm256_set1_ps(m[c]);
            __m256 below = _mm256_cmp_ps(mc, t0, _CMP_LT_OQ), above = _mm256_cmp_ps(mc, t1, _CMP_GT_OQ);
            __m256 e = _mm256_blendv_ps(_mm256_blendv_ps(zero, _mm256_sub_ps(t1, mc), above),
                                        _mm256_sub_ps(t0, mc), below);
            __m256 q = _mm256_mul_ps(e, e);
            s = c == 0 ? q : _mm256_add_ps(s, q);
        }
        __m256 r = _mm256_round_ps(_mm256_sqrt_ps(s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_ps(ub + k, _mm256_sub_ps(_mm256_loadu_ps(B->dmax + k), r));
    }
#endif
    for (; k < B->nb; k++) ub[k] = block_bound(B, k, m, L);
}

/* Summaries of the SUB x SUB pixel blocks: per band of SUB rows, the column-wise extremes (long
 * loops over x), then per block the extremes of its columns. Returns 1 when a value is a NaN or
 * an infinity (the caller then falls back to numpy, whose NaN ordering this does not reproduce). */
/* Column-wise extremes of 4 rows (a band; a shorter band repeats its last row), with their
 * exponent-all-ones flags or-ed (a NaN or an infinity). One pass, vectorised where step is 1. */
static inline uint32_t band_extremes(const float *r0, const float *r1, const float *r2, const float *r3,
                                     int64_t step, int w, float *colmax, float *colmin) {
    uint32_t odd = 0;
    for (int x = 0; x < w; x++) {
        float a = r0[x * step], b = r1[x * step], c = r2[x * step], e = r3[x * step];
        uint32_t ba, bb, bc, be;
        memcpy(&ba, &a, 4);
        memcpy(&bb, &b, 4);
        memcpy(&bc, &c, 4);
        memcpy(&be, &e, 4);
        odd |= ((ba & 0x7f800000u) == 0x7f800000u) | ((bb & 0x7f800000u) == 0x7f800000u) |
               ((bc & 0x7f800000u) == 0x7f800000u) | ((be & 0x7f800000u) == 0x7f800000u);
        float hi1 = a > b ? a : b, hi2 = c > e ? c : e, lo1 = a < b ? a : b, lo2 = c < e ? c : e;
        colmax[x] = hi1 > hi2 ? hi1 : hi2;
        colmin[x] = lo1 < lo2 ? lo1 : lo2;
    }
    return odd;
}

#define SUB 4
#define SUPER 4 /* sub-blocks per super block side: 16 x 16 pixels */

static int summarise(Blocks *B, const float *d, const float *tag, int64_t sy, int64_t sx, int64_t sc, int h,
                     int w, int L, float *colmax, float *colmin) {
    uint32_t odd = 0;
    for (int by = 0; by < B->ny; by++) {
        int y0 = by * SUB, y1 = y0 + SUB < h ? y0 + SUB : h;
        for (int plane = 0; plane <= L; plane++) { /* plane 0: the heatmap, then the tag channels */
            const float *rows[SUB];
            for (int i = 0; i < SUB; i++) {
                int y = y0 + i < y1 ? y0 + i : y1 - 1;
                rows[i] = plane == 0 ? d + (int64_t)y * w : tag + y * sy + (plane - 1) * sc;
            }
            float *bmax = plane == 0 ? B->dmax + by * B->nx : B->hi + (int64_t)(plane - 1) * B->nb + by * B->nx;
            float *bmin = plane == 0 ? NULL : B->lo + (int64_t)(plane - 1) * B->nb + by * B->nx;
            if (plane == 0 || sx == 1) /* (the same loop, vectorised) */
                odd |= band_extremes(rows[0], rows[1], rows[2], rows[3], 1, w, colmax, colmin);
            else
                odd |= band_extremes(rows[0], rows[1], rows[2], rows[3], sx, w, colmax, colmin);
            int full = w / SUB; /* whole blocks: 4 columns each, vectorised */
            for (int bx = 0; bx < full; bx++) {
                const float *a = colmax + bx * SUB;
                float p = a[0] > a[1] ? a[0] : a[1], q = a[2] > a[3] ? a[2] : a[3];
                bmax[bx] = p > q ? p : q;
            }
            if (bmin)
                for (int bx = 0; bx < full; bx++) {
                    const float *a = colmin + bx * SUB;
                    float p = a[0] < a[1] ? a[0] : a[1], q = a[2] < a[3] ? a[2] : a[3];
                    bmin[bx] = p < q ? p : q;
                }
            for (int bx = full; bx < B->nx; bx++) { /* the last, narrower block */
                int x0 = bx * SUB, x1 = x0 + SUB < w ? x0 + SUB : w, k = by * B->nx + bx;
                float mn = INFINITY, mx = -INFINITY;
                for (int x = x0; x < x1; x++) {
                    mx = colmax[x] > mx ? colmax[x] : mx;
                    mn = colmin[x] < mn ? colmin[x] : mn;
                }
                if (plane == 0) {
                    B->dmax[k] = mx;
                } else {
                    B->lo[(int64_t)(plane - 1) * B->nb + k] = mn;
                    B->hi[(int64_t)(plane - 1) * B->nb + k] = mx;
                }
            }
        }
    }
    return odd != 0;
}

/* Super block summaries from the sub-block ones. */
/* The largest (or smallest: sign -1) of each SUPER x SUPER group of a (ny, nx) grid b into u: per
 * row of the grid, the extremes of its groups of SUPER (short dependency chains), then over the
 * group's rows. */
static void merge_grid(const float *restrict b, int ny, int nx, float *restrict u, int unx, int sign) {
    int full = nx / SUPER;
    for (int Y = 0; Y * SUPER < ny; Y++) {
        int y0 = Y * SUPER, y1 = y0 + SUPER < ny ? y0 + SUPER : ny;
        float *out = u + (int64_t)Y * unx;
        for (int by = y0; by < y1; by++) {
            const float *row = b + (int64_t)by * nx;
            for (int X = 0; X < unx; X++) {
                int x0 = X * SUPER, x1 = X < full ? x0 + SUPER : nx;
                float acc = row[x0];
                if (X < full && SUPER == 4) {
                    float p = sign > 0 ? (row[x0 + 1] > row[x0] ? row[x0 + 1] : row[x0])
                                       : (row[x0 + 1] < row[x0] ? row[x0 + 1] : row[x0]);
                    float q = sign > 0 ? (row[x0 + 3] > row[x0 + 2] ? row[x0 + 3] : row[x0 + 2])
                                       : (row[x0 + 3] < row[x0 + 2] ? row[x0 + 3] : row[x0 + 2]);
                    acc = sign > 0 ? (q > p ? q : p) : (q < p ? q : p);
                } else {
                    for (int bx = x0 + 1; bx < x1; bx++)
                        acc = sign > 0 ? (row[bx] > acc ? row[bx] : acc) : (row[bx] < acc ? row[bx] : acc);
                }
                out[X] = by == y0 ? acc : (sign > 0 ? (acc > out[X] ? acc : out[X]) : (acc < out[X] ? acc : out[X]));
            }
        }
    }
}

static void merge_blocks(Blocks *U, const Blocks *B, int L) {
    merge_grid(B->dmax, B->ny, B->nx, U->dmax, U->nx, 1);
    for (int c = 0; c < L; c++) {
        merge_grid(B->lo + (int64_t)c * B->nb, B->ny, B->nx, U->lo + (int64_t)c * U->nb, U->nx, -1);
        merge_grid(B->hi + (int64_t)c * B->nb, B->ny, B->nx, U->hi + (int64_t)c * U->nb, U->nx, 1);
    }
}

typedef struct {
    float best;
    int64_t at;
} Best;

/* Score the pixels of sub-block k; keep the highest score, the first pixel in raster order on ties. */
#if defined(__SSE4_1__) && SUB == 4
/* scan of a whole sub-block whose tags are contiguous along x (sx 1): 4 pixels at a time, the same
 * IEEE operations (correctly rounded square root, rounding to nearest even); the block's highest
 * score and its first pixel in raster order, then the same rule as scan's. */
static void scan4(Best *r, const float *d, const float *tag, int64_t sy, int64_t sc, int w, int L, const float *m,
                  int y0, int x0) {
    __m128 f[SUB];
    for (int i = 0; i < SUB; i++) {
        const float *t = tag + (y0 + i) * sy + x0;
        __m128 e = _mm_sub_ps(_mm_loadu_ps(t), _mm_set1_ps(m[0]));
        __m128 s = _mm_mul_ps(e, e);
        for (int c = 1; c < L; c++) {
            e = _mm_sub_ps(_mm_loadu_ps(t + c * sc), _mm_set1_ps(m[c]));
            s = _mm_add_ps(s, _mm_mul_ps(e, e));
        }
        __m128 rr = _mm_round_ps(_mm_sqrt_ps(s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        f[i] = _mm_sub_ps(_mm_loadu_ps(d + (int64_t)(y0 + i) * w + x0), rr);
    }
    __m128 mx = _mm_max_ps(_mm_max_ps(f[0], f[1]), _mm_max_ps(f[2], f[3]));
    mx = _mm_max_ps(mx, _mm_shuffle_ps(mx, mx, _MM_SHUFFLE(2, 3, 0, 1)));
    mx = _mm_max_ps(mx, _mm_shuffle_ps(mx, mx, _MM_SHUFFLE(1, 0, 3, 2)));
    float top = _mm_cvtss_f32(mx);
    if (top < r->best) return;
    for (int i = 0; i < SUB; i++) {
        int hit = _mm_movemask_ps(_mm_cmpeq_ps(f[i], mx));
        if (hit) {
            int64_t p = (int64_t)(y0 + i) * w + x0 + __builtin_ctz((unsigned)hit);
            if (top > r->best || p < r->at) {
                r->best = top;
                r->at = p;
            }
            return;
        }
    }
}
#endif

static void scan(Best *r, const Blocks *B, int k, const float *d, const float *tag, int64_t sy, int64_t sx,
                 int64_t sc, int h, int w, int L, const float *m) {
    int y0 = (k / B->nx) * SUB, x0 = (k % B->nx) * SUB;
    int y1 = y0 + SUB < h ? y0 + SUB : h, x1 = x0 + SUB < w ? x0 + SUB : w;
#if defined(__SSE4_1__) && SUB == 4
    if (sx == 1 && y1 - y0 == SUB && x1 - x0 == SUB) {
        scan4(r, d, tag, sy, sc, w, L, m, y0, x0);
        return;
    }
#endif
    for (int y = y0; y < y1; y++) {
        for (int x = x0; x < x1; x++) {
            int64_t p = (int64_t)y * w + x;
            float f = d[p] - rintf(sqrtf(sq_distance(tag + y * sy + x * sx, sc, m, L)));
            if (f > r->best || (f == r->best && p < r->at)) {
                r->best = f;
                r->at = p;
            }
        }
    }
}

/* Visit super block K: score its sub-blocks whose bound reaches the best score so far, in raster
 * order (the bounds of 2 rows of 4 sub-blocks at a time with AVX: block_bound's IEEE operations). */
static void visit(Best *r, const Blocks *U, const Blocks *B, int K, const float *d, const float *tag,
                  int64_t sy, int64_t sx, int64_t sc, int h, int w, int L, const float *m) {
    int by0 = (K / U->nx) * SUPER, bx0 = (K % U->nx) * SUPER;
#if defined(__AVX__) && SUPER == 4
    if (bx0 + 4 <= B->nx && by0 + 4 <= B->ny) { /* 2 rows of 4 sub-blocks at a time */
        for (int by = by0; by < by0 + 4; by += 2) {
            int k = by * B->nx + bx0;
            __m256 s = _mm256_setzero_ps(), zero = _mm256_setzero_ps();
            for (int c = 0; c < L; c++) {
                const float *lo = B->lo + (int64_t)c * B->nb + k, *hi = B->hi + (int64_t)c * B->nb + k;
                __m256 t0 = _mm256_loadu2_m128(lo + B->nx, lo), t1 = _mm256_loadu2_m128(hi + B->nx, hi);
                __m256 mc = _mm256_set1_ps(m[c]);
                __m256 below = _mm256_cmp_ps(mc, t0, _CMP_LT_OQ), above = _mm256_cmp_ps(mc, t1, _CMP_GT_OQ);
                __m256 e = _mm256_blendv_ps(_mm256_blendv_ps(zero, _mm256_sub_ps(t1, mc), above), _mm256_sub_ps(t0, mc), below);
                __m256 q = _mm256_mul_ps(e, e);
                s = c == 0 ? q : _mm256_add_ps(s, q);
            }
            __m256 rr = _mm256_round_ps(_mm256_sqrt_ps(s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m256 ub = _mm256_sub_ps(_mm256_loadu2_m128(B->dmax + k + B->nx, B->dmax + k), rr);
            float u[8];
            _mm256_storeu_ps(u, ub);
            for (unsigned bits = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(ub, _mm256_set1_ps(r->best), _CMP_GE_OQ));
                 bits; bits &= bits - 1) {
                int i = __builtin_ctz(bits);
                if (u[i] >= r->best) scan(r, B, k + (i >> 2) * B->nx + (i & 3), d, tag, sy, sx, sc, h, w, L, m);
            }
        }
        return;
    }
#endif
    for (int by = by0; by < by0 + SUPER && by < B->ny; by++)
        for (int bx = bx0; bx < bx0 + SUPER && bx < B->nx; bx++) {
            int k = by * B->nx + bx;
            if (block_bound(B, k, m, L) >= r->best) scan(r, B, k, d, tag, sy, sx, sc, h, w, L, m);
        }
}

/* Refine's search (litepose/decode/grouping.py, _search_dense): for each of n mean tags (n, L),
 * the first pixel in raster order of the highest score d - rint(sqrt(squared tag distance)) over
 * the (h, w) heatmap d (contiguous) and tags (element strides sy, sx, sc), into out.
 *
 * Exact by bounds (block_bound) on 16 x 16 super blocks of 4 x 4 sub-blocks: the super block of the
 * highest bound is visited first, then those within 0.25 of it, then every other one whose bound
 * reaches the best score so far; a block left out scores below the best, strictly, so it cannot
 * even tie. Returns 0; 1 when a value
 * is not finite (the caller falls back to numpy); -1 without memory. */
int litepose_refine_search(const float *d, const float *tag, int64_t sy, int64_t sx, int64_t sc, int h,
                           int w, int L, const float *means, int n, int64_t *out) {
    Blocks B = {(h + SUB - 1) / SUB, (w + SUB - 1) / SUB, 0, NULL, NULL, NULL};
    B.nb = B.ny * B.nx;
    Blocks U = {(B.ny + SUPER - 1) / SUPER, (B.nx + SUPER - 1) / SUPER, 0, NULL, NULL, NULL};
    U.nb = U.ny * U.nx;
    float *mem = malloc(((size_t)(B.nb + U.nb) * (1 + 2 * (size_t)L) + U.nb + 2 * (size_t)w) * sizeof(float));
    if (!mem) return -1;
    B.dmax = mem;
    B.lo = B.dmax + B.nb;
    B.hi = B.lo + (size_t)L * B.nb;
    U.dmax = B.hi + (size_t)L * B.nb;
    U.lo = U.dmax + U.nb;
    U.hi = U.lo + (size_t)L * U.nb;
    float *uub = U.hi + (size_t)L * U.nb, *colmax = uub + U.nb, *colmin = colmax + w;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        for (int c = 0; c < L; c++)
            if (!isfinite(means[(int64_t)i * L + c])) rc = 1;
    if (rc == 0 && n > 0) rc = summarise(&B, d, tag, sy, sx, sc, h, w, L, colmax, colmin);
    if (rc == 0 && n > 0) {
        merge_blocks(&U, &B, L);
        for (int i = 0; i < n; i++) {
            const float *m = means + (int64_t)i * L;
            int top = 0;
            all_bounds(&U, m, L, uub);
            for (int K = 1; K < U.nb; K++)
                if (uub[K] > uub[top]) top = K;
            Best r = {-INFINITY, -1};
            visit(&r, &U, &B, top, d, tag, sy, sx, sc, h, w, L, m);
            /* a rough sort, cheaper than sorting: first the blocks within 0.25 of the highest bound
             * (the best score rises sooner, so fewer blocks reach it), then all the others */
            float cut = uub[top] - 0.25f;
            uub[top] = -INFINITY;
            for (int K = 0; K < U.nb; K++) {
                if (uub[K] >= cut && uub[K] >= r.best) {
                    visit(&r, &U, &B, K, d, tag, sy, sx, sc, h, w, L, m);
                    uub[K] = -INFINITY;
                }
            }
            for (int K = 0; K < U.nb; K++)
                if (uub[K] >= r.best) visit(&r, &U, &B, K, d, tag, sy, sx, sc, h, w, L, m);
            out[i] = r.at;
        }
    }
    free(mem);
    return rc;
}

/* Whether any of 16 values is above t (vector compares where the compiler has them). */
static inline int any_above(const float *v, float t) {
#if defined(__GNUC__) || defined(__clang__)
    typedef float f8 __attribute__((vector_size(32)));
    typedef int i8 __attribute__((vector_size(32)));
    f8 a, b, tt = {t, t, t, t, t, t, t, t};
    memcpy(&a, v, 32);
    memcpy(&b, v + 8, 32);
    i8 m = (a > tt) | (b > tt);
    int64_t q[4];
    memcpy(q, &m, 32);
    return (q[0] | q[1] | q[2] | q[3]) != 0;
#else
    int any = 0;
    for (int i = 0; i < 16; i++) any |= v[i] > t;
    return any;
#endif
}

/* Whether pixel x of row `row` (map m) is at least every pixel of its window inside the map. */
static inline int window_clear(const float *m, const float *row, int x, int w, int ya, int yb, int r) {
    float v = row[x];
    int xa = x - r > 0 ? x - r : 0, xb = x + r < w - 1 ? x + r : w - 1;
    for (int yy = ya; yy <= yb; yy++) {
        const float *nr = m + (int64_t)yy * w;
        for (int xx = xa; xx <= xb; xx++)
            if (!(v >= nr[xx])) return 0;
    }
    return 1;
}

/* The peaks of one (h, w) map m, in raster order: the pixels above `threshold` that are at least
 * every pixel of their (2r + 1)^2 window inside the map (the original's maxpool(x) == x), with the
 * same comparisons as numpy (so a NaN is never a peak). Writes their flat indices into out;
 * returns how many. */
static int64_t map_maxima(const float *m, int h, int w, float threshold, int r, int64_t *out) {
    int64_t n = 0;
    for (int y = 0; y < h; y++) {
        const float *row = m + (int64_t)y * w;
        int ya = y - r > 0 ? y - r : 0, yb = y + r < h - 1 ? y + r : h - 1;
        for (int x = 0; x < w; x++) {
#if defined(__AVX__)
            /* inside the map: 8 pixels at a time, the threshold and the 4 nearest neighbours with
             * the same ordered comparisons, then the whole window for the few that pass */
            if (r > 0 && y > 0 && y + 1 < h && x > 0 && x + 9 <= w) {
                __m256 v = _mm256_loadu_ps(row + x);
                __m256 ok = _mm256_cmp_ps(v, _mm256_set1_ps(threshold), _CMP_GT_OQ);
                if (_mm256_movemask_ps(ok)) {
                    ok = _mm256_and_ps(ok, _mm256_cmp_ps(v, _mm256_loadu_ps(row + x - 1), _CMP_GE_OQ));
                    ok = _mm256_and_ps(ok, _mm256_cmp_ps(v, _mm256_loadu_ps(row + x + 1), _CMP_GE_OQ));
                    ok = _mm256_and_ps(ok, _mm256_cmp_ps(v, _mm256_loadu_ps(row + x - w), _CMP_GE_OQ));
                    ok = _mm256_and_ps(ok, _mm256_cmp_ps(v, _mm256_loadu_ps(row + x + w), _CMP_GE_OQ));
                    for (unsigned bits = (unsigned)_mm256_movemask_ps(ok); bits; bits &= bits - 1) {
                        int xi = x + __builtin_ctz(bits);
                        if (window_clear(m, row, xi, w, ya, yb, r)) out[n++] = (int64_t)y * w + xi;
                    }
                }
                x += 7;
                continue;
            }
#endif
            if ((x & 15) == 0 && x + 16 <= w && !any_above(row + x, threshold)) {
                x += 15;
                continue;
            }
            float v = row[x];
            if (!(v > threshold)) continue;
            /* the 4 nearest neighbours first (they reject most pixels), then the whole window */
            if (r > 0 && ((x > 0 && !(v >= row[x - 1])) || (x + 1 < w && !(v >= row[x + 1])) ||
                          (y > 0 && !(v >= row[x - w])) || (y + 1 < h && !(v >= row[x + w]))))
                continue;
            if (window_clear(m, row, x, w, ya, yb, r)) out[n++] = (int64_t)y * w + x;
        }
    }
    return n;
}

/* find_peaks (litepose/decode/grouping.py): the peaks of the (k, h, w) maps (map_maxima), the `top`
 * strongest per joint, sorted by joint, then value (descending), then raster position, into joint,
 * y, x (int64) and val (float32), room for min(k * top, k * h * w) entries. Returns how many, or -1
 * without memory. */
int64_t litepose_peaks(const float *maps, int k, int h, int w, float threshold, int kernel, int64_t top,
                       int64_t *joint, int64_t *y, int64_t *x, float *val) {
    int64_t hw = (int64_t)h * w, n = 0;
    if (top < 1) return 0;
    int64_t *idx = malloc((size_t)(hw > 0 ? hw : 1) * sizeof(int64_t));
    int64_t *best = malloc((size_t)(top < hw ? top : hw > 0 ? hw : 1) * sizeof(int64_t));
    if (!idx || !best) {
        free(idx);
        free(best);
        return -1;
    }
    for (int j = 0; j < k; j++) {
        const float *m = maps + j * hw;
        int64_t found = map_maxima(m, h, w, threshold, kernel / 2, idx), kept = 0;
        for (int64_t i = 0; i < found; i++) { /* insertion into the `top` best (value, then position) */
            int64_t p = idx[i];
            float v = m[p];
            if (kept == top && !(v > m[best[kept - 1]])) continue; /* (raster order: an equal value is later) */
            int64_t at = kept < top ? kept++ : kept - 1;
            while (at > 0 && v > m[best[at - 1]]) {
                best[at] = best[at - 1];
                at--;
            }
            best[at] = p;
        }
        for (int64_t i = 0; i < kept; i++, n++) {
            joint[n] = j;
            y[n] = best[i] / w;
            x[n] = best[i] % w;
            val[n] = m[best[i]];
        }
    }
    free(idx);
    free(best);
    return n;
}

/* litepose_refine_search for the missing joints of every person at once: entry i is mean tag
 * means[i] searched on joint joint[i] of the (k, h, w) heatmaps d (contiguous) and the tags
 * (element strides sk, sy, sx, sc); joint is sorted. Returns as litepose_refine_search. */
int litepose_refine_search_joints(const float *d, const float *tag, int64_t sk, int64_t sy, int64_t sx, int64_t sc,
                                  int h, int w, int L, const float *means, const int64_t *joint, int n,
                                  int64_t *out) {
    for (int a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && joint[b] == joint[a]; b++) {
        }
        int rc = litepose_refine_search(d + joint[a] * (int64_t)h * w, tag + joint[a] * sk, sy, sx, sc, h, w, L,
                                        means + (int64_t)a * L, b - a, out + a);
        if (rc != 0) return rc;
    }
    return 0;
}

/* -- The merge of the network's two outputs (litepose/decode/testtime.py, _merge_arrays) --------
 *
 * The 1/4-resolution output (K heatmaps + K tags) is upsampled 2x to the 1/2-resolution one (K
 * heatmaps); the heatmaps of both are averaged; with flip test, the flipped outputs are mirrored
 * back and their joints permuted. One pass per plane instead of cv2.resize + numpy calls.
 *
 * The upsampling is cv2.resize's INTER_LINEAR (half-pixel centres) for float32 at scale 2, as
 * OpenCV computes it with fused multiply-adds: a horizontal pass s -> t, then a vertical one, each
 * output fma(b - a, f, a) from its two source values a, b and the weight f of b (0.75 or 0.25).
 * The first and last columns / rows lie beyond the source's centres: a column there is
 * fma(a - a, 0, a) of the first / last source value (so a -0.0 becomes +0.0, as in OpenCV), a row
 * there is the first / last row of the horizontal pass as it is. Checked bit for bit against cv2.resize
 * (tests/test_decode_kernels.py). Non-finite outputs and maps of one row or column (another path
 * in OpenCV) are left to cv2: the caller falls back. */

/* One row: s (w >= 2 values) -> o (2w values). */
static void up2_row(const float *restrict s, int w, float *restrict o) {
    o[0] = fmaf(s[0] - s[0], 0.0f, s[0]); /* (a -0.0 becomes +0.0, as in OpenCV) */
    for (int k = 1; k < w; k++) {
        float a = s[k - 1], d = s[k] - a;
        o[2 * k - 1] = fmaf(d, 0.25f, a);
        o[2 * k] = fmaf(d, 0.75f, a);
    }
    o[2 * w - 1] = fmaf(s[w - 1] - s[w - 1], 0.0f, s[w - 1]);
}

/* Output row from two horizontal rows a, b (n values) at weight f of b. */
static void lerp_rows(const float *restrict a, const float *restrict b, float f, int n, float *restrict o) {
    for (int x = 0; x < n; x++) o[x] = fmaf(b[x] - a[x], f, a[x]);
}

/* Write output row y: v = t (or (t + add) / 2 when add is given, numpy's float32 operations),
 * mirrored left-right when asked. Returns whether a value is not finite. */
static int put_row(const float *restrict t, const float *restrict add, int n, int mirror, float *restrict o) {
    uint32_t odd = 0;
    for (int x = 0; x < n; x++) {
        float v = add ? (t[x] + add[x]) / 2.0f : t[x];
        uint32_t b;
        memcpy(&b, &v, 4);
        odd |= (b & 0x7f800000u) == 0x7f800000u;
        o[mirror ? n - 1 - x : x] = v;
    }
    return odd != 0;
}

/* One (h, w) plane s (h, w >= 2) -> (2h, 2w) plane out, (up + add) / 2 when add (a (2h, 2w) plane)
 * is given, mirrored when asked. buf: 3 rows of 2w floats. Returns whether an output is not finite. */
static int up2_plane(const float *s, int h, int w, const float *add, int mirror, float *out, float *buf) {
    int W = 2 * w;
    float *prev = buf, *cur = buf + W, *t = buf + 2 * W;
    int odd = 0;
    up2_row(s, w, prev);
    up2_row(s + w, w, cur);
    odd |= put_row(prev, add, W, mirror, out); /* the first row: the first source row's */
    for (int k = 1; k < h; k++) { /* rows 2k - 1 and 2k from source rows k - 1 (prev) and k (cur) */
        if (k > 1) {
            float *swap = prev;
            prev = cur;
            cur = swap;
            up2_row(s + (int64_t)k * w, w, cur);
        }
        int64_t y = 2 * k - 1;
        lerp_rows(prev, cur, 0.25f, W, t);
        odd |= put_row(t, add ? add + y * W : NULL, W, mirror, out + y * W);
        lerp_rows(prev, cur, 0.75f, W, t);
        odd |= put_row(t, add ? add + (y + 1) * W : NULL, W, mirror, out + (y + 1) * W);
    }
    int64_t y = 2 * (int64_t)h - 1; /* the last row: the last source row's */
    odd |= put_row(cur, add ? add + y * W : NULL, W, mirror, out + y * W);
    return odd;
}

/* For n images: low (n, *, h, w) holds heatmaps from channel 0 and tags from channel tag_at (image
 * stride low_img elements), high (n, *, 2h, 2w) heatmaps from channel 0 (image stride high_img).
 * Output joint j (0 <= j < k) takes source joint perm[j] (perm NULL: j): hm plane j =
 * (up2(low heatmap) + high heatmap) / 2, tag plane j = up2(low tag), mirrored when asked; the
 * planes of image i at hm / tag + i * out_img. (A range of joints: perm and hm / tag moved to it.)
 * Returns 0; 1 when an output is not finite or h or w is 1 (the caller then merges with cv2, which
 * takes another path for a single row or column); -1 without memory. */
int litepose_merge_up2(const float *low, int64_t low_img, const float *high, int64_t high_img, int n, int k,
                       int tag_at, int h, int w, const int64_t *perm, int mirror, float *hm, float *tag,
                       int64_t out_img) {
    if (h < 2 || w < 2) return 1;
    float *buf = malloc(3 * 2 * (size_t)w * sizeof(float));
    if (!buf) return -1;
    int64_t hw = (int64_t)h * w, HW = 4 * hw;
    int odd = 0;
    for (int i = 0; i < n && !odd; i++) {
        const float *lo = low + i * low_img, *hi = high + i * high_img;
        for (int j = 0; j < k && !odd; j++) {
            int64_t c = perm ? perm[j] : j;
            odd |= up2_plane(lo + c * hw, h, w, hi + c * HW, mirror, hm + i * out_img + j * HW, buf);
            odd |= up2_plane(lo + (tag_at + c) * hw, h, w, NULL, mirror, tag + i * out_img + j * HW, buf);
        }
    }
    free(buf);
    return odd;
}

/* cv2.resize's 2x upsampling (as above) of n (h, w) planes into n (2h, 2w) planes. Returns as
 * litepose_merge_up2. */
int litepose_up2(const float *src, int64_t n, int h, int w, float *dst) {
    if (h < 2 || w < 2) return 1;
    float *buf = malloc(3 * 2 * (size_t)w * sizeof(float));
    if (!buf) return -1;
    int odd = 0;
    for (int64_t p = 0; p < n && !odd; p++) odd |= up2_plane(src + p * h * w, h, w, NULL, 0, dst + p * 4 * h * w, buf);
    free(buf);
    return odd;
}

/* -- Grouping (litepose/decode/grouping.py, _group_people without legacy) ------------------------
 *
 * Joint types in `order`; the candidates a..b of joint j (bounds[j], bounds[j + 1]) are matched to
 * the people found so far by minimum-cost assignment on round(||tag - mean tag||) * 100 - score
 * (float64, as numpy and Python floats compute it: (double)tag - (double)mean per channel, the
 * squares summed in channel order, for L <= 2 where numpy's and the Python loop's sums coincide),
 * rows squared up with 1e10 columns when there are more candidates than people; a match below
 * the tag threshold joins the person (float32 running sum of tags, count, mean = sum / count),
 * the others found new people in candidate order. min_cost_assignment's choices: each row's first
 * cheapest column when those are all different, else litepose_min_cost_assignment up to 30
 * columns, else SciPy's solver, which only Python can call: the kernel then stops, leaves the
 * cost matrix (n x m, row-major) in `cost` and returns 1; the caller solves it and calls again
 * with the columns in `cols`, and the kernel carries on where it stopped.
 *
 * state: [0] position in order of the next joint, [1] people found, [2] 1 when `cols` answers the
 * joint at state[0], [3] and [4] that joint's n and m. member: (candidates, k), -1 filled by the
 * caller. tsum, means: (candidates, L) float32; count: (candidates,) float32. cost, dist: scratch
 * of max(n) * candidates doubles each, kept between the calls. Returns 0 (done), 1 (solve `cost`),
 * -1 (no memory). */

static void join_person(int64_t p, int64_t c, int j, int k, int L, const float *tags, int64_t *member, float *tsum,
                        float *count, float *means) {
    member[p * k + j] = c;
    count[p] = count[p] + 1.0f;
    for (int l = 0; l < L; l++) {
        tsum[p * L + l] = tsum[p * L + l] + tags[c * L + l];
        means[p * L + l] = tsum[p * L + l] / count[p];
    }
}

int litepose_group_people(const int64_t *bounds, const int64_t *order, int k, const float *tags, int L,
                          const double *vals, double thr, int64_t *member, float *tsum, float *count, float *means,
                          int64_t *state, double *cost, double *dist, const int64_t *cols) {
    int64_t np_ = state[1];
    int *col = malloc((size_t)(bounds[k] > 0 ? bounds[k] : 1) * sizeof(int));
    if (!col) return -1;
    for (int64_t pos = state[0]; pos < k; pos++) {
        int j = (int)order[pos];
        int64_t a = bounds[j], n = bounds[j + 1] - a, m = np_ > n ? np_ : n;
        int resumed = state[2] == 1 && state[0] == pos;
        state[2] = 0;
        if (n == 0) continue;
        if (np_ > 0 && resumed) {
            for (int64_t r = 0; r < n; r++) col[r] = (int)cols[r];
        } else if (np_ > 0) {
            for (int64_t r = 0; r < n; r++) {
                const float *t = tags + (a + r) * L;
                for (int64_t c = 0; c < np_; c++) {
                    const float *mu = means + c * L;
                    double e = (double)t[0] - (double)mu[0], sq = e * e;
                    for (int l = 1; l < L; l++) {
                        double q = (double)t[l] - (double)mu[l];
                        sq = sq + q * q;
                    }
                    double dd = sqrt(sq);
                    dist[r * np_ + c] = dd;
                    cost[r * m + c] = rint(dd) * 100.0 - vals[a + r];
                }
                for (int64_t c = np_; c < m; c++) cost[r * m + c] = 1e10;
            }
            int distinct = 1; /* each row's first cheapest column; all different? */
            for (int64_t r = 0; r < n; r++) {
                const double *row = cost + r * m;
                int best = 0;
                for (int64_t c = 1; c < m; c++)
                    if (row[c] < row[best]) best = (int)c;
                col[r] = best;
                for (int64_t q = 0; q < r && distinct; q++)
                    if (col[q] == best) distinct = 0;
            }
            if (!distinct && m > 30) { /* SciPy's solver: the caller's */
                state[0] = pos;
                state[1] = np_;
                state[3] = n;
                state[4] = m;
                free(col);
                return 1;
            }
            if (!distinct && litepose_min_cost_assignment(cost, (int)n, (int)m, col) != 0) {
                free(col);
                return -1;
            }
        }
        int64_t before = np_;
        for (int64_t r = 0; r < n; r++) { /* joins first (people < before), then the new people in order */
            int64_t c = before > 0 ? col[r] : -1;
            if (c >= 0 && c < before && dist[r * before + c] < thr)
                join_person(c, a + r, j, k, L, tags, member, tsum, count, means);
        }
        for (int64_t r = 0; r < n; r++) {
            int64_t c = before > 0 ? col[r] : -1;
            if (c >= 0 && c < before && dist[r * before + c] < thr) continue;
            int64_t p = np_++, cand = a + r;
            member[p * k + j] = cand;
            count[p] = 1.0f;
            for (int l = 0; l < L; l++) tsum[p * L + l] = means[p * L + l] = tags[cand * L + l];
        }
    }
    free(col);
    state[0] = k;
    state[1] = np_;
    return 0;
}

/* -- Sub-pixel offsets (litepose/decode/grouping.py, _offsets with mode "parabola") --------------
 * Two steps around numpy's float32 log (whose bits only numpy gives): the neighbours, then the
 * parabola's vertex from their logs. */

/* For n peaks (joint k[i], row y[i], column x[i]) of the contiguous (K, h, w) maps d: the 6 rows of
 * out (each n long) = left, centre, right, up, centre, down (a neighbour beyond the border is the
 * peak itself), each raised to `floor` as np.maximum does (a NaN stays a NaN). */
int litepose_peak_neighbours(const float *d, int h, int w, const int64_t *k, const int64_t *y, const int64_t *x,
                             int64_t n, float floor, float *out) {
    for (int64_t i = 0; i < n; i++) {
        int64_t at = (k[i] * h + y[i]) * w + x[i];
        int64_t nb[6] = {at - (x[i] > 0), at, at + (x[i] < w - 1), at - w * (y[i] > 0), at, at + w * (y[i] < h - 1)};
        for (int q = 0; q < 6; q++) {
            float v = d[nb[q]];
            out[q * n + i] = v != v ? v : (v > floor ? v : floor);
        }
    }
    return 0;
}

/* From the 6 x n logs of litepose_peak_neighbours' rows: per axis, a, b, c = the logs at -1, 0, +1,
 * curv = 2b - a - c, offset = 0.5 (c - a) / curv where curv > 0 else 0, clipped to [-0.49, 0.49]
 * (a NaN stays), and 0 where the peak lies on the map's border along that axis: numpy's float32
 * operations in its order. */
int litepose_parabola_offsets(const float *logs, const int64_t *y, const int64_t *x, int64_t n, int h, int w,
                              float *ox, float *oy) {
    for (int64_t i = 0; i < n; i++) {
        for (int axis = 0; axis < 2; axis++) {
            float a = logs[(3 * axis) * n + i], b = logs[(3 * axis + 1) * n + i], c = logs[(3 * axis + 2) * n + i];
            float curv = 2.0f * b - a - c;
            float off = curv > 0 ? 0.5f * (c - a) / curv : 0.0f;
            off = off < -0.49f ? -0.49f : (off > 0.49f ? 0.49f : off);
            int inner = axis == 0 ? (x[i] > 0 && x[i] < w - 1) : (y[i] > 0 && y[i] < h - 1);
            (axis == 0 ? ox : oy)[i] = inner ? off : 0.0f;
        }
    }
    return 0;
}

/* The mean of two flips' heatmaps (litepose/decode/testtime.py, aggregate): (a + b) / 2 in float32,
 * numpy's operations, in one pass. */
int litepose_mean2(const float *a, const float *b, int64_t n, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = (a[i] + b[i]) / 2.0f;
    return 0;
}
