// Model set-up per method (see method_model.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/method_model.h"

#include "model/linear.h"
#include "peft/lora.h"

namespace hone {

LoadedModel load_method_base(const std::string& base_model, const std::string& method, bool base_bf16, int64_t* frozen_bytes,
                             LoadOptions o) {
  o.base_bf16 = base_bf16 && method == "lora";  // qlora quantizes from fp32 first
  o.base_nf4 = method == "qlora";                // layer by layer, as it loads
  LoadedModel lm = load_model(base_model, o);
  CausalLM& model = lm.model;
  for (auto& p : model->parameters()) p.set_requires_grad(method == "full");
  int64_t frozen = 0;
  if (method == "qlora") frozen = quantize_base_nf4(model);
  if (base_bf16) store_base_bf16(model);  // qlora: the embedding and an untied head
  if (method == "lora")
    for (auto& item : model->named_modules())
      if (auto* l = dynamic_cast<LinearImpl*>(item.value().get()); l && item.key() != "lm_head")
        frozen += l->weight.numel() * l->weight.element_size();
  if (frozen_bytes) *frozen_bytes = frozen;
  return lm;
}

MethodModel set_up_method_model(const RunConfig& cfg, const BaseDtypeChoice& base_dtype, const LogFn& log) {
  MethodModel mm;
  mm.lm = load_method_base(cfg.base_model, cfg.method, base_dtype.bf16, &mm.frozen_weight_bytes);
  // QLoRA's linear layers are NF4 whatever the dtype choice, which is of the dense rest.
  if (log) log(std::string("base weights: ") + (cfg.method == "qlora" ? "linear layers NF4 (4-bit), embedding and head " : "") +
               base_dtype.why);
  CausalLM& model = mm.lm.model;
  mm.lora = cfg.lora;
  if (cfg.method == "full") return mm;
  if (!cfg.init_adapter.empty()) {
    mm.lora = load_peft_adapter(model, cfg.init_adapter);
    mm.lora.targets = cfg.lora.targets;
    for (auto& p : model->named_parameters()) p.value().set_requires_grad(p.key().find(".lora_") != std::string::npos);
    if (log) log("starting from adapter " + cfg.init_adapter);
  } else {
    attach_lora(model, cfg.lora, cfg.seed);
  }
  return mm;
}

}  // namespace hone
