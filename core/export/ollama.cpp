// Modelfile text (see ollama.h). Each template mirrors a case of render_chat in
// tokenizer/chat_template.cpp, minus the BOS that llama.cpp adds on its own when add_bos is set
// (writing it in the template too gives the doubled-BOS prompts users report after export).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "export/ollama.h"

#include <algorithm>

#include "common/error.h"

namespace hone {

namespace {

// A system message folded into the first user turn (Mistral, Llama 2, Gemma): kept in $system
// until that turn prints it.
const char* kTakeSystem = R"({{- $system := "" }}{{- range .Messages }}{{- if eq .Role "system" }}{{- $system = .Content }})";

}  // namespace

std::string ollama_template(ChatFormat f, const std::string& bos, const std::string& eos, bool add_bos) {
  const std::string lead = add_bos ? "" : bos;
  switch (f) {
    case ChatFormat::ChatML:
      return "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n";
    case ChatFormat::Llama3:
      return std::string(add_bos ? "" : "<|begin_of_text|>") +
             "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
             "<|start_header_id|>assistant<|end_header_id|>\n\n";
    case ChatFormat::Zephyr:
      return "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}" + eos + "\n{{ end }}<|assistant|>\n";
    case ChatFormat::Phi3:
      return "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n";
    case ChatFormat::Gemma:
      return std::string(add_bos ? "" : "<bos>") + kTakeSystem +
             "{{- else if eq .Role \"user\" }}<start_of_turn>user\n{{ if $system }}{{ $system }}\n\n{{ $system = \"\" }}{{ end }}"
             "{{ .Content }}<end_of_turn>\n{{ else }}<start_of_turn>model\n{{ .Content }}<end_of_turn>\n{{ end }}{{ end }}"
             "<start_of_turn>model\n";
    case ChatFormat::Mistral:
      return lead + kTakeSystem +
             "{{- else if eq .Role \"user\" }}[INST] {{ if $system }}{{ $system }}\n\n{{ $system = \"\" }}{{ end }}"
             "{{ .Content }} [/INST]{{ else }}{{ .Content }}" + eos + "{{ end }}{{ end }}";
    case ChatFormat::Llama2:
      // Every user turn opens with BOS; the first one comes from llama.cpp when add_bos is set.
      return std::string(R"({{- $first := true }})") + kTakeSystem + "{{- else if eq .Role \"user\" }}" +
             (add_bos ? "{{ if not $first }}" + bos + "{{ end }}" : bos) +
             "[INST] {{ if $system }}<<SYS>>\n{{ $system }}\n<</SYS>>\n\n{{ $system = \"\" }}{{ end }}{{ .Content }} [/INST]"
             "{{ $first = false }}{{ else }} {{ .Content }} " + eos + "{{ end }}{{ end }}";
    case ChatFormat::Alpaca:
      return std::string(R"({{- $system := ")") + kAlpacaPreamble +
             R"(" }}{{- range .Messages }}{{ if eq .Role "system" }}{{ $system = .Content }}{{ end }}{{ end }}{{ $system }})"
             "\n\n{{ range .Messages }}{{ if eq .Role \"user\" }}### Instruction:\n{{ .Content }}\n\n### Response:\n"
             "{{ else if eq .Role \"assistant\" }}{{ .Content }}" + eos + "\n\n{{ end }}{{ end }}";
    case ChatFormat::Raw:
      return "{{- range .Messages }}{{ .Content }}{{ if eq .Role \"assistant\" }}" + eos + "{{ end }}{{ end }}";
  }
  return "";
}

std::vector<std::string> ollama_stops(ChatFormat f, const std::string& eos) {
  std::vector<std::string> out = end_of_turn_tokens(f, eos);
  if (!eos.empty() && std::find(out.begin(), out.end(), eos) == out.end()) out.push_back(eos);
  return out;
}

std::string make_modelfile(const ModelfileSpec& s) {
  const std::string tmpl = ollama_template(s.format, s.bos, s.eos, s.add_bos);
  if (tmpl.find("\"\"\"") != std::string::npos) throw Error("ollama: the chat template contains \"\"\"");
  std::string m = "# Ollama Modelfile for " + s.name + ", written by Hone (chat format " + chat_format_name(s.format) +
                  ").\n# Create the model with: ollama create " + s.name + " -f Modelfile\n";
  m += "FROM " + s.model_gguf + "\n";
  if (!s.adapter_gguf.empty()) m += "ADAPTER " + s.adapter_gguf + "\n";
  m += "TEMPLATE \"\"\"" + tmpl + "\"\"\"\n";
  for (const auto& stop : ollama_stops(s.format, s.eos)) {
    std::string esc;
    for (char c : stop) {
      if (c == '"' || c == '\\') esc += '\\';
      esc += c;
    }
    m += "PARAMETER stop \"" + esc + "\"\n";
  }
  return m;
}

}  // namespace hone
