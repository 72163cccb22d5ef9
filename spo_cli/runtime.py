"""Process-level set-up shared by every entry point (`spo`, the launched learner processes)."""

from __future__ import annotations

import os


def quiet_libraries() -> None:
    """Nothing is downloaded at run time, and library progress bars would clutter our stderr."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def on_sigterm(signum, frame):  # noqa: ARG001
    """SIGTERM handler: unwind like Ctrl-C, so atomic writers remove their temporary files."""
    raise SystemExit(128 + signum)
