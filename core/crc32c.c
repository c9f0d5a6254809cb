/*
 * CRC32C: hardware (SSE4.2) and table-driven software paths.
 */
#include "core/crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t lc__crc_table[8][256];
static pthread_once_t lc__crc_once = PTHREAD_ONCE_INIT;
static int lc__crc_hw;

static void lc__crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        lc__crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t prev = lc__crc_table[t - 1][i];
            lc__crc_table[t][i] = (prev >> 8) ^ lc__crc_table[0][prev & 0xff];
        }
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    lc__crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

uint32_t lc__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    pthread_once(&lc__crc_once, lc__crc_init);
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= crc; /* little-endian hosts only (x86-64, aarch64) */
        crc = lc__crc_table[7][lo & 0xff] ^ lc__crc_table[6][(lo >> 8) & 0xff] ^
              lc__crc_table[5][(lo >> 16) & 0xff] ^ lc__crc_table[4][lo >> 24] ^
              lc__crc_table[3][hi & 0xff] ^ lc__crc_table[2][(hi >> 8) & 0xff] ^
              lc__crc_table[1][(hi >> 16) & 0xff] ^ lc__crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) crc = (crc >> 8) ^ lc__crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t lc__crc32c_hw(uint32_t crc, const void *buf,
                                                                size_t len)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;

    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

uint32_t lc__crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&lc__crc_once, lc__crc_init);
#if defined(__x86_64__)
    if (lc__crc_hw) return lc__crc32c_hw(crc, buf, len);
#endif
    return lc__crc32c_sw(crc, buf, len);
}
