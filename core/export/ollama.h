// Ollama Modelfiles for exported GGUF files: FROM (and ADAPTER), a TEMPLATE in Ollama's Go template
// syntax that renders conversations exactly as the chat format Hone trained with, and a stop
// parameter for every end-of-turn token. Torch-free.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"

namespace hone {

struct ModelfileSpec {
  std::string model_gguf;    // path relative to the Modelfile ("./model-f16.gguf")
  std::string adapter_gguf;  // "" or the LoRA adapter GGUF
  ChatFormat format = ChatFormat::ChatML;
  std::string bos, eos;      // the tokenizer's own strings
  bool add_bos = false;      // llama.cpp adds BOS itself: the template must not write it again
  std::string name;          // for the comment line
};

// The TEMPLATE body for a chat format (Ollama's .Messages form).
std::string ollama_template(ChatFormat f, const std::string& bos, const std::string& eos, bool add_bos);
// Strings generation must stop at: every end-of-turn token of the format, and EOS.
std::vector<std::string> ollama_stops(ChatFormat f, const std::string& eos);
std::string make_modelfile(const ModelfileSpec& s);

}  // namespace hone
