"""A tiny random-weight Llama and a tiny byte-level BPE tokenizer, built in a temporary directory.

Nothing is downloaded: the tokenizer is trained with the `tokenizers` library on a few lines of
code text held below, and the model is a 2-layer Llama with random weights from a fixed seed.
Building both takes well under a second. The weights are drawn wider than Llama's default
(std 0.02) so that the next-token distributions are far from uniform and top-p really cuts
something off.

    from tests.tinymodel_util import build_tiny_model
    path = build_tiny_model(tmp_path / "tiny", chat_template=False)
    model = AutoModelForCausalLM.from_pretrained(path)
"""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "import sys\n\nfor line in sys.stdin:\n    n = int(line)\n    print(n * 2)\n",
    "n = int(input())\nxs = list(map(int, input().split()))\nprint(sum(xs) % n)\n",
    "Write a program that reads two integers and prints their sum.\n",
    "class Solution:\n    def solve(self, s: str) -> str:\n        return s[::-1]\n",
    "while True:\n    try:\n        print(input().upper())\n    except EOFError:\n        break\n",
    "Given an array of n numbers, output the maximum and the minimum.\n",
    "if x > 0 and y < 10:\n    answer = max(x, y)\nelse:\n    answer = min(x, y)\n",
    "```python\nprint('hello world')\n```\n",
]

SPECIAL = ["<s>", "</s>", "<pad>"]

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build_tiny_tokenizer(vocab_size: int = 384, chat_template: bool = False):
    """A byte-level BPE tokenizer (BOS added on encode) wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    path: str | Path,
    *,
    chat_template: bool = False,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
    init_std: float = 0.15,
) -> Path:
    """Write a tiny random Llama (2 layers, GQA) and its tokenizer to `path`; returns the path."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tok = build_tiny_tokenizer(chat_template=chat_template)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        initializer_range=init_std,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Import into a test module to run it with one torch thread: tiny matmuls gain nothing from
    a second thread, and on a shared 2-core machine two threads spin against other processes
    (measured: several times slower). The previous setting is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
