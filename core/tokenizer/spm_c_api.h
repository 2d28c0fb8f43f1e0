/* Plain C interface of libhone_spm.so, the SentencePiece shim. No protobuf or sentencepiece types
 * cross it, so a process that links libtorch can load it with dlopen(RTLD_LOCAL | RTLD_DEEPBIND)
 * without the two protobuf copies colliding (platform-notes §4). */
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns a handle or NULL; on failure writes a message into err. */
void* hone_spm_open(const char* path, char* err, int errlen);
void hone_spm_close(void* h);
int hone_spm_vocab_size(void* h);
/* Encodes text; fills up to cap ids and byte offsets; returns the number of pieces (call again
 * with a larger cap when it exceeds cap), or -1 on error. */
int hone_spm_encode(void* h, const char* text, size_t len, int* ids, unsigned* begins, unsigned* ends, int cap);
/* Decodes ids into out (NUL-terminated when it fits); returns the decoded length in bytes. */
int hone_spm_decode(void* h, const int* ids, int n, char* out, int cap);
/* Piece text of an id into out; returns its length. */
int hone_spm_id_to_piece(void* h, int id, char* out, int cap);
int hone_spm_piece_to_id(void* h, const char* piece);
/* which: 0 bos, 1 eos, 2 unk, 3 pad. */
int hone_spm_special_id(void* h, int which);
int hone_spm_is_control(void* h, int id);

typedef void* (*hone_spm_open_fn)(const char*, char*, int);
typedef void (*hone_spm_close_fn)(void*);
typedef int (*hone_spm_vocab_size_fn)(void*);
typedef int (*hone_spm_encode_fn)(void*, const char*, size_t, int*, unsigned*, unsigned*, int);
typedef int (*hone_spm_decode_fn)(void*, const int*, int, char*, int);
typedef int (*hone_spm_id_to_piece_fn)(void*, int, char*, int);
typedef int (*hone_spm_piece_to_id_fn)(void*, const char*);
typedef int (*hone_spm_special_id_fn)(void*, int);
typedef int (*hone_spm_is_control_fn)(void*, int);

#ifdef __cplusplus
}
#endif
