// The chat-template Jinja engine against Python's jinja2 configured as transformers configures it
// (tests/reference/jinja_reference.py): 51 feature templates, and the real chat templates (Qwen3,
// Gemma 3 from ../shared/testdata; Llama 3.2, Qwen2.5, Phi-3, Mistral, Llama 2, Zephyr, Gemma,
// ChatML under tests/data/chat_templates) over conversations with system prompts, several turns,
// tools and thinking, compared byte for byte, errors included. Then what Python cannot check:
// error positions and the sandbox's limits.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include <dirent.h>

#include <algorithm>

#include "common/error.h"
#include "common/files.h"
#include "test_support.h"
#include "tokenizer/jinja.h"

using namespace hone;
using json = nlohmann::ordered_json;

namespace {

constexpr std::time_t kNow = 1721995200;  // 26 Jul 2024 12:00 UTC: what strftime_now formats

struct Case {
  std::string label, source;
  json vars;
};

// Renders every case with Python's jinja2.
json python_render(const std::vector<Case>& cases, const std::string& tag) {
  const std::string dir = test::temp_dir("jinja-" + tag);
  json in = json::array();
  for (const auto& c : cases) in.push_back({{"template", c.source}, {"vars", c.vars}, {"now", kNow}});
  write_file_atomic(dir + "/cases.json", in.dump());
  auto r = test::run(std::string(HONE_PYTHON) + " " + test::shell_quote(test::source("tests/reference/jinja_reference.py")) + " " +
                     test::shell_quote(dir + "/cases.json") + " " + test::shell_quote(dir + "/out.json"));
  if (r.code != 0) throw std::runtime_error("jinja_reference.py failed: " + r.err);
  return json::parse(read_file(dir + "/out.json"));
}

jinja::Dict to_vars(const json& j) {
  jinja::Value v = jinja::from_json(j);
  return v.is_dict() ? v.dict() : jinja::Dict{};
}

// Compares the engine with Python case by case; returns how many cases rendered (not errors).
int compare_all(const std::vector<Case>& cases, const std::string& tag) {
  const json expected = python_render(cases, tag);
  EXPECT_EQ(expected.size(), cases.size());
  int rendered = 0;
  for (size_t i = 0; i < cases.size() && i < expected.size(); ++i) {
    const Case& c = cases[i];
    const json& e = expected[i];
    SCOPED_TRACE(c.label);
    if (e.contains("error")) {
      // Python refused it (a raise_exception, an undefined value used): so must the engine.
      EXPECT_THROW(jinja::Template(c.source).render(to_vars(c.vars), kNow), Error) << "python: " << e["error"].get<std::string>();
      continue;
    }
    try {
      jinja::Template t(c.source);
      jinja::RenderResult r = t.render(to_vars(c.vars), kNow);
      EXPECT_EQ(r.text, e["text"].get<std::string>());
      std::vector<std::pair<size_t, size_t>> spans;
      for (const auto& s : e["generation_spans"]) spans.emplace_back(s[0].get<size_t>(), s[1].get<size_t>());
      EXPECT_EQ(r.generation_spans, spans);
      ++rendered;
    } catch (const std::exception& ex) {
      ADD_FAILURE() << "the engine failed where Python rendered: " << ex.what();
    }
  }
  return rendered;
}

std::vector<std::pair<std::string, std::string>> templates() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* fam : {"qwen3", "gemma3"}) {
    const json cfg = json::parse(read_file(test::shared(std::string("tokenizers/") + fam + "/tokenizer_config.json")));
    out.emplace_back(fam, cfg.at("chat_template").get<std::string>());
  }
  const std::string dir = test::source("tests/data/chat_templates");
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.size() > 6 && n.compare(n.size() - 6, 6, ".jinja") == 0) names.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) out.emplace_back(n, read_file(dir + "/" + n));
  return out;
}

}  // namespace

TEST(Jinja, FeaturesMatchPythonJinja2) {
  const json feats = json::parse(read_file(test::source("tests/data/jinja_features.json")));
  std::vector<Case> cases;
  for (const auto& f : feats) cases.push_back({f.at("name").get<std::string>(), f.at("template").get<std::string>(), f.value("vars", json::object())});
  ASSERT_GE(cases.size(), 50u);
  const int rendered = compare_all(cases, "features");
  EXPECT_GE(rendered, 45);  // a few cases are meant to fail in both (raise_exception, undefined.x)
}

TEST(Jinja, RealChatTemplatesMatchPythonJinja2) {
  const json convs = json::parse(read_file(test::source("tests/data/chat_templates/conversations.json")));
  const auto tpls = templates();
  ASSERT_GE(tpls.size(), 10u);
  std::vector<Case> cases;
  for (const auto& [tname, src] : tpls) {
    for (const auto& conv : convs) {
      for (bool gen : {false, true}) {
        json vars = {{"messages", conv.at("messages")}, {"add_generation_prompt", gen}, {"bos_token", "<s>"}, {"eos_token", "</s>"}};
        if (conv.contains("tools")) vars["tools"] = conv["tools"];
        if (conv.contains("extra"))
          for (auto it = conv["extra"].begin(); it != conv["extra"].end(); ++it) vars[it.key()] = it.value();
        cases.push_back({tname + " / " + conv.at("name").get<std::string>() + (gen ? " / generation prompt" : ""), src, vars});
      }
    }
  }
  const int rendered = compare_all(cases, "templates");
  // Most conversations render in every template (some refuse tools or unordered roles).
  EXPECT_GE(rendered, static_cast<int>(cases.size() * 3 / 4));
}

TEST(Jinja, ErrorsNameLineAndColumn) {
  try {
    jinja::Template t("line one\n{% if x %}\n  {{ a + }}\n{% endif %}");
    FAIL() << "parsed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 3, column 10"), std::string::npos) << e.what();
  }
  try {
    jinja::Template("{% for x in y %}never closed").render({}, kNow);
    FAIL() << "parsed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("endfor"), std::string::npos) << e.what();
  }
  try {
    jinja::Template t("ok\n\n   {{ messages[0].content.nope() }}");
    jinja::Dict vars;
    vars.set("messages", jinja::from_json(json::parse(R"([{"role": "user", "content": "x"}])")));
    t.render(vars, kNow);
    FAIL() << "rendered";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 3, column"), std::string::npos) << e.what();
  }
  try {
    jinja::Template("{{ raise_exception('Conversation roles must alternate') }}").render({}, kNow);
    FAIL() << "rendered";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conversation roles must alternate"), std::string::npos) << e.what();
  }
  EXPECT_THROW(jinja::Template("{{ x | no_such_filter }}").render({}, kNow), Error);
  EXPECT_THROW(jinja::Template("{% include 'secrets.txt' %}"), Error);  // no file access
}

TEST(Jinja, SandboxBoundsLoopsRecursionAndOutput) {
  jinja::Limits small;
  small.max_iterations = 1000;
  small.max_output = 10000;
  small.max_depth = 50;
  // A loop that would run a million times, a runaway recursion, and an output bomb.
  EXPECT_THROW(jinja::Template("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}").render({}, kNow, small), Error);
  EXPECT_THROW(jinja::Template("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").render({}, kNow, small), Error);
  EXPECT_THROW(jinja::Template("{{ 'x' * 100000 }}").render({}, kNow, small), Error);
  EXPECT_THROW(jinja::Template("{% for i in range(100) %}{{ 'y' * 200 }}{% endfor %}").render({}, kNow, small), Error);
  // Within the limits it renders.
  EXPECT_EQ(jinja::Template("{% for i in range(3) %}{{ i }}{% endfor %}").render({}, kNow, small).text, "012");
}

// Found by fuzzing (tests/fuzz/regressions/jinja): each of these hung, ran out of memory, overflowed
// the stack or was undefined behaviour; now each is an error that names the line and column.
TEST(Jinja, SandboxBoundsWhatFuzzingFound) {
  jinja::Limits small;
  small.max_iterations = 1000;
  small.max_output = 10000;
  auto fails = [&](const std::string& src, const std::string& why) {
    try {
      jinja::Template(src).render({}, kNow, small);
      ADD_FAILURE() << src << " rendered";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << src << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(", column "), std::string::npos) << e.what();
    }
  };
  // A macro calling itself twice ran 2^41 times within the depth limit: calls count as iterations.
  fails("{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}", "macro calls");
  // Strings and lists that double in a loop, and replace() multiplying a string, stop at the limits.
  fails("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "output limit");
  fails("{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}", "iteration limit");
  fails("{{ ('a' * 100) | replace('a', 'a' * 1000) }}", "output limit");
  fails("{{ ('a\n' * 100) | indent(1000) }}", "output limit");
  // Python's ints do not overflow; int64 does: an error, not a wrong number.
  for (const char* e : {"{{ 9223372036854775807 + 1 }}", "{{ -(-9223372036854775807 - 1) }}", "{{ 3 ** 99 }}",
                        "{{ (-9223372036854775807 - 1) // -1 }}", "{{ 9223372036854775807 * 2 }}", "{{ (-9223372036854775807 - 1) | abs }}"})
    fails(e, "integer overflow");
  EXPECT_EQ(jinja::Template("{{ 2 ** 62 }} {{ (-2) ** 3 }} {{ (-1) ** 7 }} {{ 1e300 | int > 0 }} {{ 7 // -2 }} {{ -7 % 3 }}")
                .render({}, kNow).text,
            "4611686018427387904 -8 -1 True -4 2");
  EXPECT_EQ(jinja::Template("{{ 'abcdef'[1::9223372036854775807] }}|{{ range(9223372036854775805, 9223372036854775807, 5) | list }}")
                .render({}, kNow).text,
            "b|[9223372036854775805]");
  // Nesting the parser or the renderer would recurse through overflowed the stack.
  EXPECT_THROW(jinja::Template("{{ " + std::string(2000, '-') + "1 }}"), Error);
  EXPECT_THROW(jinja::Template("{{ " + std::string(300, '(') + "1" + std::string(300, ')') + " }}"), Error);
  std::string chain = "{{ 1";
  for (int i = 0; i < 30000; ++i) chain += "+1";
  EXPECT_THROW(jinja::Template(chain + " }}"), Error);
  std::string blocks;
  for (int i = 0; i < 20000; ++i) blocks += "{% if 1 %}";
  EXPECT_THROW((void)jinja::Template(blocks), Error);
  // Real depths still parse: 200 parentheses.
  EXPECT_EQ(jinja::Template("{{ " + std::string(200, '(') + "1" + std::string(200, ')') + " }}").render({}, kNow).text, "1");
}

// A macro is stored in the template's scope and holds that scope: the render must not leave that
// cycle behind (ASan's leak check in the fuzz target found it; here the messages it holds are freed).
TEST(Jinja, RenderingFreesWhatMacrosHold) {
  auto payload = std::make_shared<jinja::Dict>();
  payload->set("content", jinja::Value(std::string(1000, 'x')));
  std::weak_ptr<jinja::Dict> watch = payload;
  {
    jinja::Dict vars;
    vars.set("messages", jinja::Value(jinja::List{jinja::Value(payload)}));
    payload.reset();
    const jinja::Template t(
        "{% macro m(a) %}{{ a }}{{ varargs }}{% endmacro %}{% set ns = namespace() %}{% set ns.me = ns %}"
        "{% for message in messages %}{{ m(message['content'][:3], 1) }}{% endfor %}");
    EXPECT_EQ(t.render(vars, kNow).text, "xxx(1,)");
  }
  EXPECT_TRUE(watch.expired());
}
