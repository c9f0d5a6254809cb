/*
 * Codecs: the compression layer (DESIGN section 5). A codec turns count f32
 * values into bytes for the wire and back; it knows nothing of ranks,
 * transports or collectives.
 *
 * Two levels:
 *  - lc_codec_ops_t, one vtable per codec (codecs/<name>.c), encodes and
 *    decodes a *body*; the registry (codec.c) lists them.
 *  - lc_codec_t, an instantiated codec spec ("topk:0.01+zstd"): parameters,
 *    the chosen vtable, an optional lossless zstd stage, and scratch reused
 *    from call to call. Its encode writes a self-describing *message*: a
 *    16-byte header (below) and the body, zstd-compressed or not.
 *
 * Message header (little-endian, validated field by field on decode):
 *
 *   off size field
 *     0    1 codec id (lc_codec_id_t)
 *     1    1 format version (LC_CODEC_FORMAT_VERSION)
 *     2    1 flags: bit 0 = body is zstd-compressed, bit 1 = byte-shuffled
 *              before compression; other bits must be 0
 *     3    1 reserved, 0
 *     4    4 body length in bytes (decompressed length when bit 0 is set)
 *     8    8 element count
 *
 * A decoder is handed the count it expects; every mismatch, truncation,
 * out-of-range index or non-finite scale is LC_ERR_CORRUPT, never a read or
 * write outside the buffers given.
 *
 * Error feedback (codecs with LC_CODEC_CAP_EF): encode compresses
 * y = x + e and stores e = y - decode(encoded), element by element, in the
 * caller's residual array, so what one step drops is sent in later steps.
 *
 * Threads: an lc_codec_t is used by one thread at a time (its scratch is
 * shared by its calls); the vtables and the registry are read-only.
 */
#ifndef LC_CODECS_CODEC_H
#define LC_CODECS_CODEC_H

#include "laconic.h"

#include <stddef.h>
#include <stdint.h>

#define LC_CODEC_ABI_VERSION 1u    /* of lc_codec_ops_t */
#define LC_CODEC_FORMAT_VERSION 1u /* of the message header */
#define LC_CODEC_HDR_LEN 16u       /* message header bytes */
#define LC_CODEC_SPEC_MAX 128u     /* longest canonical spec string, with the NUL */

/* Codec ids are the public lc_codec_type_t values (laconic.h); they also go
 * into the message header, so they never change. */
typedef lc_codec_type_t lc_codec_id_t;
#define LC_CODEC_ID_MAX 6

/* Capabilities (lc_codec_ops_t.caps). */
enum {
    LC_CODEC_CAP_LOSSY = 1u << 0,    /* decode(encode(x)) may differ from x */
    LC_CODEC_CAP_EF = 1u << 1,       /* encode takes an error-feedback residual */
    LC_CODEC_CAP_SUMMABLE = 1u << 2, /* encodings can be combined without a full decode (sparse
                                        union for topk, f32 sum of casts) */
};

/* Option flags (lc_codec_params_t.flags). */
enum {
    LC_CODEC_F_RMS = 1u << 0,        /* onebit: scale = RMS of the block instead of mean |x| */
    LC_CODEC_F_APPROX = 1u << 1,     /* topk: threshold from a sample (k within +-10%) */
    LC_CODEC_F_STOCHASTIC = 1u << 2, /* int8: stochastic rounding from params.seed */
};

/* The zstd stage (lc_codec_params_t.zstd). */
typedef enum {
    LC_CODEC_ZSTD_OFF = 0,
    LC_CODEC_ZSTD_AUTO = 1,  /* compress when the measured ratio pays for the time on the link */
    LC_CODEC_ZSTD_FORCE = 2, /* always compress */
} lc_codec_zstd_t;

/* Defaults. */
#define LC_CODEC_ONEBIT_BLOCK 2048u
#define LC_CODEC_INT8_BLOCK 256u
#define LC_CODEC_ZSTD_LEVEL 1
#define LC_CODEC_LINK_MBPS 1000u /* 1 Gbit/s: the WAN link the auto zstd stage weighs against */

/* A parsed codec spec. Zero-initialize, then set id (or use lc__codec_parse). */
typedef struct {
    lc_codec_id_t id;
    uint32_t block;       /* onebit/int8: elements per scale (0 = default); topk: elements per
                             selection block, 0 = the whole tensor */
    uint32_t flags;       /* LC_CODEC_F_* */
    double density;       /* topk: fraction of elements kept, in (0, 1] */
    uint64_t k;           /* topk: absolute count per selection unit (overrides density when > 0) */
    uint64_t seed;        /* int8 stochastic rounding, topk sampling */
    lc_codec_zstd_t zstd; /* the lossless stage after the codec */
    int zstd_level;       /* 1..19 (0 = LC_CODEC_ZSTD_LEVEL) */
    uint32_t link_mbps;   /* LC_CODEC_ZSTD_AUTO: link speed in Mbit/s (0 = LC_CODEC_LINK_MBPS) */
} lc_codec_params_t;

/* Per-tensor state: the error-feedback residual and a random stream. */
typedef struct {
    size_t count;    /* elements of the tensor */
    float *residual; /* count floats, zeroed at creation; NULL when the codec keeps none */
    uint64_t rng;    /* splitmix64 state (stochastic rounding, sampling), from params.seed */
} lc_codec_state_t;

/* Scratch a codec body may use (owned by lc_codec_t, grown on demand, reused). */
typedef struct lc_codec_work lc_codec_work_t;
/* Scratch of at least bytes bytes (64-byte aligned), or NULL (out of memory). Index slot
 * (0..3) names independent buffers. Valid until the next call with the same slot. */
void *lc__codec_work_get(lc_codec_work_t *w, int slot, size_t bytes);

/*
 * One codec. Bodies carry their own counts and lengths (documented at the
 * top of each codec file); the message header is written by codec.c.
 * decode and decode_accumulate get the exact body bytes and the count from
 * the validated header, and must check everything else themselves.
 */
typedef struct {
    uint32_t abi_version; /* LC_CODEC_ABI_VERSION */
    lc_codec_id_t id;
    const char *name; /* spec name */
    uint32_t caps;    /* LC_CODEC_CAP_* */
    uint32_t elem;    /* bytes per element the zstd stage shuffles by (0: no shuffle) */
    /* Fill defaults in p and check it; LC_ERR_INVALID_ARG (logged) when bad. */
    lc_status_t (*check)(lc_codec_params_t *p);
    /* Upper bound of the body for count elements. */
    size_t (*max_body_size)(const lc_codec_params_t *p, size_t count);
    /* Encode src[0..count) (+ residual when non-NULL, then updated) into dst (cap bytes, at
     * least max_body_size); the body length goes to *len_p. rng: the tensor's stream. */
    lc_status_t (*encode)(const lc_codec_params_t *p, lc_codec_work_t *w, const float *src,
                          float *residual, uint64_t *rng, size_t count, uint8_t *dst, size_t cap,
                          size_t *len_p);
    /* dst[0..count) = decoded body. */
    lc_status_t (*decode)(const lc_codec_params_t *p, const uint8_t *src, size_t len, float *dst,
                          size_t count);
    /* acc[0..count) += decoded body, in one pass. On LC_ERR_CORRUPT acc may be partly updated
     * only if the codec documents it; every codec here validates before touching acc. */
    lc_status_t (*decode_accumulate)(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                     float *acc, size_t count);
    /* Optional (NULL: the front copies res_in to residual and calls encode): encode with the
     * residual read from res_in and the updated one written to residual (which may equal
     * res_in), in the same passes, so a collective that keeps its committed residual
     * untouched pays no copy. */
    lc_status_t (*encode_split)(const lc_codec_params_t *p, lc_codec_work_t *w, const float *src,
                                const float *res_in, float *residual, uint64_t *rng, size_t count,
                                uint8_t *dst, size_t cap, size_t *len_p);
} lc_codec_ops_t;

/* The registry: lc__codec_ops_get(id) or NULL. */
const lc_codec_ops_t *lc__codec_ops_get(lc_codec_id_t id);
/* By spec name ("onebit"), or NULL. */
const lc_codec_ops_t *lc__codec_ops_find(const char *name, size_t len);

/*
 * Parse a spec: none, onebit[:BLOCK][:mean|rms], topk:DENSITY|k=N[:exact|approx][:block=N],
 * int8[:BLOCK][:stochastic][:seed=N], fp16, bf16, zstd[:LEVEL][:auto|force], and a codec
 * followed by "+zstd..." (e.g. "topk:0.01+zstd"). Every codec also takes seed=N and
 * block=N. On error: LC_ERR_INVALID_ARG and a log line naming the bad part.
 */
lc_status_t lc__codec_parse(const char *spec, lc_codec_params_t *params_p);
/* The canonical spec of params into buf (at most len bytes with the NUL). */
void lc__codec_format(const lc_codec_params_t *params, char *buf, size_t len);

typedef struct lc_codec lc_codec_t;

/* Instantiate params (checked and completed with defaults). */
lc_status_t lc__codec_create(const lc_codec_params_t *params, lc_codec_t **codec_p);
void lc__codec_destroy(lc_codec_t *codec);
/* The completed parameters and the vtable. */
const lc_codec_params_t *lc__codec_params(const lc_codec_t *codec);
const lc_codec_ops_t *lc__codec_ops(const lc_codec_t *codec);

/* Upper bound of an encoded message of count elements (header included). */
size_t lc__codec_max_encoded_size(const lc_codec_t *codec, size_t count);

/* Per-tensor state for count elements (residual only for LC_CODEC_CAP_EF codecs). */
lc_status_t lc__codec_state_create(const lc_codec_t *codec, size_t count,
                                   lc_codec_state_t **state_p);
void lc__codec_state_destroy(lc_codec_state_t *state);

/*
 * Encode count elements of src (dtype LC_FLOAT32, LC_FLOAT16 or LC_BFLOAT16)
 * into dst (cap bytes). state may be NULL (no error feedback); else elements
 * [offset, offset + count) of its residual are used and updated. The message
 * length goes to *len_p. LC_ERR_INVALID_ARG when cap is below
 * lc__codec_max_encoded_size or the range is outside the state (nothing
 * changed). After LC_ERR_NO_MEMORY the residual range may be partly
 * updated: a caller that retries restores it from its own copy (the
 * collectives roll a tensor's residual back when a call fails).
 */
lc_status_t lc__codec_encode(lc_codec_t *codec, lc_codec_state_t *state, size_t offset,
                             const void *src, lc_dtype_t dtype, size_t count, void *dst, size_t cap,
                             size_t *len_p);

/*
 * lc__codec_encode with the residual read from st_in and written to st_out
 * (elements [offset, offset + count) of each; st_in is not modified). st_out
 * NULL: no error feedback. stream 0: random numbers (stochastic rounding,
 * sampling) continue st_out's stream (the seed without a state); else they
 * come from a stream of their own, seed ^ stream, and no state's stream
 * moves: the collectives name one per rank, collective and encode, so
 * what an encode draws does not depend on the order encodes run in.
 */
lc_status_t lc__codec_encode_ef(lc_codec_t *codec, const lc_codec_state_t *st_in,
                                lc_codec_state_t *st_out, size_t offset, uint64_t stream,
                                const void *src, lc_dtype_t dtype, size_t count, void *dst,
                                size_t cap, size_t *len_p);

/* Decode a message of len bytes that must hold exactly count elements into dst (f32). */
lc_status_t lc__codec_decode(lc_codec_t *codec, const void *src, size_t len, float *dst,
                             size_t count);
/* acc[i] += decoded[i] for a message of exactly count elements; acc untouched on error. */
lc_status_t lc__codec_decode_accumulate(lc_codec_t *codec, const void *src, size_t len, float *acc,
                                        size_t count);

/* What the zstd stage did on this codec's last encode (for lc-bench and tests). */
typedef struct {
    uint64_t calls;      /* bodies offered to zstd (auto mode skips some encodes entirely) */
    uint64_t compressed; /* of which the body went out compressed */
    uint64_t in_bytes;   /* bodies offered to zstd */
    uint64_t out_bytes;  /* what zstd made of them */
    uint64_t ns;         /* time spent in shuffle + zstd */
} lc_codec_zstd_stats_t;
void lc__codec_zstd_stats(const lc_codec_t *codec, lc_codec_zstd_stats_t *stats_p);

/* SIMD: which kernels run. Chosen once from cpuid (LC_CODEC_ISA=c|avx2 overrides);
 * tests force each to compare their bytes. */
typedef enum { LC_CODEC_ISA_C = 0, LC_CODEC_ISA_AVX2 = 1 } lc_codec_isa_t;
lc_codec_isa_t lc__codec_isa(void);
/* Force isa (AVX2 only when the CPU has it); returns the one now in force. */
lc_codec_isa_t lc__codec_set_isa(lc_codec_isa_t isa);

/* splitmix64: the random stream of a state (seeded from params.seed). */
static inline uint64_t lc__codec_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Little-endian field access for bodies (the wire is little-endian whatever the host). */
static inline void lc__codec_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void lc__codec_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t lc__codec_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static inline uint64_t lc__codec_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#endif
