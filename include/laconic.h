/**
 * @file laconic.h
 * @brief Laconic: MPI-style collective operations that compress what they send.
 *
 * This is the one public header of liblaconic. Everything a program needs to
 * create a communicator and run collectives on it is declared here; the
 * optional @c laconic_mpi.h adds a communicator built from an @c MPI_Comm.
 *
 * Conventions (stable across releases):
 * - Every function returns an ::lc_status_t; outputs (the @c _p arguments,
 *   always last) are written only when the call returns ::LC_OK.
 * - Handles are opaque. Parameter structs start with a @c field_mask: a field
 *   is read only when its bit is set, so new fields never break old callers.
 *   A NULL params pointer means "all defaults".
 * - Status values never change meaning or number.
 * - Collectives on one communicator run in the order they were called, on
 *   every rank (like operations on one NCCL stream). All ranks must call the
 *   same collectives in the same order with matching arguments; ranks that
 *   disagree on count, datatype, operation or root get ::LC_ERR_MISMATCH.
 * - Non-blocking calls (@c lc_i*) return at once: a per-communicator progress
 *   thread moves the bytes while the caller computes. Blocking calls are the
 *   non-blocking call followed by lc_wait().
 * - Nothing waits forever: a peer that dies is reported as
 *   ::LC_ERR_PEER_LOST within the peer timeout (@c LC_PEER_TIMEOUT_MS), and a
 *   collective that makes no progress fails with ::LC_ERR_TIMEOUT after
 *   @c LC_TIMEOUT_MS.
 *
 * Minimal use:
 * @code
 *   lc_comm_t *comm;
 *   if (lc_comm_init(NULL, &comm) != LC_OK) exit(1);   // LC_RANK, LC_WORLD_SIZE, LC_COORD
 *   lc_allreduce(grad, grad, n, LC_FLOAT32, LC_SUM, comm, NULL);
 *   lc_comm_destroy(comm);
 * @endcode
 */
#ifndef LACONIC_H
#define LACONIC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Marks a symbol exported from liblaconic (all others are hidden). */
#if defined(__GNUC__)
#define LC_API __attribute__((visibility("default")))
#else
#define LC_API
#endif

/** @brief Major version of this header. */
#define LC_VERSION_MAJOR 0
/** @brief Minor version of this header. */
#define LC_VERSION_MINOR 1
/** @brief Patch version of this header. */
#define LC_VERSION_PATCH 0
/** @brief Version as one number: major * 10000 + minor * 100 + patch. */
#define LC_VERSION_NUMBER (LC_VERSION_MAJOR * 10000 + LC_VERSION_MINOR * 100 + LC_VERSION_PATCH)

/**
 * @brief Status codes. Values are part of the ABI and never change.
 *
 * Codes at or below ::LC_ERR_PEER_LOST concern membership: the communicator
 * has lost a peer and collectives on it fail until it is rebuilt.
 */
typedef enum {
    LC_OK = 0,         /**< Success. */
    LC_INPROGRESS = 1, /**< Operation has not completed yet (lc_test()). */
    LC_ERR_INVALID_ARG =
        -1, /**< An argument is invalid (NULL buffer, bad count, unknown dtype/op...). */
    LC_ERR_NO_MEMORY = -2,      /**< An allocation failed. */
    LC_ERR_UNSUPPORTED = -3,    /**< Valid but not supported (e.g. a transport not built in). */
    LC_ERR_TIMEOUT = -4,        /**< No progress within the configured timeout. */
    LC_ERR_CORRUPT = -5,        /**< A frame or codec payload failed validation. */
    LC_ERR_MISMATCH = -6,       /**< Ranks disagree on count, dtype, op, root or collective. */
    LC_ERR_SYSTEM = -7,         /**< A system call failed (see the log for errno). */
    LC_ERR_PEER_LOST = -40,     /**< A peer died, closed its connections or went silent. */
    LC_ERR_REVOKED = -41,       /**< The communicator was revoked; retry after it is rebuilt. */
    LC_ERR_TOO_FEW_PEERS = -42, /**< Not enough peers left to continue. */
    LC_ERR_COORD_LOST = -43,    /**< The coordinator (rendezvous) could not be reached. */
    LC_ERR_REJECTED = -44,      /**< A connection or join was refused (wrong job or key). */
    LC_ERR_REMOVED = -45        /**< This rank was removed from the communicator's view (it
                                   was taken for failed: stopped, cut off, too slow) and the
                                   others went on without it; it cannot rejoin this view. */
} lc_status_t;

/**
 * @brief A human-readable, static string for a status code.
 * @param status Any value; unknown values give "unknown status".
 * @return A string that must not be freed.
 */
LC_API const char *lc_status_str(lc_status_t status);

/**
 * @brief Element datatypes. f16 and bf16 are reduced in f32 and rounded back
 * (round to nearest even).
 */
typedef enum {
    LC_FLOAT32 = 0,    /**< IEEE 754 binary32. */
    LC_FLOAT16 = 1,    /**< IEEE 754 binary16. */
    LC_BFLOAT16 = 2,   /**< bfloat16 (upper half of a binary32). */
    LC_FLOAT64 = 3,    /**< IEEE 754 binary64. */
    LC_INT32 = 4,      /**< Two's complement 32-bit; sum and prod wrap. */
    LC_INT64 = 5,      /**< Two's complement 64-bit; sum and prod wrap. */
    LC_UINT8 = 6,      /**< Unsigned 8-bit; sum and prod wrap. */
    LC_DTYPE_COUNT = 7 /**< Number of datatypes (not a datatype). */
} lc_dtype_t;

/**
 * @brief Reduction operations.
 *
 * ::LC_AVG is the sum divided by the number of ranks (integer division for
 * integer types, like NCCL's ncclAvg).
 */
typedef enum {
    LC_SUM = 0,     /**< Sum. */
    LC_AVG = 1,     /**< Sum divided by the number of ranks. */
    LC_MAX = 2,     /**< Maximum. */
    LC_MIN = 3,     /**< Minimum. */
    LC_PROD = 4,    /**< Product. */
    LC_OP_COUNT = 5 /**< Number of operations (not an operation). */
} lc_op_t;

/**
 * @brief Collective algorithms. ::LC_ALGO_AUTO picks by size and rank count;
 * @c LC_ALGO (environment) or lc_op_params_t::algo forces one. Forcing an
 * algorithm that does not apply to a collective returns ::LC_ERR_UNSUPPORTED.
 */
typedef enum {
    LC_ALGO_AUTO = 0,   /**< Choose automatically. */
    LC_ALGO_RING = 1,   /**< Ring (allreduce = reduce-scatter + allgather, chunk-pipelined). */
    LC_ALGO_TREE = 2,   /**< Double binary tree (allreduce) / pipelined binary tree (broadcast). */
    LC_ALGO_RECDBL = 3, /**< Recursive doubling (small-message allreduce, allgather, barrier). */
    LC_ALGO_CHAIN = 4,  /**< Pipelined chain (broadcast). */
    LC_ALGO_TWOPHASE = 5, /**< Compressed allreduce: encoded all-to-all to the owner of each
                             segment, which sums and re-encodes once, then an all-gather
                             of those bytes. */
    LC_ALGO_PAIRWISE = 6, /**< Pairwise exchange (alltoall, alltoallv). */
    LC_ALGO_SPARSE = 7,   /**< Compressed allreduce meant for topk: a ring all-gather of
                             every rank's encoding, summed by every rank in rank order (no
                             re-encode). Takes any codec when forced (n encoded buffers of
                             scratch per rank). */
    LC_ALGO_COUNT = 8     /**< Number of algorithms (not an algorithm). */
} lc_algo_t;

/**
 * @brief A static name for an algorithm ("auto", "ring", "tree", "recdbl", "chain",
 * "twophase", "pairwise", "sparse").
 * @param algo Any value; unknown values give "unknown".
 * @return A string that must not be freed.
 */
LC_API const char *lc_algo_str(lc_algo_t algo);

/**
 * @brief Size in bytes of one element of a datatype.
 * @param dtype A datatype.
 * @return The size, or 0 for an unknown datatype.
 */
LC_API size_t lc_dtype_size(lc_dtype_t dtype);

/** @brief Opaque communicator: a group of ranks and the connections between them. */
typedef struct lc_comm lc_comm_t;

/** @brief Opaque handle of a non-blocking collective. */
typedef struct lc_request lc_request_t;

/** @brief Size in bytes of an ::lc_unique_id_t. */
#define LC_UNIQUE_ID_BYTES 128

/**
 * @brief Opaque token naming a rendezvous, made by lc_get_unique_id() on one
 * rank and passed (by any means: MPI_Bcast, a file) to all others, as with
 * NCCL's ncclUniqueId. It holds the rendezvous address and the job's key:
 * treat it as a secret.
 */
typedef struct {
    char internal[LC_UNIQUE_ID_BYTES]; /**< Opaque bytes. */
} lc_unique_id_t;

/** @brief Bits of lc_comm_params_t::field_mask. */
enum {
    LC_COMM_PARAM_FIELD_RANK = 1u << 0,            /**< lc_comm_params_t::rank is set. */
    LC_COMM_PARAM_FIELD_SIZE = 1u << 1,            /**< lc_comm_params_t::size is set. */
    LC_COMM_PARAM_FIELD_COORD = 1u << 2,           /**< lc_comm_params_t::coord is set. */
    LC_COMM_PARAM_FIELD_JOB_KEY = 1u << 3,         /**< lc_comm_params_t::job_key is set. */
    LC_COMM_PARAM_FIELD_TIMEOUT_MS = 1u << 4,      /**< lc_comm_params_t::timeout_ms is set. */
    LC_COMM_PARAM_FIELD_PEER_TIMEOUT_MS = 1u << 5, /**< lc_comm_params_t::peer_timeout_ms is set. */
    LC_COMM_PARAM_FIELD_TRANSPORT = 1u << 6,       /**< lc_comm_params_t::transport is set. */
    LC_COMM_PARAM_FIELD_STEPS = 1u << 7,           /**< lc_comm_params_t::steps is set. */
    LC_COMM_PARAM_FIELD_COORDINATOR = 1u << 8      /**< lc_comm_params_t::coordinator is set. */
};

/**
 * @brief Parameters of lc_comm_init(). Fields not named in @c field_mask come
 * from the environment (see README: LC_RANK, LC_WORLD_SIZE, LC_COORD,
 * LC_JOB_KEY, LC_TIMEOUT_MS, LC_PEER_TIMEOUT_MS, LC_TRANSPORT) and then from
 * built-in defaults.
 */
typedef struct {
    uint64_t field_mask;      /**< Which fields below are set (LC_COMM_PARAM_FIELD_*). */
    int rank;                 /**< This process's rank, 0 <= rank < size. */
    int size;                 /**< Number of ranks. */
    const char *coord;        /**< Rendezvous address "host:port"; rank 0 serves it. */
    const char *job_key;      /**< Shared secret that authenticates every connection. */
    uint32_t timeout_ms;      /**< No-progress timeout of a collective (0 = library default). */
    uint32_t peer_timeout_ms; /**< Silence after which a peer is declared lost (0 = default). */
    const char *transport;    /**< Transport name: "tcp" (default). */
    int steps;                /**< 1: keep each step's state so that a step that aborts
                                 (lc_step_commit()) leaves error-feedback residuals, and
                                 inputs of calls with ::LC_OP_FLAG_RESTORE_INPUT, as they
                                 were before it (@c LC_STEPS; default 0). Costs a third
                                 residual buffer for a tensor key used twice in a step. */
    const char *coordinator;  /**< The membership coordinator's "host:port" (@c
                                 LC_COORDINATOR, which lcrun sets; NULL = none: view changes
                                 fail with ::LC_ERR_COORD_LOST). */
} lc_comm_params_t;

/**
 * @brief Create a communicator from parameters and the environment.
 *
 * Every rank calls this collectively. Rank and size come from @p params, else
 * from @c LC_RANK / @c LC_WORLD_SIZE, else from Open MPI's
 * @c OMPI_COMM_WORLD_RANK / @c OMPI_COMM_WORLD_SIZE (so programs started by
 * @c mpirun work). Rank 0 serves the rendezvous at @c LC_COORD (host:port).
 *
 * @param params Parameters, or NULL for all from the environment.
 * @param comm_p Receives the new communicator on success.
 * @return ::LC_OK; ::LC_ERR_INVALID_ARG for missing or bad rank/size/coord;
 *   ::LC_ERR_COORD_LOST if the rendezvous cannot be reached in time;
 *   ::LC_ERR_REJECTED if peers do not share the job key; ::LC_ERR_SYSTEM.
 */
LC_API lc_status_t lc_comm_init(const lc_comm_params_t *params, lc_comm_t **comm_p);

/**
 * @brief Make a unique id for lc_comm_init_rank() (call on one rank only).
 *
 * Starts a rendezvous service in this process, listening on the address of
 * @c LC_COORD if set (else on all interfaces, an ephemeral port), that lives
 * until every rank of the communicator has checked in or the timeout passes.
 *
 * @param id_p Receives the id.
 * @return ::LC_OK or ::LC_ERR_SYSTEM.
 */
LC_API lc_status_t lc_get_unique_id(lc_unique_id_t *id_p);

/**
 * @brief Create a communicator from a unique id (NCCL's ncclCommInitRank).
 * @param nranks Number of ranks.
 * @param id The id made by lc_get_unique_id() on one rank.
 * @param rank This process's rank, 0 <= rank < nranks.
 * @param comm_p Receives the new communicator.
 * @return As lc_comm_init().
 */
LC_API lc_status_t lc_comm_init_rank(int nranks, const lc_unique_id_t *id, int rank,
                                     lc_comm_t **comm_p);

/**
 * @brief lc_comm_init_rank() with parameters: the timeouts and transport of
 * @p params (lc_comm_params_t::timeout_ms, lc_comm_params_t::peer_timeout_ms,
 * lc_comm_params_t::transport) override the environment for this
 * communicator alone. Rank, size, rendezvous and job key come from the id
 * and the arguments: a @p params that names them is refused.
 * @param nranks Number of ranks.
 * @param id The id made by lc_get_unique_id() on one rank.
 * @param rank This process's rank, 0 <= rank < nranks.
 * @param params Parameters, or NULL (then as lc_comm_init_rank()).
 * @param comm_p Receives the new communicator.
 * @return As lc_comm_init(); ::LC_ERR_INVALID_ARG if @p params sets rank,
 *   size, coord or job_key.
 */
LC_API lc_status_t lc_comm_init_rank_params(int nranks, const lc_unique_id_t *id, int rank,
                                            const lc_comm_params_t *params, lc_comm_t **comm_p);

/**
 * @brief Destroy a communicator. Collectives still in flight fail with
 * ::LC_ERR_REVOKED; their requests must still be freed. Not collective, but
 * peers of a destroyed communicator see it as lost.
 * @param comm The communicator (NULL is allowed and does nothing).
 * @return ::LC_OK.
 */
LC_API lc_status_t lc_comm_destroy(lc_comm_t *comm);

/**
 * @brief This process's rank in @p comm.
 * @param comm A communicator.
 * @param rank_p Receives the rank.
 * @return ::LC_OK or ::LC_ERR_INVALID_ARG.
 */
LC_API lc_status_t lc_comm_rank(const lc_comm_t *comm, int *rank_p);

/**
 * @brief Number of ranks in @p comm.
 * @param comm A communicator.
 * @param size_p Receives the size.
 * @return ::LC_OK or ::LC_ERR_INVALID_ARG.
 */
LC_API lc_status_t lc_comm_size(const lc_comm_t *comm, int *size_p);

/**
 * @brief Codecs: how a collective compresses what it sends (per call, see
 * lc_op_params_t). Values are part of the ABI.
 *
 * Every codec, the lossless "zstd" stage alone included, takes ::LC_FLOAT32
 * data, and an all-reduce with a codec takes ::LC_SUM or ::LC_AVG only;
 * other combinations, and a codec on reduce-scatter or barrier, get
 * ::LC_ERR_UNSUPPORTED. Error feedback (onebit, topk) needs a tensor key.
 */
typedef enum {
    LC_CODEC_NONE = 0,   /**< No compression (with "+zstd": a lossless stage only). */
    LC_CODEC_ONEBIT = 1, /**< Sign bits and one scale (mean |x|) per block of 2048: about 32x. */
    LC_CODEC_TOPK = 2,   /**< The largest magnitudes (default 1%) as indices + values. */
    LC_CODEC_INT8 = 3,   /**< int8 with one scale per block of 256: about 3.9x. */
    LC_CODEC_FP16 = 4,   /**< IEEE binary16, round to nearest even: 2x. */
    LC_CODEC_BF16 = 5    /**< bfloat16, round to nearest even: 2x. */
} lc_codec_type_t;

/**
 * @brief Error-feedback schemes: what a compressed collective does with what
 * its encodes drop (lc_op_params_t::error_feedback). Every scheme keeps its
 * state under the call's tensor key and leaves every rank with bit-identical
 * results. The default was chosen on real training (docs/training.md).
 */
typedef enum {
    LC_EF_OFF = 0,      /**< None: what an encode drops is lost. */
    LC_EF_ON = 1,       /**< The codec's default: ::LC_EF_HOPS for onebit,
                           ::LC_EF_RESIDUAL for topk. */
    LC_EF_WORKER = 2,   /**< A residual per rank over its input only: what a rank's encode
                           of its gradient drops is added to its next call. Sums that are
                           encoded again on the way (two-phase, ring, tree) are not
                           compensated. */
    LC_EF_RESIDUAL = 3, /**< The worker residual, and a second residual on every re-encode
                           of a sum, kept by the rank that re-encodes it (two-level
                           compensation, as in DoubleSqueeze and DeepSpeed's 1-bit
                           Adam). */
    LC_EF_HOPS = 4,     /**< The worker residual, and a residual on the partial sums
                           re-encoded on the way (the ring's intermediate hops, the tree's
                           inner nodes) but none on the final encode of the complete sum
                           (two-phase's owner, the ring's last hop, a tree's root). */
    LC_EF_COUNT = 5     /**< Number of schemes (not a scheme). */
} lc_ef_t;

/** @brief Bits of lc_op_params_t::field_mask. */
enum {
    LC_OP_PARAM_FIELD_ALGO = 1u << 0,           /**< lc_op_params_t::algo is set. */
    LC_OP_PARAM_FIELD_CHUNK_BYTES = 1u << 1,    /**< lc_op_params_t::chunk_bytes is set. */
    LC_OP_PARAM_FIELD_CODEC = 1u << 2,          /**< lc_op_params_t::codec is set. */
    LC_OP_PARAM_FIELD_CODEC_SPEC = 1u << 3,     /**< lc_op_params_t::codec_spec is set. */
    LC_OP_PARAM_FIELD_TENSOR_KEY = 1u << 4,     /**< lc_op_params_t::tensor_key is set. */
    LC_OP_PARAM_FIELD_ERROR_FEEDBACK = 1u << 5, /**< lc_op_params_t::error_feedback is set. */
    LC_OP_PARAM_FIELD_FLAGS = 1u << 6           /**< lc_op_params_t::flags is set. */
};

/** @brief Bits of lc_op_params_t::flags. */
enum {
    /** An in-place call (sendbuf == recvbuf) on a communicator with steps
     * (lc_comm_params_t::steps): keep a copy of the input until the step is
     * settled; if the step aborts, lc_step_commit() puts it back. */
    LC_OP_FLAG_RESTORE_INPUT = 1u << 0
};

/** @brief Per-call parameters of a collective (NULL means all defaults). */
typedef struct {
    uint64_t field_mask;    /**< Which fields below are set (LC_OP_PARAM_FIELD_*). */
    lc_algo_t algo;         /**< Force an algorithm (::LC_ALGO_AUTO = choose). */
    size_t chunk_bytes;     /**< Pipeline chunk size in bytes, 64 B to 1 GiB (0 = default, @c
                               LC_CHUNK_BYTES). Every rank must use the same: ranks that
                               differ get ::LC_ERR_MISMATCH. */
    lc_codec_type_t codec;  /**< Compress with this codec and its default parameters (topk
                               keeps 1%). Overridden by @c codec_spec. */
    const char *codec_spec; /**< Codec as a spec string, e.g. "onebit", "topk:0.01",
                               "int8", "bf16", "fp16", "topk:0.001+zstd", "zstd" (see
                               docs/codecs.md). Every rank must pass the same codec:
                               ranks that differ get ::LC_ERR_MISMATCH. */
    uint64_t tensor_key;    /**< Names the tensor across calls: the communicator keeps its
                               error-feedback residuals under this key (see
                               lc_tensor_release()), for codecs that keep them (onebit,
                               topk; others ignore the key). A key is bound to one
                               element count (all-reduce, all-gather, broadcast root:
                               count; all-to-all: size x count; all-to-all-v: the send
                               extent, max of sdispls + sendcounts) and codec; a call
                               that reuses it with another fails with
                               ::LC_ERR_MISMATCH on every rank (the others are told).
                               Without a key there is no error feedback. */
    int error_feedback;     /**< An ::lc_ef_t: ::LC_EF_ON (the default when a key is
                               given and the codec keeps residuals: onebit, topk),
                               ::LC_EF_OFF, or a scheme by name. A key is bound to the
                               scheme of its first call; another fails with
                               ::LC_ERR_MISMATCH (release the key first). */
    uint32_t flags;         /**< LC_OP_FLAG_* bits. */
} lc_op_params_t;

/**
 * @brief Free the error-feedback state kept under @p key (a tensor that is
 * gone, or a bucket layout that changed). A collective still queued or
 * running with the key keeps its state until it completes. Not collective:
 * each rank frees its own state, so every rank should release the key at the
 * same point of its call sequence. A rank that keeps no state under the key
 * (it never used it, or only as a broadcast non-root) has nothing to free.
 * @param comm Communicator.
 * @param key The tensor key.
 * @return ::LC_OK (also when there was no state); ::LC_ERR_INVALID_ARG if
 *   @p comm is NULL.
 */
LC_API lc_status_t lc_tensor_release(lc_comm_t *comm, uint64_t key);

/**
 * @brief What a finished collective did, filled by lc_wait() / lc_test() on
 * success.
 */
typedef struct {
    uint64_t bytes_sent;     /**< Payload bytes this rank put on the wire. */
    uint64_t bytes_received; /**< Payload bytes this rank took off the wire. */
    uint64_t wire_bytes;     /**< Bytes sent including frame headers. */
    double ratio;      /**< Uncompressed payload bytes / payload bytes sent (1.0 uncompressed). */
    lc_algo_t algo;    /**< Algorithm that ran. */
    double elapsed_us; /**< Time from start on the progress thread to completion. */
    uint32_t epoch;    /**< Membership epoch the collective ran in. */
    uint64_t seq;      /**< Sequence number of the collective on this communicator. */
    lc_codec_type_t codec; /**< Codec the collective compressed with. */
    double encode_us;      /**< Time spent encoding (and folding in error feedback). */
    double decode_us;      /**< Time spent decoding and reducing decoded data. */
    double wire_us;        /**< Time during which at least one send was in flight (queued to
                              or being written to the network). When encode_us +
                              decode_us + wire_us exceeds elapsed_us, the pipeline
                              overlapped them. */
} lc_op_info_t;

/**
 * @brief Sum (or other @p op) of @p count elements across all ranks; every
 * rank gets the result, bit-identical on every rank.
 * @param sendbuf Input (may equal @p recvbuf for in-place).
 * @param recvbuf Output, @p count elements.
 * @param count Number of elements (0 is allowed).
 * @param dtype Element type.
 * @param op Reduction.
 * @param comm Communicator.
 * @param params Per-call parameters or NULL.
 * @return ::LC_OK or an error (see ::lc_status_t).
 */
LC_API lc_status_t lc_allreduce(const void *sendbuf, void *recvbuf, size_t count, lc_dtype_t dtype,
                                lc_op_t op, lc_comm_t *comm, const lc_op_params_t *params);

/**
 * @brief Non-blocking lc_allreduce(). Buffers must stay valid and unchanged
 * until the request completes.
 * @param req_p Receives the request; complete it with lc_wait() or lc_test(),
 *   then release it with lc_request_free().
 * @return ::LC_OK if started (errors of the collective come from lc_wait()),
 *   or an argument error, in which case no request is made.
 */
LC_API lc_status_t lc_iallreduce(const void *sendbuf, void *recvbuf, size_t count, lc_dtype_t dtype,
                                 lc_op_t op, lc_comm_t *comm, const lc_op_params_t *params,
                                 lc_request_t **req_p);

/**
 * @brief Copy @p count elements of @p buf on @p root to @p buf on every rank.
 * @param buf Source on the root, destination elsewhere.
 * @param count Number of elements.
 * @param dtype Element type.
 * @param root Rank that holds the data.
 * @param comm Communicator.
 * @param params Per-call parameters or NULL.
 * @return ::LC_OK or an error.
 */
LC_API lc_status_t lc_broadcast(void *buf, size_t count, lc_dtype_t dtype, int root,
                                lc_comm_t *comm, const lc_op_params_t *params);

/**
 * @brief Non-blocking lc_broadcast().
 * @param req_p Receives the request.
 */
LC_API lc_status_t lc_ibroadcast(void *buf, size_t count, lc_dtype_t dtype, int root,
                                 lc_comm_t *comm, const lc_op_params_t *params,
                                 lc_request_t **req_p);

/**
 * @brief Gather @p count elements from every rank into @p recvbuf on every
 * rank, rank r's block at offset r * count.
 * @param sendbuf This rank's block (may be @p recvbuf + rank * count * size for in-place).
 * @param recvbuf Output, size * @p count elements.
 * @param count Elements per rank.
 * @param dtype Element type.
 * @param comm Communicator.
 * @param params Per-call parameters or NULL.
 * @return ::LC_OK or an error.
 */
LC_API lc_status_t lc_allgather(const void *sendbuf, void *recvbuf, size_t count, lc_dtype_t dtype,
                                lc_comm_t *comm, const lc_op_params_t *params);

/**
 * @brief Non-blocking lc_allgather().
 * @param req_p Receives the request.
 */
LC_API lc_status_t lc_iallgather(const void *sendbuf, void *recvbuf, size_t count, lc_dtype_t dtype,
                                 lc_comm_t *comm, const lc_op_params_t *params,
                                 lc_request_t **req_p);

/**
 * @brief Reduce size * @p recvcount elements across ranks and scatter the
 * result: rank r gets block r (elements [r * recvcount, (r+1) * recvcount)).
 * @param sendbuf Input, size * @p recvcount elements.
 * @param recvbuf Output, @p recvcount elements (may be @p sendbuf + rank * recvcount * size).
 * @param recvcount Elements each rank receives.
 * @param dtype Element type.
 * @param op Reduction.
 * @param comm Communicator.
 * @param params Per-call parameters or NULL.
 * @return ::LC_OK or an error.
 */
LC_API lc_status_t lc_reduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                                     lc_dtype_t dtype, lc_op_t op, lc_comm_t *comm,
                                     const lc_op_params_t *params);

/**
 * @brief Non-blocking lc_reduce_scatter().
 * @param req_p Receives the request.
 */
LC_API lc_status_t lc_ireduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                                      lc_dtype_t dtype, lc_op_t op, lc_comm_t *comm,
                                      const lc_op_params_t *params, lc_request_t **req_p);

/**
 * @brief Every rank sends a block of @p count elements to every rank: rank
 * r's block for rank d is at @p sendbuf + d * count and lands at @p recvbuf
 * + r * count on rank d (MPI_Alltoall). With a codec in @p params, each
 * block is encoded once by its sender and decoded by its receiver; this
 * rank's own block is copied exactly.
 * @param sendbuf size * @p count elements.
 * @param recvbuf size * @p count elements; must not be @p sendbuf.
 * @param count Elements per block.
 * @param dtype Element type (::LC_FLOAT32 with a codec).
 * @param comm Communicator.
 * @param params Per-call parameters (codec, tensor key) or NULL.
 * @return ::LC_OK or an error.
 */
LC_API lc_status_t lc_alltoall(const void *sendbuf, void *recvbuf, size_t count, lc_dtype_t dtype,
                               lc_comm_t *comm, const lc_op_params_t *params);

/**
 * @brief Non-blocking lc_alltoall().
 * @param req_p Receives the request.
 */
LC_API lc_status_t lc_ialltoall(const void *sendbuf, void *recvbuf, size_t count, lc_dtype_t dtype,
                                lc_comm_t *comm, const lc_op_params_t *params,
                                lc_request_t **req_p);

/**
 * @brief All-to-all with a count and a displacement (both in elements) per
 * rank (MPI_Alltoallv). What rank r sends rank d (@p sendcounts[d] on r)
 * must be what d expects from r (@p recvcounts[r] on d): a receiver that
 * expects another count fails with ::LC_ERR_MISMATCH and tells the others,
 * which fail too unless their part was already done (as with MPI, a sender
 * whose blocks all went out may return ::LC_OK). Zero counts send no data.
 * With a codec and error feedback, the tensor key's residual is indexed like
 * @p sendbuf; overlapping send blocks then share it.
 * @param sendbuf Input.
 * @param sendcounts size counts: elements for each rank.
 * @param sdispls size offsets into @p sendbuf (elements).
 * @param recvbuf Output; must not be @p sendbuf.
 * @param recvcounts size counts: elements from each rank.
 * @param rdispls size offsets into @p recvbuf (elements).
 * @param dtype Element type (::LC_FLOAT32 with a codec).
 * @param comm Communicator.
 * @param params Per-call parameters or NULL.
 * @return ::LC_OK or an error.
 */
LC_API lc_status_t lc_alltoallv(const void *sendbuf, const size_t *sendcounts,
                                const size_t *sdispls, void *recvbuf, const size_t *recvcounts,
                                const size_t *rdispls, lc_dtype_t dtype, lc_comm_t *comm,
                                const lc_op_params_t *params);

/**
 * @brief Non-blocking lc_alltoallv(). The count and displacement arrays, like
 * the buffers, must stay valid until the request completes.
 * @param req_p Receives the request.
 */
LC_API lc_status_t lc_ialltoallv(const void *sendbuf, const size_t *sendcounts,
                                 const size_t *sdispls, void *recvbuf, const size_t *recvcounts,
                                 const size_t *rdispls, lc_dtype_t dtype, lc_comm_t *comm,
                                 const lc_op_params_t *params, lc_request_t **req_p);

/**
 * @brief Return once every rank has entered the barrier.
 * @param comm Communicator.
 * @return ::LC_OK or an error.
 */
LC_API lc_status_t lc_barrier(lc_comm_t *comm);

/**
 * @brief Non-blocking lc_barrier().
 * @param comm Communicator.
 * @param req_p Receives the request.
 */
LC_API lc_status_t lc_ibarrier(lc_comm_t *comm, lc_request_t **req_p);

/**
 * @brief Wait until a request completes (or fails).
 *
 * Sleeps; never spins. Returns after the communicator's no-progress timeout
 * with ::LC_ERR_TIMEOUT at the latest. Calling it again on a completed
 * request returns the same status.
 *
 * @param req The request.
 * @param info Receives what the collective did on success (may be NULL).
 * @return The collective's status.
 */
LC_API lc_status_t lc_wait(lc_request_t *req, lc_op_info_t *info);

/**
 * @brief Check a request without blocking.
 * @param req The request.
 * @param info Receives what the collective did if it succeeded (may be NULL).
 * @return ::LC_INPROGRESS while running, else as lc_wait().
 */
LC_API lc_status_t lc_test(lc_request_t *req, lc_op_info_t *info);

/**
 * @brief Release a request. A request still in flight is waited for first
 * (its buffers are in use until then).
 * @param req The request (NULL is allowed).
 */
LC_API void lc_request_free(lc_request_t *req);

/**
 * @name Membership: surviving a peer's failure or departure
 *
 * A communicator's *view* is the set of ranks it currently spans, numbered
 * by an *epoch* (0 at creation). When a member fails (dies, is cut off,
 * goes silent for @c LC_PEER_TIMEOUT_MS) or leaves (lc_comm_leave()),
 * collectives that need it fail with ::LC_ERR_PEER_LOST on every survivor,
 * and the survivors move to the next view together with lc_comm_shrink():
 * ranks are renumbered 0..size-1 in the order of their first-view ranks,
 * and algorithms are chosen anew for the new size.
 *
 * Training code groups its collectives into *steps* and ends each with
 * lc_step_commit(), which tells every survivor the same thing: whether
 * every member completed every collective of the step. A typical loop:
 * @code
 *   for (;;) {
 *       compute(grad);
 *       lc_allreduce(grad, grad, n, LC_FLOAT32, LC_SUM, comm, &p);
 *       int committed;
 *       if (lc_step_commit(comm, &committed) != LC_OK) break;  // coordinator lost, removed
 *       if (committed) apply(grad);
 *       else if (lc_comm_shrink(comm) != LC_OK) break;          // go on without the lost
 *   }
 * @endcode
 * Views are decided by a coordinator (@c lccoord, or the one lcrun runs;
 * @c LC_COORDINATOR), which data never passes through. While it is down
 * collectives and steps that every member votes for go on; only view
 * changes (and a step whose vote a lost member took with it) wait for it,
 * and fail with ::LC_ERR_COORD_LOST after @c LC_COORD_TIMEOUT_MS.
 * @{
 */

/** @brief A communicator's current view (lc_comm_view()). */
typedef struct {
    uint32_t epoch;     /**< The view's number: 0 at creation, +1 at every change. */
    int rank;           /**< This rank in the view. */
    int size;           /**< Ranks in the view. */
    int first_rank;     /**< This rank in the first view (epoch 0). */
    int first_size;     /**< Ranks in the first view. */
    uint64_t steps;     /**< Steps settled by lc_step_commit() so far. */
    int nleft;          /**< Ranks of the first view no longer in it (first_size - size). */
    const int *members; /**< @c size entries: the first-view rank of each rank of the view.
                           Valid until the next lc_comm_shrink() or lc_comm_destroy(). */
    const int *left;    /**< @c nleft entries: first-view ranks that failed or left, in the
                           order they were removed. Valid as @c members. */
} lc_view_t;

/**
 * @brief The communicator's current view. Local and cheap.
 * @param comm Communicator.
 * @param view_p Receives the view.
 * @return ::LC_OK or ::LC_ERR_INVALID_ARG.
 */
LC_API lc_status_t lc_comm_view(const lc_comm_t *comm, lc_view_t *view_p);

/**
 * @brief Whether the view must change: a member failed or left since the
 * view began, as far as this rank knows (the coordinator tells every
 * member as soon as it learns of it). Local and cheap: a training loop may
 * check it to skip computing a step whose collectives will fail.
 * @param comm Communicator.
 * @param pending_p Receives 1 if the view must change, else 0.
 * @return ::LC_OK; ::LC_ERR_REMOVED; ::LC_ERR_INVALID_ARG.
 */
LC_API lc_status_t lc_comm_view_pending(const lc_comm_t *comm, int *pending_p);

/**
 * @brief End the step (the collectives called since the last call, or since
 * the view began) and learn whether it committed: every member completed
 * every one of them. Every survivor gets the same answer, even when a
 * member fails during the call. Collective over the view; waits for the
 * step's collectives to complete.
 *
 * With steps (lc_comm_params_t::steps), a step that aborts leaves every
 * survivor's error-feedback residuals as they were before it, and puts
 * back the inputs of its in-place calls made with
 * ::LC_OP_FLAG_RESTORE_INPUT; a step that commits keeps what its
 * collectives wrote. After an aborted step call lc_comm_shrink() (on every
 * survivor: the answer is the same everywhere) before the next.
 *
 * Costs one message delay when every member votes to commit (each sends
 * every other a 24-byte vote); the coordinator settles a step only when a
 * member was lost before its vote arrived.
 * @param comm Communicator.
 * @param committed_p Receives 1 if the step committed, 0 if it aborted.
 * @return ::LC_OK; ::LC_ERR_COORD_LOST (the coordinator was needed and
 *   unreachable for @c LC_COORD_TIMEOUT_MS); ::LC_ERR_TIMEOUT (a live member
 *   did not vote within @c LC_TIMEOUT_MS); ::LC_ERR_REMOVED;
 *   ::LC_ERR_INVALID_ARG. After an error the step's outcome is not known
 *   here (the others may have committed it): leave the job
 *   (lc_comm_leave()) rather than shrink.
 */
LC_API lc_status_t lc_step_commit(lc_comm_t *comm, int *committed_p);

/**
 * @brief Move every survivor to the next view, without the members that
 * failed or left. Collective over the survivors: returns once every live
 * member called it and the coordinator formed the view (the same on every
 * survivor). Ranks, ring and trees, and the algorithm choice follow the new
 * size; error-feedback residuals a rank kept for a segment it reduced are
 * folded into its own residual, so their mass is not lost. Frames of the
 * old view still in flight are dropped, and a removed rank's are never read.
 * Call it at a step boundary (after lc_step_commit()); a step still open is
 * aborted. With nobody lost it still makes a new view (the same members).
 * @param comm Communicator.
 * @return ::LC_OK; ::LC_ERR_COORD_LOST; ::LC_ERR_REMOVED (this rank was
 *   taken for failed: it must stop using the communicator); ::LC_ERR_TIMEOUT
 *   (a live member did not call it within @c LC_TIMEOUT_MS);
 *   ::LC_ERR_INVALID_ARG.
 */
LC_API lc_status_t lc_comm_shrink(lc_comm_t *comm);

/**
 * @brief Leave the job for good: finish the collectives already called,
 * tell the coordinator and every peer, and destroy the communicator. The
 * others' collectives up to the last one this rank took part in complete;
 * later ones fail with ::LC_ERR_PEER_LOST until they call lc_comm_shrink().
 * @param comm Communicator (freed; NULL is allowed).
 * @return ::LC_OK, or the first error of the collectives it finished.
 */
LC_API lc_status_t lc_comm_leave(lc_comm_t *comm);

/** @brief Opaque coordinator (lc_coord_create()). */
typedef struct lc_coord lc_coord_t;

/** @brief Bits of lc_coord_params_t::field_mask. */
enum {
    LC_COORD_PARAM_FIELD_ADDRESS = 1u << 0,   /**< lc_coord_params_t::address is set. */
    LC_COORD_PARAM_FIELD_LISTEN_FD = 1u << 1, /**< lc_coord_params_t::listen_fd is set. */
    LC_COORD_PARAM_FIELD_JOB_KEY = 1u << 2,   /**< lc_coord_params_t::job_key is set. */
    LC_COORD_PARAM_FIELD_JOB_ID = 1u << 3,    /**< lc_coord_params_t::job_id is set. */
    LC_COORD_PARAM_FIELD_PEER_TIMEOUT_MS = 1u
                                           << 4 /**< lc_coord_params_t::peer_timeout_ms is set. */
};

/** @brief Parameters of lc_coord_create(). */
typedef struct {
    uint64_t field_mask;      /**< Which fields below are set (LC_COORD_PARAM_FIELD_*). */
    const char *address;      /**< "host:port" to listen on (default "127.0.0.1:0": any free
                                 port on loopback). */
    int listen_fd;            /**< A listening socket to serve on instead (taken over). */
    const char *job_key;      /**< The job's key (required): the ranks' @c LC_JOB_KEY. */
    const char *job_id;       /**< The job's id, as the ranks' @c LC_JOB_ID (default
                                 "laconic"). */
    uint32_t peer_timeout_ms; /**< A member silent this long has failed (default 2000; the
                                 ranks' own, when longer, wins). */
} lc_coord_params_t;

/**
 * @brief Start a membership coordinator on a thread of its own: it decides
 * the views of one job's communicator (see lc_comm_shrink()). @c lccoord
 * and lcrun run one; ranks find it through @c LC_COORDINATOR. Connections
 * are authenticated with the job key. It keeps nothing on disk: a
 * coordinator restarted at the same address takes the view over from the
 * ranks as they reconnect.
 * @param params Parameters (the job key is required).
 * @param coord_p Receives the coordinator.
 * @return ::LC_OK; ::LC_ERR_INVALID_ARG; ::LC_ERR_SYSTEM (cannot listen).
 */
LC_API lc_status_t lc_coord_create(const lc_coord_params_t *params, lc_coord_t **coord_p);

/**
 * @brief The "host:port" the coordinator listens on.
 * @param coord Coordinator.
 * @param buf Receives the address, NUL-terminated.
 * @param len Size of @p buf (64 is enough).
 * @return ::LC_OK or ::LC_ERR_INVALID_ARG.
 */
LC_API lc_status_t lc_coord_address(const lc_coord_t *coord, char *buf, size_t len);

/**
 * @brief Stop the coordinator and close its connections (the ranks'
 * collectives go on; their view changes wait for another).
 * @param coord Coordinator (NULL is allowed).
 * @return ::LC_OK.
 */
LC_API lc_status_t lc_coord_destroy(lc_coord_t *coord);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* LACONIC_H */
