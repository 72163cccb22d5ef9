"""Map the layouts of public code datasets onto our Problem record.

`to_problem(row, lineno)` recognises a row by its fields and returns a Problem dict. A row comes
from JSON lines or from a Parquet / Arrow file (spo_cli.tables) alike: every command that reads
problems reads these layouts, and `spo records cat -k problem` converts them. Each record names its
importer in `meta.format`, and keeps every field of the row that does not map onto the Problem
record under `meta`, so nothing is lost.

Detection, in this order (the first rule a row satisfies; each rule needs a field that no layout
checked after it has, so a row is never read in the wrong layout):

| format         | fields that identify it                          | module        |
|----------------|--------------------------------------------------|---------------|
| spo            | id, prompt (passed through unchanged)             | -             |
| evalplus       | task_id, base_input, plus_input                  | functions     |
| codecontests   | name, description, public_tests or private_tests | codecontests  |
| livecodebench  | question_content, public_test_cases              | livecodebench |
| apps           | question, input_output, problem_id               | apps          |
| taco           | question, input_output                           | apps          |
| humaneval      | task_id, prompt, test, entry_point               | functions     |
| mbpp           | task_id, test_list                               | functions     |

(EvalPlus rows also carry HumanEval's or MBPP's fields, APPS rows TACO's: the more specific
layout is checked first.) The modules' docstrings list, per layout, the fields mapped and what
stays under meta.

A row in a known layout that has no usable tests raises spo_cli.errors.Unusable: readers skip it
and count it (and say so), never stop on it and never drop it silently. Spo's own records pass
through unchanged, whatever their tests.
"""

from __future__ import annotations

import re
from typing import Any

from spo_cli.errors import RecordError, Unusable
from spo_cli.importers.apps import from_apps, from_taco
from spo_cli.importers.codecontests import (
    CC_PYTHON2,
    CC_PYTHON3,
    LANGUAGES,
    from_codecontests,
    test_origin,
)
from spo_cli.importers.functions import from_evalplus, from_humaneval, from_mbpp
from spo_cli.importers.livecodebench import decode_private_tests, from_livecodebench
from spo_cli.schema import validate

__all__ = [
    "CC_PYTHON2", "CC_PYTHON3", "FORMATS", "LANGUAGES", "decode_private_tests", "detect_format",
    "from_apps", "from_codecontests", "from_evalplus", "from_humaneval", "from_livecodebench",
    "from_mbpp", "from_taco", "to_problem",
]

FORMATS = ("spo", "evalplus", "codecontests", "livecodebench", "apps", "taco", "humaneval", "mbpp")


def detect_format(row: dict) -> str:
    """Which layout a row is in: one of FORMATS, or 'unknown' (see the table above)."""
    if "id" in row and "prompt" in row:
        return "spo"
    if "task_id" in row and "base_input" in row and "plus_input" in row:
        return "evalplus"
    if "description" in row and "name" in row and ("public_tests" in row or "private_tests" in row):
        return "codecontests"
    if "question_content" in row and "public_test_cases" in row:
        return "livecodebench"
    if "question" in row and "input_output" in row:
        return "apps" if "problem_id" in row else "taco"
    if "task_id" in row and "entry_point" in row and "test" in row:
        return "humaneval"
    if "task_id" in row and "test_list" in row:
        return "mbpp"
    return "unknown"


_IMPORTERS = {
    "evalplus": lambda row, n: from_evalplus(row),
    "codecontests": lambda row, n: from_codecontests(row),
    "livecodebench": lambda row, n: from_livecodebench(row),
    "apps": lambda row, n: from_apps(row),
    "taco": from_taco,
    "humaneval": lambda row, n: from_humaneval(row),
    "mbpp": lambda row, n: from_mbpp(row),
}


def to_problem(row: Any, lineno: int) -> dict:
    """The Problem record for a row of any supported layout, validated (spo_cli.schema). Raises
    RecordError for a malformed row (naming the field), Unusable for one without usable tests."""
    if not isinstance(row, dict):
        raise RecordError(None, f"a problem must be a JSON object, got {type(row).__name__}")
    fmt = detect_format(row)
    if fmt == "spo":
        return validate(row, "problem")
    importer = _IMPORTERS.get(fmt)
    if importer is None:
        raise RecordError(None, "not a problem in any known layout (spo: id+prompt; CodeContests: "
                                "name+description+tests; LiveCodeBench: question_content+"
                                "public_test_cases; APPS/TACO: question+input_output; EvalPlus: "
                                "task_id+base_input+plus_input; HumanEval: task_id+prompt+test+"
                                "entry_point; MBPP: task_id+text+test_list)")
    try:
        out = importer(row, lineno)
    except (RecordError, Unusable):
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        # a field of the wrong type that the importer did not check by name
        field = e.args[0] if isinstance(e, KeyError) and e.args else None
        raise RecordError(field if isinstance(field, str) else None,
                          f"malformed {fmt} row ({type(e).__name__}: {e})") from None
    try:
        return validate(out, "problem")
    except RecordError as e:
        # The importers leave the per-item type checks of tests to the schema (once, not twice:
        # a row holds hundreds); name the row's own field for what the schema found.
        m = re.match(r"item (\d+) (.*)", e.reason)
        if fmt == "codecontests" and e.field == "tests" and m:
            field, k = test_origin(row, int(m.group(1)))
            raise RecordError(field, f"test {k}: input and output must be strings") from None
        raise
