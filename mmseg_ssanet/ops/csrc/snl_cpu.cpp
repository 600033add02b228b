// Fused sparse non-local attention on the CPU (SSANet, eqs. 4-7).
// This comment is the one description of the algorithm (backends/cpp.py
// and docs/operator.md point here); the sampling geometry mirrors
// ops/sampling.py.
//
// Nothing of size N x K x C, no N x 4K coefficient matrix and no sparse
// matrix is written to memory. Queries are taken in tiles of kTile
// neighbours along a row, which share most of their sampling window:
//
//   1. for each query i = (b, y, x) of the tile, sampling point k at
//      (y, x) + grid_k + offset_k (eq. 4), its 4 bilinear corners and
//      weights (eq. 5, zero outside the map);
//   2. the tile's corners are merged into P distinct window pixels with a
//      slot map over their bounding box (8 queries x 81 points x 4 corners
//      = 2592 corners land on a few hundred pixels for offsets of a few
//      pixels);
//   3. D[p, t] = <q_t, key_p> for every window pixel and query: a small
//      dense product, each key row read once for the whole tile; logit_k =
//      scale * sum_c w_kc D[p(k, c), t] and the softmax S over k (eq. 6);
//   4. A[p, t] = sum over corners of query t on pixel p of S_k w_kc, and
//      out_t = sum_p A[p, t] value_p, each value row again read once per
//      tile, channels in register blocks (eq. 7).
//
// Backward recomputes 1-3 (cheaper than storing N x K) and needs no sort:
// key/value gradients are scattered per window pixel; each thread writes
// its own query range straight into the result and rows outside it into
// private halo buffers, added afterwards. The offset gradient comes from
// the bilinear weights' derivatives here, so no coefficients are stored.
// Dense products over the window do some multiplications with zero
// (pixels a query does not sample) in exchange for reading each row once:
// the kernel is bound by memory traffic, not arithmetic.
//
// Non-finite inputs. Those zeros would turn one NaN or infinity into NaN
// for every query of the tile (0 * NaN), where the equations (and
// grid_sample) reach only the queries that have that pixel among the four
// corners of one of their points, even with weight 0. So: where a key or
// value row holds one (a pass over both flags such pixels), the forward
// keeps corners of weight 0, and a tile whose window has a flagged value
// pixel (forward) or key pixel (query gradient) has its outputs summed
// corner by corner instead. The backward's scatter is the mirror image: a
// tile holding a flagged query row (key gradient) or grad_out row (value
// gradient) scatters corner by corner, to the pixels its queries sample.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

namespace {

// Hot loops compiled for AVX-512, AVX2+FMA and baseline x86-64, each with
// its own vector width (64, 32 and 16 bytes: 8 accumulators of two vectors
// each must fit the ISA's 32 zmm / 16 ymm / 16 xmm registers), picked at
// load time (portable builds, no -march=native); see "Variants" below.
// SNL_ISA (setup.py's SSANET_ISA) builds one of them alone, with -march, so
// that each variant can be tested on a CPU that would pick another.
#define SNL_INLINE inline __attribute__((always_inline))
// Out of line: the non-finite inputs' paths (rare), kept out of the tile
// loops' code.
#define SNL_RARE __attribute__((noinline))
#define SNL_STRINGIFY(x) #x
#define SNL_STRING(x) SNL_STRINGIFY(x)
// Lambdas too: one left out of line is compiled for the baseline target,
// outside the variant that calls it.
#define SNL_LAMBDA_INLINE __attribute__((always_inline))

constexpr int kTile = 8;     // queries per tile, along a row
constexpr int64_t kStrip = 64;  // columns per strip (see for_each_tile)
constexpr int kAhead = 6;       // window rows prefetched ahead
// A tile whose corners span a larger box (offsets far beyond the grid)
// is not merged: every corner is its own window pixel.
constexpr int64_t kMaxWindow = 8192;

template <typename T>
struct Tensor4 {  // [B, C, H, W] by strides; channel stride must be 1
  const T* data;
  int64_t sb, sy, sx;
  SNL_INLINE const T* row(int64_t b, int64_t y, int64_t x) const {
    return data + b * sb + y * sy + x * sx;
  }
};

template <typename T>
struct Problem {
  Tensor4<T> query, key, value;
  const T* offset;  // [B, 2K, H, W] by strides
  int64_t osb, osc, osy, osx;
  int64_t B, H, W, Cq, C, kh, kw, dh, dw;
  T scale;
  // per pixel (b * H * W + y * W + x), 1 where its key / value row holds
  // a NaN or an infinity; null where no row does (see the header)
  const uint8_t* bad_key = nullptr;
  const uint8_t* bad_value = nullptr;
  const uint8_t* bad_query = nullptr;  // (backward, for the key gradient)
  int64_t K() const { return kh * kw; }
};

// VB-byte vectors (GCC/clang vector extensions), unaligned: one zmm, ymm
// or xmm register in the variant compiled for it.
template <typename T, int VB>
struct Lanes {
  typedef T V __attribute__((vector_size(VB), aligned(alignof(T))));
  static constexpr int64_t n = VB / sizeof(T);
  static SNL_INLINE V load(const T* p) { return *reinterpret_cast<const V*>(p); }
  static SNL_INLINE void store(T* p, V v) { *reinterpret_cast<V*>(p) = v; }
  static SNL_INLINE V splat(T a) { return V{} + a; }
  static SNL_INLINE T sum(V v) {  // pairwise: log2(n) dependent adds
    for (int64_t h = n / 2; h > 0; h /= 2)
      for (int64_t l = 0; l < h; ++l) v[l] += v[l + h];
    return v[0];
  }
};

// The 8 sums of a[0..7] into out[0..7]. For 16 float lanes a transpose-
// and-add tree of shuffles: 15 vector ops instead of 8 x 15 lane extracts.
template <typename T, int VB>
SNL_INLINE void sum8(const typename Lanes<T, VB>::V* a, T* out) {
#if (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12))
  if constexpr (std::is_same_v<T, float> && VB == 64) {
    using V = typename Lanes<T, VB>::V;
#define SNL_HALVES(x, y)                                                  \
  (__builtin_shufflevector(x, y, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19,  \
                           20, 21, 22, 23) +                              \
   __builtin_shufflevector(x, y, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25,    \
                           26, 27, 28, 29, 30, 31))
#define SNL_QUARTERS(x, y)                                                \
  (__builtin_shufflevector(x, y, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18,    \
                           19, 24, 25, 26, 27) +                          \
   __builtin_shufflevector(x, y, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22,  \
                           23, 28, 29, 30, 31))
    // lanes: [a0 a1] 8 partials each, then [a0..a3] 4 each, then 2, then 1
    const V s01 = SNL_HALVES(a[0], a[1]), s23 = SNL_HALVES(a[2], a[3]);
    const V s45 = SNL_HALVES(a[4], a[5]), s67 = SNL_HALVES(a[6], a[7]);
    const V s0123 = SNL_QUARTERS(s01, s23), s4567 = SNL_QUARTERS(s45, s67);
    const V pairs =
        __builtin_shufflevector(s0123, s4567, 0, 1, 4, 5, 8, 9, 12, 13, 16,
                                17, 20, 21, 24, 25, 28, 29) +
        __builtin_shufflevector(s0123, s4567, 2, 3, 6, 7, 10, 11, 14, 15,
                                18, 19, 22, 23, 26, 27, 30, 31);
    const V sums =
        __builtin_shufflevector(pairs, pairs, 0, 2, 4, 6, 8, 10, 12, 14, 0,
                                2, 4, 6, 8, 10, 12, 14) +
        __builtin_shufflevector(pairs, pairs, 1, 3, 5, 7, 9, 11, 13, 15, 1,
                                3, 5, 7, 9, 11, 13, 15);
#undef SNL_HALVES
#undef SNL_QUARTERS
    for (int t = 0; t < 8; ++t) out[t] = sums[t];
    return;
  }
#endif
  for (int t = 0; t < 8; ++t) out[t] = Lanes<T, VB>::sum(a[t]);
}

template <typename T, int VB>
SNL_INLINE void axpy(T a, const T* x, T* y, int64_t n) {
  using L = Lanes<T, VB>;
  const auto av = L::splat(a);
  int64_t c = 0;
  for (; c + L::n <= n; c += L::n) L::store(y + c, L::load(y + c) + av * L::load(x + c));
  for (; c < n; ++c) y[c] += a * x[c];
}

// Per-thread scratch for one tile, sized once per thread.
template <typename T>
struct Tile {
  // Window pixels a tile can need: the sentinel, then one per corner when
  // every corner of every query is in the map and distinct (no merging).
  // Every [P] and [P][kTile] array below is sized from this, nowhere else.
  static int64_t window_capacity(int64_t K) { return 1 + kTile * 4 * K; }
  int n = 0;                          // queries in the tile (<= kTile)
  int P = 0;                          // window pixels, the sentinel included
  bool finite[kTile];                 // all the query's positions finite
  std::vector<int32_t> dy, dx;        // [K] the initial grid
  std::vector<int32_t> slot;          // window cell -> pixel index, -1
  std::vector<T> weight;              // [kTile][4K] bilinear weights
  std::vector<int32_t> corner;        // [kTile][4K] window pixel (0: sentinel)
  std::vector<int32_t> cy, cx;        // [kTile][4K] corner coordinates
  std::vector<T> fy, fx;              // [kTile][K] fractional parts
  std::vector<int32_t> pix, cell;     // [P] y * W + x, slot cell
  std::vector<const T*> key_row, value_row;  // [P]
  std::vector<T> dots, coef, grad_coef, grad_dots;  // [P][kTile]
  std::vector<T> prob, grad_prob;     // [kTile][K]
  const T* query[kTile];
  std::vector<T> zeros;               // the sentinel's key and value rows
  explicit Tile(const Problem<T>& p)
      : dy(p.K()), dx(p.K()), slot(kMaxWindow, -1),
        weight(kTile * 4 * p.K()), corner(kTile * 4 * p.K()),
        cy(kTile * 4 * p.K()), cx(kTile * 4 * p.K()), fy(kTile * p.K()),
        fx(kTile * p.K()), pix(window_capacity(p.K())),
        cell(window_capacity(p.K())), key_row(window_capacity(p.K())),
        value_row(window_capacity(p.K())),
        dots(kTile * window_capacity(p.K())),
        coef(kTile * window_capacity(p.K())),
        grad_coef(kTile * window_capacity(p.K())),
        grad_dots(kTile * window_capacity(p.K())), prob(kTile * p.K()),
        grad_prob(kTile * p.K()), zeros(std::max(p.C, p.Cq), T(0)) {
    key_row[0] = value_row[0] = zeros.data();
    pix[0] = cell[0] = -1;
    // ops/sampling.py initial_grid: row-major kh x kw, (k - 1) / 2 before
    // the centre, spaced by the dilation
    for (int64_t k = 0; k < p.K(); ++k) {
      dy[k] = (k / p.kw - (p.kh - 1) / 2) * p.dh;
      dx[k] = (k % p.kw - (p.kw - 1) / 2) * p.dw;
    }
  }
};

// Steps 1 and 2 for the n queries (b, y, x0 + t). Window pixel 0 is a
// sentinel with zero rows: corners outside the map (and, with
// ``skip_zero``, corners of weight 0, which the forward does not need but
// the offset gradient does) point there, so later loops need no branches.
template <typename T>
SNL_INLINE void build_tile(const Problem<T>& p, Tile<T>& s, int64_t b,
                           int64_t y, int64_t x0, int n, bool skip_zero) {
  const int64_t K = p.K(), K4 = 4 * K;
  const int32_t H = static_cast<int32_t>(p.H), W = static_cast<int32_t>(p.W);
  s.n = n;
  int32_t ymin = std::numeric_limits<int32_t>::max(), ymax = -1;
  int32_t xmin = std::numeric_limits<int32_t>::max(), xmax = -1;
  for (int t = 0; t < n; ++t) {
    const int64_t x = x0 + t;
    const T* off = p.offset + b * p.osb + y * p.osy + x * p.osx;
    s.finite[t] = true;
    for (int64_t k = 0; k < K; ++k) {
      // ops/sampling.py sampling_positions (eq. 4), corners (eq. 5)
      const T ty = y + s.dy[k] + off[2 * k * p.osc];
      const T tx = x + s.dx[k] + off[(2 * k + 1) * p.osc];
      // NaN/inf: the point samples nothing (below), and attention_probs
      // makes the whole query NaN, so the loss shows it.
      s.finite[t] = s.finite[t] && std::isfinite(ty) && std::isfinite(tx);
      const T y0f = std::floor(ty), x0f = std::floor(tx);
      const T fy = ty - y0f, fx = tx - x0f;
      s.fy[t * K + k] = fy;
      s.fx[t * K + k] = fx;
      const T w[4] = {(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx),
                      fy * fx};
      const int64_t j = t * K4 + 4 * k;
      // Far outside the map (or NaN): no corner inside, all weights 0
      // (-2: ops/sampling.py OFF_MAP).
      const bool near = y0f >= -1 && y0f <= H - 1 && x0f >= -1 && x0f <= W - 1;
      const int32_t y0 = near ? static_cast<int32_t>(y0f) : -2;
      const int32_t x0c = near ? static_cast<int32_t>(x0f) : -2;
      const bool inside = y0 >= 0 && y0 < H - 1 && x0c >= 0 && x0c < W - 1;
      for (int c = 0; c < 4; ++c) {
        const int32_t yy = y0 + (c >> 1), xx = x0c + (c & 1);
        const bool in = (inside || (yy >= 0 && yy < H && xx >= 0 && xx < W)) &&
                        !(skip_zero && w[c] == 0);
        s.weight[j + c] = in ? w[c] : T(0);
        s.corner[j + c] = in;  // 1: to be merged below, 0: the sentinel
        s.cy[j + c] = yy;
        s.cx[j + c] = xx;
      }
      if (near) {  // the box may include a corner of weight 0: harmless
        ymin = std::min(ymin, std::max(y0, 0));
        ymax = std::max(ymax, std::min(y0 + 1, H - 1));
        xmin = std::min(xmin, std::max(x0c, 0));
        xmax = std::max(xmax, std::min(x0c + 1, W - 1));
      }
    }
  }
  s.P = 1;
  if (ymax < 0) {
    std::fill(s.corner.begin(), s.corner.begin() + n * K4, 0);
    return;
  }
  const int32_t bw = xmax - xmin + 1;
  const bool merge = int64_t(ymax - ymin + 1) * bw <= kMaxWindow;
  for (int64_t j = 0; j < n * K4; ++j) {
    if (!s.corner[j]) continue;
    const int32_t yy = s.cy[j], xx = s.cx[j];
    const int32_t cell = merge ? (yy - ymin) * bw + (xx - xmin) : -1;
    int32_t u = merge ? s.slot[cell] : -1;
    if (u < 0) {
      u = s.P++;
      if (merge) s.slot[cell] = u;
      s.pix[u] = yy * W + xx;
      s.cell[u] = cell;
      s.key_row[u] = p.key.row(b, yy, xx);
      s.value_row[u] = p.value.row(b, yy, xx);
    }
    s.corner[j] = u;
  }
  if (merge)
    for (int u = 1; u < s.P; ++u) s.slot[s.cell[u]] = -1;  // for the next tile
}

// out[p * kTile + t] = <x[t], rows[p]> for every window pixel p and all
// kTile rows x (padding rows repeat a real one): each window row is read
// once, the x rows stay in L1.
template <typename T, int VB>
SNL_INLINE void dense_dots(const T* const* x, const T* const* rows, int P,
                           int64_t n, T* out) {
  using L = Lanes<T, VB>;
  constexpr int64_t w = L::n;
  for (int p = 0; p < P; ++p) {
    const T* r = rows[p];
    for (int64_t c = 0; c < n; c += 64 / sizeof(T))
      __builtin_prefetch(rows[std::min(p + 1, P - 1)] + c);
    typename L::V a[kTile] = {};
    int64_t c = 0;
    for (; c + w <= n; c += w) {
      const auto rv = L::load(r + c);
      for (int t = 0; t < kTile; ++t) a[t] += L::load(x[t] + c) * rv;
    }
    static_assert(kTile == 8, "sum8 reduces 8 accumulators");
    T* d = out + p * kTile;
    sum8<T, VB>(a, d);
    for (; c < n; ++c)
      for (int t = 0; t < kTile; ++t) d[t] += x[t][c] * r[c];
  }
}

// out[t][0:n] = sum_p coef[p * kTile + t] * rows[p][0:n] for all kTile
// outputs, a vector of channels at a time: the accumulators stay in
// registers while the window rows stream past once per tile.
template <typename T, int VB>
SNL_INLINE void gather_sum(const T* coef, const T* const* rows, int P,
                           int64_t n, T* const* out) {
  using L = Lanes<T, VB>;
  constexpr int64_t w = L::n;
  int64_t c = 0;
  for (; c + 2 * w <= n; c += 2 * w) {  // two vectors: a broadcast feeds 2
    typename L::V a[kTile] = {}, b[kTile] = {};
    for (int p = 0; p < P; ++p) {
      // rows are scattered: no hardware prefetcher follows them
      __builtin_prefetch(rows[std::min(p + kAhead, P - 1)] + c);
      const auto r0 = L::load(rows[p] + c), r1 = L::load(rows[p] + c + w);
      const T* k = coef + p * kTile;
      for (int t = 0; t < kTile; ++t) {
        const auto kv = L::splat(k[t]);
        a[t] += kv * r0;
        b[t] += kv * r1;
      }
    }
    for (int t = 0; t < kTile; ++t) {
      L::store(out[t] + c, a[t]);
      L::store(out[t] + c + w, b[t]);
    }
  }
  for (; c + w <= n; c += w) {
    typename L::V a[kTile] = {};
    for (int p = 0; p < P; ++p) {
      const auto rv = L::load(rows[p] + c);
      const T* k = coef + p * kTile;
      for (int t = 0; t < kTile; ++t) a[t] += L::splat(k[t]) * rv;
    }
    for (int t = 0; t < kTile; ++t) L::store(out[t] + c, a[t]);
  }
  for (; c < n; ++c)
    for (int t = 0; t < kTile; ++t) {
      T acc = 0;
      for (int p = 0; p < P; ++p) acc += coef[p * kTile + t] * rows[p][c];
      out[t][c] = acc;
    }
}

// rows[p][0:n] += sum_t coef[p * kTile + t] * x[t][0:n] for every window
// pixel p (the key and value gradients).
template <typename T, int VB, typename RowOf>
SNL_INLINE void scatter_sum(const T* coef, const T* const* x, int P,
                            int64_t n, const RowOf& row_of) {
  using L = Lanes<T, VB>;
  constexpr int64_t w = L::n;
  for (int p = 0; p < P; ++p) {
    T* r = row_of(p);
    const T* k = coef + p * kTile;
    typename L::V kv[kTile];
    for (int t = 0; t < kTile; ++t) kv[t] = L::splat(k[t]);
    int64_t c = 0;
    for (; c + w <= n; c += w) {
      auto acc = L::load(r + c);
      for (int t = 0; t < kTile; ++t) acc += kv[t] * L::load(x[t] + c);
      L::store(r + c, acc);
    }
    for (; c < n; ++c)
      for (int t = 0; t < kTile; ++t) r[c] += k[t] * x[t][c];
  }
}

// Step 3: the softmax S of every query of the tile from the dots.
template <typename T>
SNL_INLINE void attention_probs(const Problem<T>& p, Tile<T>& s) {
  const int64_t K = p.K(), K4 = 4 * K;
  for (int t = 0; t < s.n; ++t) {
    const T* w = &s.weight[t * K4];
    const int32_t* u = &s.corner[t * K4];
    T* prob = &s.prob[t * K];
    if (!s.finite[t]) {  // a non-finite position: NaN out, as torch ops do
      std::fill(prob, prob + K, std::numeric_limits<T>::quiet_NaN());
      continue;
    }
    T mx = -std::numeric_limits<T>::infinity();
    for (int64_t k = 0; k < K; ++k) {
      T logit = 0;
      for (int c = 0; c < 4; ++c)
        logit += w[4 * k + c] * s.dots[u[4 * k + c] * kTile + t];
      prob[k] = p.scale * logit;
      mx = std::max(mx, prob[k]);
    }
    T sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += (prob[k] = std::exp(prob[k] - mx));
    const T inv = T(1) / sum;
    for (int64_t k = 0; k < K; ++k) prob[k] *= inv;
  }
}

// out[p * kTile + t] = sum over the corners of query t on pixel p of
// per_point[t * K + k] * w_kc (zero for padding queries).
template <typename T>
SNL_INLINE void splat_to_window(const Problem<T>& p, const Tile<T>& s,
                                const T* per_point, T* out) {
  const int64_t K = p.K(), K4 = 4 * K;
  std::fill(out, out + s.P * kTile, T(0));
  for (int t = 0; t < s.n; ++t)
    for (int64_t j = 0; j < K4; ++j) {
      out[s.corner[t * K4 + j] * kTile + t] +=
          per_point[t * K + j / 4] * s.weight[t * K4 + j];
    }
}

// Whether any window pixel (the sentinel aside) is flagged in ``bad``.
template <typename T>
SNL_RARE bool window_has(const Problem<T>& p, const Tile<T>& s, int64_t b,
                           const uint8_t* bad) {
  if (bad == nullptr) return false;
  const uint8_t* image = bad + b * p.H * p.W;
  for (int u = 1; u < s.P; ++u)
    if (image[s.pix[u]]) return true;
  return false;
}

// out[t][0:n] = sum over the corners j of query t of
// per_point[t * K + k(j)] * w_j * rows[corner j]: gather_sum for one query
// without the other queries' zeros (the sentinel's zero row included, so a
// NaN per_point still gives NaN, as there).
template <typename T, int VB>
SNL_RARE void gather_corners(const Problem<T>& p, const Tile<T>& s,
                               const T* per_point, const T* const* rows,
                               int64_t n, T* const* out) {
  const int64_t K4 = 4 * p.K();
  for (int t = 0; t < s.n; ++t) {
    std::fill(out[t], out[t] + n, T(0));
    for (int64_t j = 0; j < K4; ++j)
      axpy<T, VB>(per_point[t * p.K() + j / 4] * s.weight[t * K4 + j],
                  rows[s.corner[t * K4 + j]], out[t], n);
  }
}

// Whether any of the n queries i..i+n-1 (flat pixels) is flagged in ``bad``.
SNL_INLINE bool tile_has(const uint8_t* bad, int64_t i, int n) {
  if (bad == nullptr) return false;
  for (int t = 0; t < n; ++t)
    if (bad[i + t]) return true;
  return false;
}

// scatter_sum corner by corner: row(corner j) += per_point[t * K + k(j)] *
// w_j * x[t] for the corners in the map of the tile's real queries, weight 0
// included (as grid_sample's backward), and no other row: a non-finite x[t]
// reaches exactly the pixels query t samples.
template <typename T, int VB, typename RowOf>
SNL_RARE void scatter_corners(const Problem<T>& p, const Tile<T>& s,
                              const T* per_point, const T* const* x,
                              int64_t n, const RowOf& row_of) {
  const int64_t K4 = 4 * p.K();
  for (int t = 0; t < s.n; ++t)
    for (int64_t j = 0; j < K4; ++j) {
      const int32_t u = s.corner[t * K4 + j];
      if (u == 0) continue;  // the sentinel: outside the map
      axpy<T, VB>(per_point[t * p.K() + j / 4] * s.weight[t * K4 + j], x[t],
                  row_of(u - 1), n);
    }
}

// Calls fn(i, n) for tiles of n <= kTile queries i..i+n-1 covering the flat
// range [begin, end). Rows (b * H + y) are taken in vertical strips of
// kStrip columns: going down a strip, a tile's window is mostly the one of
// the tile above, still in cache; a whole image row would not fit at
// large widths.
template <typename Fn>
SNL_INLINE void for_each_tile(int64_t begin, int64_t end, int64_t W, Fn&& fn) {
  const int64_t row0 = begin / W, row1 = (end - 1) / W;
  for (int64_t sx = 0; sx < W; sx += kStrip)
    for (int64_t r = row0; r <= row1; ++r) {
      const int64_t lo = std::max(begin, r * W + sx);
      const int64_t hi = std::min(end, r * W + std::min(sx + kStrip, W));
      // Even tiles: a row of 49 is 7 tiles of 7, not 6 of 8 and one of 1
      // (a tile costs kTile lanes of window work however few it holds).
      const int64_t len = hi - lo, tiles = (len + kTile - 1) / kTile;
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t a = lo + len * t / tiles, b = lo + len * (t + 1) / tiles;
        fn(a, static_cast<int>(b - a));
      }
    }
}

template <typename T, int VB>
SNL_INLINE void forward_range(const Problem<T>& p, T* out, int64_t begin,
                              int64_t end) {
  Tile<T> s(p);
  std::vector<T> sink(p.C);  // output rows of padding queries
  const int64_t N = p.H * p.W;
  for_each_tile(begin, end, p.W, [&](int64_t i, int n) SNL_LAMBDA_INLINE {
    const int64_t b = i / N, y = (i % N) / p.W, x = i % p.W;
    T* dst[kTile];
    for (int t = 0; t < kTile; ++t) {
      s.query[t] = p.query.row(b, y, x + std::min(t, n - 1));
      dst[t] = t < n ? out + (i + t) * p.C : sink.data();
    }
    // corners of weight 0 can be skipped unless they may hold a NaN
    const bool skip_zero = p.bad_key == nullptr && p.bad_value == nullptr;
    build_tile(p, s, b, y, x, n, skip_zero);
    dense_dots<T, VB>(s.query, s.key_row.data(), s.P, p.Cq, s.dots.data());
    attention_probs(p, s);
    splat_to_window(p, s, s.prob.data(), s.coef.data());
    gather_sum<T, VB>(s.coef.data(), s.value_row.data(), s.P, p.C, dst);
    if (window_has(p, s, b, p.bad_value))
      gather_corners<T, VB>(p, s, s.prob.data(), s.value_row.data(), p.C, dst);
  });
}

// Where a thread scatters key/value gradients: its own query rows straight
// into the result, rows outside them into its private halo buffers.
template <typename T>
struct ScatterTarget {
  T* global;   // [B*N, n]
  T* below;    // rows [lo, first)
  T* above;    // rows (last, hi]
  int64_t lo, first, last, hi, n;
  SNL_INLINE T* row(int64_t r) const {
    if (r < first) return below + (r - lo) * n;
    if (r > last) return above + (r - last - 1) * n;
    return global + r * n;
  }
};

template <typename T>
struct Grads {
  const T* grad_out;  // [B*N, C] contiguous
  T* grad_query;      // [B*N, Cq]
  T* grad_offset;     // [B*N, 2K]
  bool need_q, need_k, need_v, need_o;
  // per pixel, 1 where its grad_out row holds a NaN or an infinity; null
  // where none does or the value gradient is not needed
  const uint8_t* bad_grad_out = nullptr;
};

template <typename T, int VB>
SNL_INLINE void backward_range(const Problem<T>& p, const Grads<T>& g,
                               const ScatterTarget<T>& gk,
                               const ScatterTarget<T>& gv, int64_t begin,
                               int64_t end) {
  const int64_t K = p.K(), K4 = 4 * K, N = p.H * p.W;
  Tile<T> s(p);
  std::vector<T> sink(p.Cq);  // grad_query rows of padding queries
  std::vector<T> zero(std::max(p.C, p.Cq), T(0));
  for_each_tile(begin, end, p.W, [&](int64_t i, int n) SNL_LAMBDA_INLINE {
    const int64_t b = i / N, y = (i % N) / p.W, x = i % p.W;
    const T* go[kTile];
    T* gq[kTile];
    for (int t = 0; t < kTile; ++t) {
      s.query[t] = p.query.row(b, y, x + std::min(t, n - 1));
      go[t] = t < n ? g.grad_out + (i + t) * p.C : zero.data();
      gq[t] = t < n ? g.grad_query + (i + t) * p.Cq : sink.data();
    }
    build_tile(p, s, b, y, x, n, /*skip_zero=*/false);
    dense_dots<T, VB>(s.query, s.key_row.data(), s.P, p.Cq, s.dots.data());
    attention_probs(p, s);
    // grad of A[p, t]: <grad_out_t, value_p>; of S_k: sum_c w_kc of that.
    dense_dots<T, VB>(go, s.value_row.data(), s.P, p.C, s.grad_coef.data());
    for (int t = 0; t < s.n; ++t) {
      const T* w = &s.weight[t * K4];
      const int32_t* u = &s.corner[t * K4];
      const T* prob = &s.prob[t * K];
      T* gp = &s.grad_prob[t * K];
      T mean = 0;
      for (int64_t k = 0; k < K; ++k) {
        T acc = 0;
        for (int c = 0; c < 4; ++c)
          acc += w[4 * k + c] * s.grad_coef[u[4 * k + c] * kTile + t];
        gp[k] = acc;
        mean += prob[k] * acc;
      }
      // softmax backward, times scale: scale * S_k (grad_S_k - <S, grad_S>)
      for (int64_t k = 0; k < K; ++k) gp[k] = p.scale * prob[k] * (gp[k] - mean);
    }
    if (g.need_q || g.need_k)
      splat_to_window(p, s, s.grad_prob.data(), s.grad_dots.data());
    if (g.need_q) {
      gather_sum<T, VB>(s.grad_dots.data(), s.key_row.data(), s.P, p.Cq, gq);
      if (window_has(p, s, b, p.bad_key))
        gather_corners<T, VB>(p, s, s.grad_prob.data(), s.key_row.data(),
                              p.Cq, gq);
    }
    const int64_t base = b * N;
    // window pixel u + 1 (the sentinel skipped)
    const auto key_grad_row = [&](int u) SNL_LAMBDA_INLINE {
      return gk.row(base + s.pix[u + 1]);
    };
    const auto value_grad_row = [&](int u) SNL_LAMBDA_INLINE {
      return gv.row(base + s.pix[u + 1]);
    };
    if (g.need_k) {
      if (tile_has(p.bad_query, i, n))
        scatter_corners<T, VB>(p, s, s.grad_prob.data(), s.query, p.Cq,
                               key_grad_row);
      else
        scatter_sum<T, VB>(s.grad_dots.data() + kTile, s.query, s.P - 1,
                           p.Cq, key_grad_row);
    }
    if (g.need_v) {
      if (tile_has(g.bad_grad_out, i, n)) {
        scatter_corners<T, VB>(p, s, s.prob.data(), go, p.C, value_grad_row);
      } else {
        splat_to_window(p, s, s.prob.data(), s.coef.data());
        scatter_sum<T, VB>(s.coef.data() + kTile, go, s.P - 1, p.C,
                           value_grad_row);
      }
    }
    if (g.need_o) {
      // d out / d w_kc = S_k grad_A + scale grad_logit_k D; the weights'
      // derivatives in t (floor: the derivative from the right).
      for (int t = 0; t < s.n; ++t) {
        T* gof = g.grad_offset + (i + t) * 2 * K;
        for (int64_t k = 0; k < K; ++k) {
          T gw[4];
          for (int c = 0; c < 4; ++c) {
            const int32_t u = s.corner[t * K4 + 4 * k + c];
            gw[c] = s.prob[t * K + k] * s.grad_coef[u * kTile + t] +
                    s.grad_prob[t * K + k] * s.dots[u * kTile + t];
          }
          const T fy = s.fy[t * K + k], fx = s.fx[t * K + k];
          gof[2 * k] = (gw[2] - gw[0]) * (1 - fx) + (gw[3] - gw[1]) * fx;
          gof[2 * k + 1] = (gw[1] - gw[0]) * (1 - fy) + (gw[3] - gw[2]) * fy;
        }
      }
    }
  });
}

// Variants: the kernels instantiated with each ISA's vector width in a
// function compiled for that ISA (the always-inline templates above are
// compiled into it), one picked at load time by what the CPU supports.
template <typename T>
struct Variant {
  const char* name;
  void (*forward)(const Problem<T>&, T*, int64_t, int64_t);
  void (*backward)(const Problem<T>&, const Grads<T>&,
                   const ScatterTarget<T>&, const ScatterTarget<T>&, int64_t,
                   int64_t);
};

#define SNL_VARIANT(NAME, TARGET, VB)                                      \
  template <typename T>                                                    \
  TARGET void forward_##NAME(const Problem<T>& p, T* out, int64_t a,        \
                             int64_t b) {                                  \
    forward_range<T, VB>(p, out, a, b);                                     \
  }                                                                        \
  template <typename T>                                                    \
  TARGET void backward_##NAME(const Problem<T>& p, const Grads<T>& g,       \
                              const ScatterTarget<T>& gk,                  \
                              const ScatterTarget<T>& gv, int64_t a,        \
                              int64_t b) {                                 \
    backward_range<T, VB>(p, g, gk, gv, a, b);                              \
  }

#if defined(SNL_ISA)  // one variant, for the build's -march
#if defined(__AVX512F__)
SNL_VARIANT(only, , 64)
#elif defined(__AVX2__)
SNL_VARIANT(only, , 32)
#else
SNL_VARIANT(only, , 16)
#endif
template <typename T>
Variant<T> pick_variant() {
  return {SNL_STRING(SNL_ISA), forward_only<T>, backward_only<T>};
}
#elif defined(__x86_64__) && defined(__GNUC__)
SNL_VARIANT(v4, __attribute__((target("arch=x86-64-v4"))), 64)
SNL_VARIANT(v3, __attribute__((target("arch=x86-64-v3"))), 32)
SNL_VARIANT(base, , 16)
template <typename T>
Variant<T> pick_variant() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4"))
    return {"x86-64-v4", forward_v4<T>, backward_v4<T>};
  if (__builtin_cpu_supports("x86-64-v3"))
    return {"x86-64-v3", forward_v3<T>, backward_v3<T>};
  return {"x86-64", forward_base<T>, backward_base<T>};
}
#else  // other architectures: portable 16-byte vectors
SNL_VARIANT(base, , 16)
template <typename T>
Variant<T> pick_variant() {
  return {"generic", forward_base<T>, backward_base<T>};
}
#endif

template <typename T>
const Variant<T>& variant() {
  static const Variant<T> picked = pick_variant<T>();
  return picked;
}

void check_rows(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "snl cpp backend: ", name,
              " must be a CPU tensor, got ", t.device());
  TORCH_CHECK(t.dim() == 4, "snl cpp backend: ", name, " must be 4-D");
  TORCH_CHECK(t.size(1) <= 1 || t.stride(1) == 1, "snl cpp backend: ", name,
              " needs unit channel stride (channels_last rows)");
}

template <typename T>
Tensor4<T> rows_of(const at::Tensor& t) {
  return {t.data_ptr<T>(), t.stride(0), t.stride(2), t.stride(3)};
}

template <typename T>
Problem<T> make_problem(const at::Tensor& q, const at::Tensor& k,
                        const at::Tensor& v, const at::Tensor& o, int64_t kh,
                        int64_t kw, int64_t dh, int64_t dw, double scale) {
  Problem<T> p{rows_of<T>(q), rows_of<T>(k), rows_of<T>(v),
               o.data_ptr<T>(), o.stride(0), o.stride(1), o.stride(2),
               o.stride(3), v.size(0), v.size(2), v.size(3), q.size(1),
               v.size(1), kh, kw, dh, dw, static_cast<T>(scale)};
  return p;
}

// 1 for each pixel whose row of x (n channels) holds a NaN or an
// infinity; empty where none does (the usual case: nothing more to do).
template <typename T>
std::vector<uint8_t> nonfinite_pixels(const Tensor4<T>& x, int64_t B,
                                      int64_t H, int64_t W, int64_t n) {
  const int64_t N = H * W;
  std::vector<uint8_t> bad(B * N);
  std::atomic<bool> any{false};
  at::parallel_for(0, B * N, 256, [&](int64_t a, int64_t e) {
    bool found = false;
    // x * 0 is 0 for finite x and NaN for NaN and +-inf: a sum of those
    // says whether the row holds one, in vector adds (the baseline ISA's:
    // this runs once per call, outside the variants)
    using L = Lanes<T, 16>;
    for (int64_t i = a; i < e; ++i) {
      const T* r = x.row(i / N, (i % N) / W, i % W);
      typename L::V a0{}, a1{};
      int64_t c = 0;
      for (; c + 2 * L::n <= n; c += 2 * L::n) {
        a0 += L::load(r + c) * T(0);
        a1 += L::load(r + c + L::n) * T(0);
      }
      T sum = L::sum(a0 + a1);
      for (; c < n; ++c) sum += r[c] * T(0);
      bad[i] = sum != sum;
      found |= sum != sum;
    }
    if (found) any = true;
  });
  if (!any) bad.clear();
  return bad;
}

const uint8_t* flags_or_null(const std::vector<uint8_t>& flags) {
  return flags.empty() ? nullptr : flags.data();
}

void check_problem(const at::Tensor& q, const at::Tensor& k,
                   const at::Tensor& v, const at::Tensor& o, int64_t kh,
                   int64_t kw) {
  check_rows(q, "query");
  check_rows(k, "key");
  check_rows(v, "value");
  TORCH_CHECK(o.device().is_cpu() && o.dim() == 4,
              "snl cpp backend: offset must be a 4-D CPU tensor");
  TORCH_CHECK(q.scalar_type() == v.scalar_type() &&
                  k.scalar_type() == v.scalar_type() &&
                  o.scalar_type() == v.scalar_type(),
              "snl cpp backend: inputs must share one dtype");
  TORCH_CHECK(o.size(1) == 2 * kh * kw, "snl cpp backend: offset needs ",
              2 * kh * kw, " channels");
  TORCH_CHECK(v.size(2) * v.size(3) < (int64_t(1) << 31),
              "snl cpp backend: feature map too large");
}

at::Tensor rows_tensor(const at::Tensor& like, int64_t channels) {
  // [B, H, W, n] contiguous, returned as [B, n, H, W] (channels_last).
  return at::empty({like.size(0), like.size(2), like.size(3), channels},
                   like.options())
      .permute({0, 3, 1, 2});
}

at::Tensor snl_forward(const at::Tensor& q, const at::Tensor& k,
                       const at::Tensor& v, const at::Tensor& o, int64_t kh,
                       int64_t kw, int64_t dh, int64_t dw, double scale) {
  check_problem(q, k, v, o, kh, kw);
  at::Tensor out = rows_tensor(v, v.size(1));
  const int64_t total = v.size(0) * v.size(2) * v.size(3);
  if (total == 0 || v.size(1) == 0) return out;  // nothing to compute
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "snl_forward", [&] {
    auto p = make_problem<scalar_t>(q, k, v, o, kh, kw, dh, dw, scale);
    const auto bad_key = nonfinite_pixels(p.key, p.B, p.H, p.W, p.Cq);
    const auto bad_value = nonfinite_pixels(p.value, p.B, p.H, p.W, p.C);
    p.bad_key = flags_or_null(bad_key);
    p.bad_value = flags_or_null(bad_value);
    scalar_t* dst = out.data_ptr<scalar_t>();
    at::parallel_for(0, total, 16, [&](int64_t a, int64_t b) {
      variant<scalar_t>().forward(p, dst, a, b);
    });
  });
  return out;
}

std::vector<at::Tensor> snl_backward(const at::Tensor& grad_out,
                                     const at::Tensor& q, const at::Tensor& k,
                                     const at::Tensor& v, const at::Tensor& o,
                                     int64_t kh, int64_t kw, int64_t dh,
                                     int64_t dw, double scale, bool need_q,
                                     bool need_k, bool need_v, bool need_o) {
  check_problem(q, k, v, o, kh, kw);
  const int64_t B = v.size(0), H = v.size(2), W = v.size(3), N = H * W;
  const int64_t total = B * N, Cq = q.size(1), C = v.size(1);
  // grad_out as [B*N, C] rows.
  const at::Tensor go = grad_out.permute({0, 2, 3, 1}).contiguous();
  at::Tensor gq = rows_tensor(q, Cq), gof = rows_tensor(o, o.size(1));
  at::Tensor gk = at::zeros({B, H, W, Cq}, q.options()).permute({0, 3, 1, 2});
  at::Tensor gv = at::zeros({B, H, W, C}, v.options()).permute({0, 3, 1, 2});
  if (total == 0 || C == 0) {  // no output: every gradient is zero
    return {need_q ? gq.zero_() : at::Tensor(), need_k ? gk : at::Tensor(),
            need_v ? gv : at::Tensor(), need_o ? gof.zero_() : at::Tensor()};
  }
  // How far (in flat pixels) a corner can be from its query: the grid's
  // reach plus the largest offset plus the bilinear neighbour.
  const double max_off = o.numel() ? o.abs().max().item<double>() : 0.0;
  const double reach_px = std::max((kh - 1) / 2 * dh + dh, (kw - 1) / 2 * dw + dw) +
                          std::ceil(max_off) + 1;
  int64_t reach = total;  // offsets beyond the map (or NaN): everything
  if (reach_px < double(H + W))
    reach = std::min<int64_t>(total, static_cast<int64_t>(reach_px) * (W + 1));
  const int64_t parts =
      std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), total / 16));

  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "snl_backward", [&] {
    using T = scalar_t;
    auto p = make_problem<T>(q, k, v, o, kh, kw, dh, dw, scale);
    // The flags each needed gradient's non-finite path reads (see the
    // header); one pass over the rows each, none when not needed.
    const std::vector<uint8_t> none;
    const auto bad_key =
        need_q ? nonfinite_pixels(p.key, p.B, p.H, p.W, p.Cq) : none;
    const auto bad_query =
        need_k ? nonfinite_pixels(p.query, p.B, p.H, p.W, p.Cq) : none;
    const Tensor4<T> go_rows{go.data_ptr<T>(), N * C, W * C, C};
    const auto bad_grad_out =
        need_v ? nonfinite_pixels(go_rows, p.B, p.H, p.W, C) : none;
    p.bad_key = flags_or_null(bad_key);
    p.bad_query = flags_or_null(bad_query);
    Grads<T> g{go.data_ptr<T>(), gq.data_ptr<T>(), gof.data_ptr<T>(),
               need_q, need_k, need_v, need_o};
    g.bad_grad_out = flags_or_null(bad_grad_out);
    std::vector<ScatterTarget<T>> tk(parts), tv(parts);
    std::vector<at::Tensor> halos;
    for (int64_t t = 0; t < parts; ++t) {
      const int64_t first = total * t / parts, last = total * (t + 1) / parts - 1;
      const int64_t lo = std::max<int64_t>(0, first - reach);
      const int64_t hi = std::min<int64_t>(total - 1, last + reach);
      auto halo = [&](int64_t rows, int64_t n) {
        halos.push_back(at::zeros({std::max<int64_t>(rows, 0), n}, v.options()));
        return halos.back().data_ptr<T>();
      };
      tk[t] = {gk.data_ptr<T>(), need_k ? halo(first - lo, Cq) : nullptr,
               need_k ? halo(hi - last, Cq) : nullptr, lo, first, last, hi, Cq};
      tv[t] = {gv.data_ptr<T>(), need_v ? halo(first - lo, C) : nullptr,
               need_v ? halo(hi - last, C) : nullptr, lo, first, last, hi, C};
    }
    at::parallel_for(0, parts, 1, [&](int64_t a, int64_t b) {
      for (int64_t t = a; t < b; ++t)
        variant<T>().backward(p, g, tk[t], tv[t], tk[t].first,
                              tk[t].last + 1);
    });
    // Add the halos, one part at a time (halos of different parts overlap).
    for (int64_t t = 0; t < parts; ++t) {
      for (const ScatterTarget<T>* s : {&tk[t], &tv[t]}) {
        if (s == &tk[t] ? !need_k : !need_v) continue;
        // Each halo on its own: one may be empty while the other is not.
        at::parallel_for(s->lo, s->first, 64, [&](int64_t a, int64_t b) {
          for (int64_t r = a; r < b; ++r)
            axpy<T, 16>(T(1), s->below + (r - s->lo) * s->n, s->global + r * s->n, s->n);
        });
        at::parallel_for(0, s->hi - s->last, 64, [&](int64_t a, int64_t b) {
          for (int64_t r = a; r < b; ++r)
            axpy<T, 16>(T(1), s->above + r * s->n, s->global + (s->last + 1 + r) * s->n,
                 s->n);
        });
      }
    }
  });
  return {need_q ? gq : at::Tensor(), need_k ? gk : at::Tensor(),
          need_v ? gv : at::Tensor(), need_o ? gof : at::Tensor()};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Fused sparse non-local attention (SSANet) on the CPU";
  // What this build is: the one ISA it was compiled for, or all of them
  // (picked at load time); and whether it carries the sanitizers.
#if defined(SNL_ISA)
  m.attr("isa") = SNL_STRING(SNL_ISA);
#else
  m.attr("isa") = "multiversion";
#endif
  // The variant that runs on this CPU.
  m.def("variant", [] { return std::string(variant<float>().name); });
#if defined(__SANITIZE_ADDRESS__)
  m.attr("sanitized") = true;
#else
  m.attr("sanitized") = false;
#endif
  m.def("forward", &snl_forward, "SNL forward (CPU)");
  m.def("backward", &snl_backward, "SNL backward (CPU)");
}
