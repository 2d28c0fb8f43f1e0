// hone-cli tokenize: token ids of a text, as one JSON object on stdout.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "tokenizer/tokenizer.h"

namespace hone::cli {

static const char* kHelp = R"(usage: hone-cli tokenize --tokenizer DIR (--text T | --text-file F) [--add-special] [--offsets]

  --tokenizer DIR  folder with tokenizer.json (preferred) or tokenizer.model, and tokenizer_config.json
  --text T         the text; or --text-file F to read it from a file (bytes as they are)
  --add-special    add what the tokenizer's own config adds (e.g. BOS)
  --offsets        also print each token's byte range in the text
Prints {"ids":[...]} on stdout.
)";

int cmd_tokenize(int argc, char** argv) {
  Args a(argc, argv, 2, "tokenize", {"tokenizer", "text", "text-file"}, {"add-special", "offsets"});
  if (a.flag("help")) {
    std::cout << kHelp;
    return 0;
  }
  auto tok = load_tokenizer(a.require("tokenizer"));
  auto enc = tok->encode(text_argument(a), a.flag("add-special"));
  nlohmann::json j = {{"ids", enc.ids}};
  if (a.flag("offsets")) j["offsets"] = enc.offsets;
  std::cout << j.dump() << "\n";
  return 0;
}

}  // namespace hone::cli
