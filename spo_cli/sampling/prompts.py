"""Prompt formatting and tokenizer fingerprints.

A Problem's `prompt` (text, or chat messages) becomes the text the model is conditioned on:

1. The user message is the problem's prompt, put through a template when one is given: the
   template is plain text in which `{prompt}` (and `{problem_id}`) are replaced; nothing else in
   it is special, so braces in code examples are safe.
2. With a chat template (the tokenizer has one, and it is not switched off): the messages are
   [system?, user] (or the problem's own messages, the template applied to the last user
   message), rendered with add_generation_prompt=True and tokenized without adding special
   tokens (the chat template writes them).
3. Without: `system + "\\n\\n" + user` (no system: the user text alone), tokenized with the
   tokenizer's own special tokens (e.g. BOS). This is the plain template; a base model trained
   on a different layout should be given a --template.

The record's `prompt` is that formatted text and `prompt_ids` its tokens; the ids are
authoritative (the text of a plain prompt does not show the BOS token that the ids start with;
`PromptFormatter.ids_of` turns such a text back into the same ids). This module is the one place
a prompt is formatted or tokenised; spo_cli.tokens builds trajectories' ids on it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from spo_cli.errors import BadInput


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _user_text(prompt: str, template: str | None, problem_id: str) -> str:
    if template is None:
        return prompt
    return template.replace("{problem_id}", problem_id).replace("{prompt}", prompt)


def build_messages(problem: dict, *, system: str | None = None, template: str | None = None) -> list[dict]:
    """The chat messages for a problem: [system?, user], or its own messages (templated)."""
    pid = str(problem.get("id", ""))
    prompt = problem.get("prompt")
    if isinstance(prompt, str):
        msgs = [{"role": "user", "content": _user_text(prompt, template, pid)}]
    elif isinstance(prompt, list) and prompt:
        msgs = [dict(m) for m in prompt]
        users = [i for i, m in enumerate(msgs) if m.get("role") == "user"]
        if template is not None and users:
            i = users[-1]
            msgs[i]["content"] = _user_text(msgs[i]["content"], template, pid)
    else:
        raise BadInput(f"problem {pid!r}: 'prompt' must be text or a non-empty list of messages")
    if system is not None and msgs[0].get("role") != "system":
        msgs.insert(0, {"role": "system", "content": system})
    return msgs


def plain_text(messages: list[dict]) -> str:
    """The plain template: the messages' contents, one paragraph each."""
    return "\n\n".join(m["content"] for m in messages)


def format_prompt(problem: dict, tokenizer: Any, *, system: str | None = None,
                  template: str | None = None, use_chat_template: bool = True) -> tuple[str, list[int]]:
    """(text, token ids) of the prompt the model is given for `problem` (see module docstring)."""
    msgs = build_messages(problem, system=system, template=template)
    chat = use_chat_template and has_chat_template(tokenizer)
    if chat:
        text = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    else:
        text = plain_text(msgs)
    return text, prompt_text_ids(tokenizer, text, chat=chat, what=f"problem {problem.get('id')!r}")


def prompt_text_ids(tokenizer: Any, text: str, *, chat: bool, what: str = "a prompt") -> list[int]:
    """Token ids of a formatted prompt text: a chat-template text already holds its special
    tokens (none are added); a plain-template text gets the tokenizer's own (e.g. BOS)."""
    ids = tokenizer(text, add_special_tokens=not chat)["input_ids"]
    if not ids:
        raise BadInput(f"{what}: the prompt is empty after tokenization")
    return list(ids)


class PromptFormatter:
    """format_prompt with the options bound: formatter(problem) -> (text, ids)."""

    def __init__(self, tokenizer: Any, *, system: str | None = None, template: str | None = None,
                 use_chat_template: bool = True):
        self.tokenizer = tokenizer
        self.system = system
        self.template = template
        self.chat = use_chat_template and has_chat_template(tokenizer)

    def __call__(self, problem: dict) -> tuple[str, list[int]]:
        return format_prompt(problem, self.tokenizer, system=self.system, template=self.template,
                             use_chat_template=self.chat)

    def ids_of(self, text: str) -> list[int]:
        """Ids of a prompt text this formatter wrote (a record's `prompt`), tokenised as it was."""
        return prompt_text_ids(self.tokenizer, text, chat=self.chat)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A short hash that names what token ids mean: vocabulary (token -> id, added tokens
    included), BPE merges, and the special tokens. Two tokenizers with the same fingerprint map
    ids to the same strings. Independent of padding/truncation settings and of the chat
    template. Format: 'tok-' + 16 hex digits."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: (kv[1], kv[0]))
    merges: list[str] = []
    model_type = type(tokenizer).__name__
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        model = spec.get("model") or {}
        model_type = model.get("type", model_type)
        merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    specials = {
        name: str(getattr(tokenizer, name, None))
        for name in ("bos_token", "eos_token", "unk_token", "pad_token")
    }
    specials["all"] = sorted(str(t) for t in getattr(tokenizer, "all_special_tokens", []))
    blob = json.dumps({"type": model_type, "vocab": vocab, "merges": merges, "special": specials},
                      ensure_ascii=False, separators=(",", ":"))
    return "tok-" + hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:16]
