#!/usr/bin/env python3
"""Chat template fixtures: conversations rendered by transformers' `apply_chat_template`.

Regenerates Tests/EmeraldTests/Fixtures/chat_templates.json, which
Tests/EmeraldTests/ChatTemplateTests.swift compares `ChatTemplate.render` against.
Python is only used here; Emerald never depends on it.

    python3 -m venv .venv
    .venv/bin/pip install transformers tokenizers jinja2
    .venv/bin/python scripts/reference/chat_templates.py

The templates are the `chat_template` strings of the models' tokenizer_config.json files
(SmolLM2-Instruct, Qwen2-Instruct, Llama-2-chat, Llama-3-Instruct), a generic ChatML
without a default system message, and Llama 3.1's template with its tool branches left
out (the part that renders plain conversations). The tokenizer is the tiny GPT-2 fixture's;
only its special-token strings matter to the rendering.
"""
import json
import os

from transformers import PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests/EmeraldTests/Fixtures/chat_templates.json")
TOKENIZER = os.path.join(ROOT, "Tests/EmeraldTests/Fixtures/hf/tiny-gpt2/tokenizer.json")

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

SMOLLM2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
           "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
           "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
           "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

QWEN2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
         "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
         "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
         "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

LLAMA2 = ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
          "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
          "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
          "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
          "{% if loop.index0 == 0 and system_message != false %}"
          "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
          "{% else %}{% set content = message['content'] %}{% endif %}"
          "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
          "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")

LLAMA3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}"
          "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
          "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

LLAMA31 = ("{{- bos_token }}\n"
           "{%- if not date_string is defined %}\n    {%- set date_string = \"26 Jul 2024\" %}\n{%- endif %}\n"
           "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content']|trim %}\n"
           "    {%- set messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = \"\" %}\n{%- endif %}\n"
           "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
           "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"
           "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
           "{{- system_message }}\n{{- \"<|eot_id|>\" }}\n"
           "{%- for message in messages %}\n"
           "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n"
           "{%- endfor %}\n"
           "{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n")

TEMPLATES = [
    ("chatml", CHATML, None, None),
    ("smollm2", SMOLLM2, "<|im_start|>", "<|im_end|>"),
    ("qwen2", QWEN2, None, "<|im_end|>"),
    ("llama2", LLAMA2, "<s>", "</s>"),
    ("llama3", LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
    ("llama3.1", LLAMA31, "<|begin_of_text|>", "<|eot_id|>"),
]

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "  Be kind.\n"}, {"role": "user", "content": " Hi there \n"},
     {"role": "assistant", "content": "Hello! How can I help?  "}, {"role": "user", "content": "Tell me a joke, née «café» 🙂."}],
    [{"role": "user", "content": "One"}, {"role": "assistant", "content": "Two"}, {"role": "user", "content": "Three\n\nFour"}],
]


def main():
    fixtures = []
    for name, template, bos, eos in TEMPLATES:
        tok = PreTrainedTokenizerFast(tokenizer_file=TOKENIZER, bos_token=bos, eos_token=eos)
        tok.chat_template = template
        config = {"chat_template": template}
        if bos is not None:
            config["bos_token"] = bos
        if eos is not None:
            config["eos_token"] = eos
        cases = []
        for messages in CONVERSATIONS:
            for generation in (True, False):
                text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
                cases.append({"messages": messages, "add_generation_prompt": generation, "text": text})
        fixtures.append({"name": name, "tokenizer_config": config, "cases": cases})
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(fixtures, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {sum(len(x['cases']) for x in fixtures)} renderings")


if __name__ == "__main__":
    main()
