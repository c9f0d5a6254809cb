/*
 * Prints the size and every field's offset of the public structures of
 * laconic.h, and the values of its enums, one "name value" line each.
 * tests/python/test_package.py compares them with the ctypes declarations
 * of python/laconic/_capi.py, so the binding cannot drift from the header.
 */
#include <laconic.h>
#include <stddef.h>
#include <stdio.h>

#define SIZE(t) printf("%s.sizeof %zu\n", #t, sizeof(t))
#define FIELD(t, f) printf("%s.%s %zu %zu\n", #t, #f, offsetof(t, f), sizeof(((t *)0)->f))
#define VALUE(v) printf("%s %lld\n", #v, (long long)(v))

int main(void)
{
    SIZE(lc_unique_id_t);
    FIELD(lc_unique_id_t, internal);

    SIZE(lc_comm_params_t);
    FIELD(lc_comm_params_t, field_mask);
    FIELD(lc_comm_params_t, rank);
    FIELD(lc_comm_params_t, size);
    FIELD(lc_comm_params_t, coord);
    FIELD(lc_comm_params_t, job_key);
    FIELD(lc_comm_params_t, timeout_ms);
    FIELD(lc_comm_params_t, peer_timeout_ms);
    FIELD(lc_comm_params_t, transport);
    FIELD(lc_comm_params_t, steps);
    FIELD(lc_comm_params_t, coordinator);

    SIZE(lc_op_params_t);
    FIELD(lc_op_params_t, field_mask);
    FIELD(lc_op_params_t, algo);
    FIELD(lc_op_params_t, chunk_bytes);
    FIELD(lc_op_params_t, codec);
    FIELD(lc_op_params_t, codec_spec);
    FIELD(lc_op_params_t, tensor_key);
    FIELD(lc_op_params_t, error_feedback);
    FIELD(lc_op_params_t, flags);

    SIZE(lc_op_info_t);
    FIELD(lc_op_info_t, bytes_sent);
    FIELD(lc_op_info_t, bytes_received);
    FIELD(lc_op_info_t, wire_bytes);
    FIELD(lc_op_info_t, ratio);
    FIELD(lc_op_info_t, algo);
    FIELD(lc_op_info_t, elapsed_us);
    FIELD(lc_op_info_t, epoch);
    FIELD(lc_op_info_t, seq);
    FIELD(lc_op_info_t, codec);
    FIELD(lc_op_info_t, encode_us);
    FIELD(lc_op_info_t, decode_us);
    FIELD(lc_op_info_t, wire_us);

    SIZE(lc_status_t);
    SIZE(lc_dtype_t);
    SIZE(lc_op_t);
    SIZE(lc_algo_t);
    SIZE(lc_codec_type_t);

    VALUE(LC_OK);
    VALUE(LC_INPROGRESS);
    VALUE(LC_ERR_INVALID_ARG);
    VALUE(LC_ERR_NO_MEMORY);
    VALUE(LC_ERR_UNSUPPORTED);
    VALUE(LC_ERR_TIMEOUT);
    VALUE(LC_ERR_CORRUPT);
    VALUE(LC_ERR_MISMATCH);
    VALUE(LC_ERR_SYSTEM);
    VALUE(LC_ERR_PEER_LOST);
    VALUE(LC_ERR_REVOKED);
    VALUE(LC_ERR_TOO_FEW_PEERS);
    VALUE(LC_ERR_COORD_LOST);
    VALUE(LC_ERR_REJECTED);
    VALUE(LC_ERR_REMOVED);
    VALUE(LC_FLOAT32);
    VALUE(LC_FLOAT16);
    VALUE(LC_BFLOAT16);
    VALUE(LC_FLOAT64);
    VALUE(LC_INT32);
    VALUE(LC_INT64);
    VALUE(LC_UINT8);
    VALUE(LC_SUM);
    VALUE(LC_AVG);
    VALUE(LC_MAX);
    VALUE(LC_MIN);
    VALUE(LC_PROD);
    VALUE(LC_ALGO_AUTO);
    VALUE(LC_ALGO_RING);
    VALUE(LC_ALGO_TREE);
    VALUE(LC_ALGO_RECDBL);
    VALUE(LC_ALGO_CHAIN);
    VALUE(LC_ALGO_TWOPHASE);
    VALUE(LC_ALGO_PAIRWISE);
    VALUE(LC_ALGO_SPARSE);
    VALUE(LC_CODEC_NONE);
    VALUE(LC_CODEC_ONEBIT);
    VALUE(LC_CODEC_TOPK);
    VALUE(LC_CODEC_INT8);
    VALUE(LC_CODEC_FP16);
    VALUE(LC_CODEC_BF16);
    VALUE(LC_EF_OFF);
    VALUE(LC_EF_ON);
    VALUE(LC_EF_WORKER);
    VALUE(LC_EF_RESIDUAL);
    VALUE(LC_EF_HOPS);
    VALUE(LC_UNIQUE_ID_BYTES);
    VALUE(LC_COMM_PARAM_FIELD_RANK);
    VALUE(LC_COMM_PARAM_FIELD_SIZE);
    VALUE(LC_COMM_PARAM_FIELD_COORD);
    VALUE(LC_COMM_PARAM_FIELD_JOB_KEY);
    VALUE(LC_COMM_PARAM_FIELD_TIMEOUT_MS);
    VALUE(LC_COMM_PARAM_FIELD_PEER_TIMEOUT_MS);
    VALUE(LC_COMM_PARAM_FIELD_TRANSPORT);
    VALUE(LC_COMM_PARAM_FIELD_STEPS);
    VALUE(LC_COMM_PARAM_FIELD_COORDINATOR);
    VALUE(LC_OP_PARAM_FIELD_ALGO);
    VALUE(LC_OP_PARAM_FIELD_CHUNK_BYTES);
    VALUE(LC_OP_PARAM_FIELD_CODEC);
    VALUE(LC_OP_PARAM_FIELD_CODEC_SPEC);
    VALUE(LC_OP_PARAM_FIELD_TENSOR_KEY);
    VALUE(LC_OP_PARAM_FIELD_ERROR_FEEDBACK);
    VALUE(LC_OP_PARAM_FIELD_FLAGS);
    VALUE(LC_OP_FLAG_RESTORE_INPUT);
    return 0;
}
