"""Find the program in a model's response: markdown code fences, chat text around them.

Rules, in order:
1. `<think>...</think>` sections are dropped (drafts in a reasoning trace are not the answer;
   an unclosed `<think>` drops everything after it).
2. Fenced blocks (``` or ~~~, any length >= 3, possibly indented (that indentation is removed),
   an unclosed last fence runs to the end: a response cut off by the token limit) are collected
   with their language tag.
3. The answer is the longest block tagged as Python (ties: the later one); without one, the
   longest untagged block; without fences, the whole response as it is.
A block tagged with another language (```cpp) is used only when nothing else is there; it will
then fail to compile, which is the honest verdict for a non-Python answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PYTHON_TAGS = {"python", "python3", "py", "py3", "python 3", "pycon"}

_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.S)
_OPEN = re.compile(r"^([ \t]*)(`{3,}|~{3,})[ \t]*([^\n`]*)$")


@dataclass(frozen=True)
class Block:
    lang: str
    code: str


def code_blocks(text: str) -> list[Block]:
    """All fenced code blocks of a markdown text, in order.

    >>> [b.lang for b in code_blocks("a\\n```python\\nx = 1\\n```\\nb\\n~~~\\n3\\n~~~\\n")]
    ['python', '']
    """
    blocks: list[Block] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.group(1), m.group(2), m.group(3).strip()
        lang = info.split()[0].lower().strip("{}.") if info else ""
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body = []
        i += 1
        while i < len(lines) and not close.match(lines[i]):
            line = lines[i]
            if indent and line.startswith(indent):
                line = line[len(indent):]
            body.append(line)
            i += 1
        i += 1  # past the closing fence (or the end)
        # Only the fence's own indentation is removed: a block that is indented further is a
        # function body (a HumanEval-style completion), and dedenting it would break it.
        blocks.append(Block(lang, "\n".join(body)))
    return blocks


def extract_program(response: str) -> str:
    """The program to run for a response (see the module docstring).

    >>> extract_program("Here you go:\\n```python\\nprint(1)\\n```\\nInput:\\n```\\n3\\n```")
    'print(1)\\n'
    >>> extract_program("print(2)")
    'print(2)\\n'
    """
    text = _THINK.sub("", response)
    blocks = code_blocks(text)
    if not blocks:
        code = text if text.strip() else response
    else:
        py = [b for b in blocks if b.lang in PYTHON_TAGS]
        plain = [b for b in blocks if b.lang == ""]
        pool = py or plain or blocks
        best = max(range(len(pool)), key=lambda k: (len(pool[k].code.strip()), k))
        code = pool[best].code
    return code if code.endswith("\n") else code + "\n"
