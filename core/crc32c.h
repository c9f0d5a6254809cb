/*
 * CRC32C (Castagnoli), the checksum of frame payloads when LC_CHECKSUM=1.
 * Uses the SSE4.2 crc32 instruction when the CPU has it (chosen once at run
 * time), else a slicing table; both give the same values.
 */
#ifndef LC_CORE_CRC32C_H
#define LC_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: start with crc = 0. lc__crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t lc__crc32c(uint32_t crc, const void *buf, size_t len);
/* The portable path, exposed so tests can compare both. */
uint32_t lc__crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
