/*
 * SHA-256 and HMAC-SHA256, written from FIPS 180-4 and RFC 2104.
 */
#include "core/sha256.h"

#include <string.h>

static const uint32_t lc__k256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

static inline uint32_t lc__ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void lc__sha256_block(lc_sha256_t *s, const uint8_t *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, h;

    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = lc__ror(w[i - 15], 7) ^ lc__ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = lc__ror(w[i - 2], 17) ^ lc__ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
    e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (lc__ror(e, 6) ^ lc__ror(e, 11) ^ lc__ror(e, 25)) + ((e & f) ^ (~e & g)) +
                      lc__k256[i] + w[i];
        uint32_t t2 =
            (lc__ror(a, 2) ^ lc__ror(a, 13) ^ lc__ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g, g = f, f = e, e = d + t1;
        d = c, c = b, b = a, a = t1 + t2;
    }
    s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d;
    s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

void lc__sha256_init(lc_sha256_t *s)
{
    static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(s->h, iv, sizeof(iv));
    s->len = 0;
    s->nbuf = 0;
}

void lc__sha256_update(lc_sha256_t *s, const void *data, size_t len)
{
    const uint8_t *p = data;

    s->len += len;
    while (len > 0) {
        size_t take = 64 - s->nbuf;
        if (take > len) take = len;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take;
        p += take;
        len -= take;
        if (s->nbuf == 64) {
            lc__sha256_block(s, s->buf);
            s->nbuf = 0;
        }
    }
}

void lc__sha256_final(lc_sha256_t *s, uint8_t out[LC_SHA256_BYTES])
{
    uint64_t bits = s->len * 8;
    uint8_t pad = 0x80, zero = 0, lenbe[8];

    lc__sha256_update(s, &pad, 1);
    while (s->nbuf != 56) lc__sha256_update(s, &zero, 1);
    for (int i = 0; i < 8; i++) lenbe[i] = (uint8_t)(bits >> (56 - 8 * i));
    lc__sha256_update(s, lenbe, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void lc__hmac_sha256(const uint8_t *key, size_t keylen, const void *const *parts,
                     const size_t *lens, int nparts, uint8_t out[LC_SHA256_BYTES])
{
    uint8_t k[64] = { 0 }, pad[64], inner[LC_SHA256_BYTES];
    lc_sha256_t s;

    if (keylen > 64) {
        lc__sha256_init(&s);
        lc__sha256_update(&s, key, keylen);
        lc__sha256_final(&s, k);
    } else if (keylen > 0) {
        memcpy(k, key, keylen);
    }
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    lc__sha256_init(&s);
    lc__sha256_update(&s, pad, 64);
    for (int i = 0; i < nparts; i++) lc__sha256_update(&s, parts[i], lens[i]);
    lc__sha256_final(&s, inner);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    lc__sha256_init(&s);
    lc__sha256_update(&s, pad, 64);
    lc__sha256_update(&s, inner, sizeof(inner));
    lc__sha256_final(&s, out);
}

void lc__hmac_proof(const uint8_t *key, size_t keylen, const char label[8], const uint8_t nonce[16],
                    const uint8_t *ids, size_t idlen, uint8_t out[LC_SHA256_BYTES])
{
    const void *parts[] = { label, nonce, ids };
    const size_t lens[] = { 8, 16, idlen };
    lc__hmac_sha256(key, keylen, parts, lens, 3, out);
}

int lc__ct_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < len; i++) d |= x[i] ^ y[i];
    return d == 0;
}
