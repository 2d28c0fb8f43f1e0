// libhone_spm.so: the only code that links libsentencepiece. Exposes spm_c_api.h.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <sentencepiece_processor.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/spm_c_api.h"

namespace {
void copy_out(const std::string& s, char* out, int cap) {
  if (!out || cap <= 0) return;
  size_t n = std::min(static_cast<size_t>(cap - 1), s.size());
  std::memcpy(out, s.data(), n);
  out[n] = 0;
}
}  // namespace

extern "C" {

void* hone_spm_open(const char* path, char* err, int errlen) {
  try {
    auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
    auto st = sp->Load(path);
    if (!st.ok()) {
      copy_out(st.ToString(), err, errlen);
      return nullptr;
    }
    return sp.release();
  } catch (const std::exception& e) {
    copy_out(e.what(), err, errlen);
    return nullptr;
  }
}

void hone_spm_close(void* h) { delete static_cast<sentencepiece::SentencePieceProcessor*>(h); }

int hone_spm_vocab_size(void* h) { return static_cast<sentencepiece::SentencePieceProcessor*>(h)->GetPieceSize(); }

int hone_spm_encode(void* h, const char* text, size_t len, int* ids, unsigned* begins, unsigned* ends, int cap) {
  try {
    auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
    auto spt = sp->EncodeAsImmutableProto(std::string(text, len));
    int n = static_cast<int>(spt.pieces_size());
    for (int i = 0; i < n && i < cap; ++i) {
      auto p = spt.pieces(i);
      ids[i] = static_cast<int>(p.id());
      begins[i] = p.begin();
      ends[i] = p.end();
    }
    return n;
  } catch (...) {
    return -1;
  }
}

int hone_spm_decode(void* h, const int* ids, int n, char* out, int cap) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  std::vector<int> v(ids, ids + n);
  std::string s;
  if (!sp->Decode(v, &s).ok()) return -1;
  copy_out(s, out, cap);
  return static_cast<int>(s.size());
}

int hone_spm_id_to_piece(void* h, int id, char* out, int cap) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  if (id < 0 || id >= sp->GetPieceSize()) return -1;
  const std::string& s = sp->IdToPiece(id);
  copy_out(s, out, cap);
  return static_cast<int>(s.size());
}

int hone_spm_piece_to_id(void* h, const char* piece) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  int id = sp->PieceToId(piece);
  // PieceToId returns unk for unknown pieces; report absence instead.
  if (id == sp->unk_id() && sp->IdToPiece(id) != piece) return -1;
  return id;
}

int hone_spm_special_id(void* h, int which) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  switch (which) {
    case 0: return sp->bos_id();
    case 1: return sp->eos_id();
    case 2: return sp->unk_id();
    default: return sp->pad_id();
  }
}

int hone_spm_is_control(void* h, int id) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  return id >= 0 && id < sp->GetPieceSize() && sp->IsControl(id) ? 1 : 0;
}

}  // extern "C"
