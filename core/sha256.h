/*
 * SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for authenticating
 * connections with the job key. Small and dependency-free; speed does not
 * matter here (a few hashes per connection).
 */
#ifndef LC_CORE_SHA256_H
#define LC_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define LC_SHA256_BYTES 32

typedef struct {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t nbuf;
} lc_sha256_t;

void lc__sha256_init(lc_sha256_t *s);
void lc__sha256_update(lc_sha256_t *s, const void *data, size_t len);
void lc__sha256_final(lc_sha256_t *s, uint8_t out[LC_SHA256_BYTES]);

/* HMAC-SHA256 over the concatenation of up to 8 message parts (NULL-terminated
 * lists are awkward in C; pass parts and lengths as arrays). */
void lc__hmac_sha256(const uint8_t *key, size_t keylen, const void *const *parts,
                     const size_t *lens, int nparts, uint8_t out[LC_SHA256_BYTES]);

/* The handshakes' proof: HMAC-SHA256(key, label (8 bytes), nonce (16
 * bytes), ids (idlen bytes)). */
void lc__hmac_proof(const uint8_t *key, size_t keylen, const char label[8], const uint8_t nonce[16],
                    const uint8_t *ids, size_t idlen, uint8_t out[LC_SHA256_BYTES]);

/* Constant-time comparison: 1 if equal. */
int lc__ct_equal(const void *a, const void *b, size_t len);

#endif
