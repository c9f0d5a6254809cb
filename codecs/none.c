/*
 * none: f32 as is. The body is count little-endian f32 values (4 count
 * bytes); any bit pattern is valid. With "+zstd" (or "zstd" alone) the zstd
 * stage shuffles it by 4 bytes and compresses it losslessly.
 */
#include "codecs/codec.h"
#include "codecs/kernels.h"
#include "core/util.h"

#include <string.h>

static lc_status_t lc__none_check(lc_codec_params_t *p)
{
    (void)p;
    return LC_OK;
}

static size_t lc__none_max_body(const lc_codec_params_t *p, size_t count)
{
    size_t bytes;
    (void)p;
    return lc__mul_ok(count, sizeof(float), &bytes) ? bytes : SIZE_MAX; /* rejected by encode */
}

static lc_status_t lc__none_encode(const lc_codec_params_t *p, lc_codec_work_t *w, const float *src,
                                   float *residual, uint64_t *rng, size_t count, uint8_t *dst,
                                   size_t cap, size_t *len_p)
{
    if (count) memcpy(dst, src, count * sizeof(float));
    *len_p = count * sizeof(float);
    return LC_OK;
}

static lc_status_t lc__none_decode(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                   float *dst, size_t count)
{
    if (len != count * sizeof(float)) return LC_ERR_CORRUPT;
    if (count) memcpy(dst, src, len);
    return LC_OK;
}

static lc_status_t lc__none_decode_acc(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                       float *acc, size_t count)
{
    if (len != count * sizeof(float)) return LC_ERR_CORRUPT;
    lc__kern_add_f32(acc, src, count);
    return LC_OK;
}

const lc_codec_ops_t lc__codec_none_ops = {
    .abi_version = LC_CODEC_ABI_VERSION,
    .id = LC_CODEC_NONE,
    .name = "none",
    .caps = LC_CODEC_CAP_SUMMABLE,
    .elem = 4,
    .check = lc__none_check,
    .max_body_size = lc__none_max_body,
    .encode = lc__none_encode,
    .decode = lc__none_decode,
    .decode_accumulate = lc__none_decode_acc,
};
