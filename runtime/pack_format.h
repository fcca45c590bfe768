/* saemon's native packed dictionary file (docs/formats.md "Pack files"):
 * the on-disk layout shared by the writer (runtime/pack_write.c) and the
 * strict mapped reader (runtime/pack_read.c). Little-endian throughout. */
#ifndef SAEMON_PACK_FORMAT_H
#define SAEMON_PACK_FORMAT_H

#include <stdint.h>

#define PACK_MAGIC "SAEMPACK"
#define PACK_VERSION 2u     /* what saemon_dict_pack writes */
#define PACK_MIN_VERSION 1u /* the oldest this saemon reads (1: no kernel, b_dec_dot or labels sections) */
#define PACK_FIXED_BYTES 384u   /* the fixed header below */
#define PACK_SECTION_BYTES 32u  /* one section-table entry */
#define PACK_ALIGN 64u          /* every section's offset and alignment */
#define PACK_MAX_HEADER (1u << 20)
#define PACK_N_STRINGS 9u       /* the metadata strings, in pack_string order */

/* Flags. */
#define PACK_F_APPLY_B_DEC 1u
#define PACK_F_RESCALE 2u
#define PACK_F_RESHAPE_HOOK_Z 4u
#define PACK_F_SUBSET 8u /* holds only the rows of the LATENTS section */

typedef enum pack_kind {
    PACK_LATENTS = 1, /* u32 [n_rows]: the original index of each row, increasing */
    PACK_W_ENC_ROWS,  /* f32 [n_rows][d_in] */
    PACK_B_DEC,       /* f32 [d_in] */
    PACK_B_ENC,       /* f32 [d_sae] */
    PACK_THRESHOLD,   /* f32 [d_sae] */
    PACK_B_GATE,      /* f32 [d_sae] */
    PACK_R_MAG,       /* f32 [d_sae] */
    PACK_B_MAG,       /* f32 [d_sae] */
    PACK_W_DEC,       /* f32 [d_sae][d_in], optional (whole packs only) */
    PACK_LOG_SPARSITY, /* f32 [d_sae], optional */
    /* version 2 */
    PACK_B_DEC_DOT,   /* f64 [d_sae]: b_dec . W_j (apply_b_dec_to_input, whole packs), so folding b_dec into
                       * the biases reads no row */
    PACK_KERNEL,      /* u8: a pack_kernel_desc, then a kernel variant's packed form; repeatable */
    PACK_LABELS,      /* u8: feature labels (pack_labels_head below), optional */
    PACK_N_KINDS
} pack_kind;

enum { PACK_ELEM_F32 = 1, PACK_ELEM_U32 = 2, PACK_ELEM_F64 = 3, PACK_ELEM_U8 = 4 };

#define PACK_MAX_KERNELS 16u /* kernel sections in one pack */
#define PACK_KERNEL_DESC_BYTES 128u

/* The start of a PACK_KERNEL section: which variant packed the bytes that
 * follow (at offset 128, so 64-byte aligned) and for which plan. The encoder
 * uses them in place only when name, layout version, d_in, the latent range
 * and the length all match what it would pack itself. */
typedef struct pack_kernel_desc {
    char name[64];          /* the variant's name, NUL-terminated */
    uint32_t layout;        /* its packed_layout */
    uint32_t reserved0;
    uint64_t d_in;          /* == the header's */
    uint64_t index_base;    /* first latent of the slice packed */
    uint64_t d_sae;         /* latents in the slice */
    uint64_t packed_bytes;  /* == section length - 128 */
    uint8_t reserved[PACK_KERNEL_DESC_BYTES - 64 - 8 - 32];
} pack_kernel_desc;

_Static_assert(sizeof(pack_kernel_desc) == PACK_KERNEL_DESC_BYTES, "kernel descriptor is 128 bytes");

/* A PACK_LABELS section: u32 count, then count entries {u32 index, u32
 * offset, u32 length} (indices increasing, < d_sae; offset from the section
 * start), then the UTF-8 texts (not NUL-terminated). */
typedef struct pack_label_entry {
    uint32_t index, offset, length;
} pack_label_entry;

/* The fixed header: bytes [0, 384). The section table follows
 * (n_sections x 32 bytes), then the metadata strings (PACK_N_STRINGS
 * NUL-terminated strings, strings_len bytes); header_bytes covers all three
 * and header_sha256 is the SHA-256 of those bytes with header_sha256 zeroed. */
typedef struct pack_header {
    char magic[8];
    uint32_t version;
    uint32_t header_bytes;
    char header_sha256[64]; /* hex */
    uint64_t file_bytes;
    uint64_t d_in, d_sae, k, n_rows;
    uint32_t arch, norm, flags, n_sections;
    uint32_t weight_dtype; /* the source's storage dtype */
    int32_t layer;
    uint32_t strings_len;
    uint32_t reserved0;
    double folded_scaling_factor;
    char source_sha256[64]; /* hex SHA-256 of the source weights file */
    char data_sha256[64];   /* hex SHA-256 of the bytes [data_offset, file_bytes) (inspect --verify) */
    uint64_t data_offset;   /* first section: header_bytes rounded up to 64 */
    uint8_t reserved[PACK_FIXED_BYTES - 8 - 4 - 4 - 64 - 8 - 32 - 16 - 4 - 4 - 4 - 4 - 8 - 64 - 64 - 8];
} pack_header;

_Static_assert(sizeof(pack_header) == PACK_FIXED_BYTES, "pack header is 384 bytes");

typedef struct pack_section {
    uint32_t kind, elem;
    uint64_t offset, length;
    uint32_t align, reserved;
} pack_section;

_Static_assert(sizeof(pack_section) == PACK_SECTION_BYTES, "section entry is 32 bytes");

/* Metadata strings, in order. */
enum { PS_FORMAT, PS_NAME, PS_HOOK, PS_MODEL, PS_NORMALIZE, PS_COMPUTE_DTYPE, PS_WIDTH, PS_L0, PS_SOURCE };

const char *pack_kind_name(uint32_t kind);

#endif
