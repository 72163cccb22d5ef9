"""LiveCodeBench code generation (livecodebench/code_generation_lite) rows as Problem records.

Columns: `question_title`, `question_content`, `platform` (leetcode, codeforces, atcoder),
`question_id`, `contest_id`, `contest_date`, `starter_code`, `difficulty`, `public_test_cases`
(a JSON string: a list of {input, output, testtype}), `private_test_cases` (the same list, stored
either as JSON text or compressed: base64 of zlib of a pickle of the JSON text), `metadata` (a JSON
string; `func_name` for LeetCode problems).

A test's `testtype` is `stdin` (input and output are the program's stdin and stdout) or
`functional` (LeetCode: the input is one JSON value per line, the arguments of
`Solution().<func_name>`; the output is the JSON of the return value).

Mapped: question_id -> id; question_content (+ the starter code, which holds the class and method
to complete) -> prompt; public and private tests -> tests, the public ones also -> public_tests;
metadata.func_name -> fn_name for functional tests, whose inputs become JSON lists of arguments.
Every other column is kept under meta as it is (private_test_cases, decoded into tests, is not:
it can be tens of MB).

The compressed private tests are unpickled WITHOUT running code: the unpickler refuses every
reference to a class or function (the only way a pickle runs code) and persistent ids, so it can
build nothing but plain values; the value must then be the JSON text the dataset documents, and
anything else is an error naming the field. Decompression stops at MAX_DECODED bytes.

Skipped (counted): a problem with neither public nor private tests.
"""

from __future__ import annotations

import base64
import binascii
import io
import pickle
import zlib
from typing import Any

import orjson

from spo_cli.errors import RecordError, Unusable
from spo_cli.importers._common import json_field, meta, with_starter_code

MAX_DECODED = 1 << 30  # bytes one row's compressed private tests may decompress to
CONSUMED = {"question_id", "question_content", "public_test_cases", "private_test_cases"}


class _PlainUnpickler(pickle.Unpickler):
    """Builds plain values only: strings, bytes, numbers, None, booleans, lists, tuples, dicts
    and sets come from pickle's own opcodes; a class or a function can only come from
    find_class (GLOBAL, STACK_GLOBAL, INST, OBJ and the extension registry all go through it),
    and without one nothing can be called."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"it refers to {module}.{name}; only plain data is accepted")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("it uses a persistent id; only plain data is accepted")


def plain_unpickle(data: bytes) -> Any:
    """pickle.loads for data that must hold plain values only: never runs code, whatever the
    bytes. Raises pickle.UnpicklingError (or ValueError, EOFError) for anything else."""
    return _PlainUnpickler(io.BytesIO(data)).load()


def decode_private_tests(text: Any, field: str = "private_test_cases") -> Any:
    """LiveCodeBench's private tests as stored: JSON text, or base64(zlib(pickle(JSON text)))."""
    if text is None:
        return []
    if not isinstance(text, (str, bytes)):
        raise RecordError(field, f"must be a string, got {type(text).__name__}")
    raw = text.encode() if isinstance(text, str) else text
    stripped = raw.lstrip()
    if not stripped:
        return []
    if stripped[:1] in (b"[", b"{"):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise RecordError(field, f"is not valid JSON ({e})") from None
    try:
        packed = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as e:
        raise RecordError(field, f"is neither JSON nor base64 ({e})") from None
    d = zlib.decompressobj()
    try:
        pickled = d.decompress(packed, MAX_DECODED)
    except zlib.error as e:
        raise RecordError(field, f"is not zlib-compressed data ({e})") from None
    if d.unconsumed_tail:
        raise RecordError(field, f"decompresses to more than {MAX_DECODED >> 20} MiB")
    if not d.eof:
        raise RecordError(field, "its zlib data is cut short")
    try:
        value = plain_unpickle(pickled)
    except Exception as e:  # noqa: BLE001 - whatever the bytes hold, the answer is this error
        raise RecordError(field, f"is not a pickle of plain data ({type(e).__name__}: {e})") from None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise RecordError(field, f"holds a pickled {type(value).__name__}, not the JSON text "
                                 "LiveCodeBench stores")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as e:
        raise RecordError(field, f"holds text that is not valid JSON ({e})") from None


def _tests(cases: Any, field: str, fn_name: str | None) -> tuple[list[dict], set[str]]:
    """(tests, the test types seen) of a list of LiveCodeBench test cases."""
    if not isinstance(cases, list):
        raise RecordError(field, f"must be a list of tests, got {type(cases).__name__}")
    out, kinds = [], set()
    for i, c in enumerate(cases):
        if not isinstance(c, dict) or not isinstance(c.get("input"), str) \
                or not isinstance(c.get("output"), str):
            raise RecordError(field, f"test {i} must be an object with string input and output")
        kind = c.get("testtype") or "stdin"
        kinds.add(kind)
        if kind == "stdin":
            out.append({"input": c["input"], "output": c["output"]})
        elif kind == "functional":
            try:
                args = [orjson.loads(line) for line in c["input"].split("\n") if line.strip()]
                orjson.loads(c["output"])
            except orjson.JSONDecodeError as e:
                raise RecordError(field, f"test {i}: a functional test's input lines and output "
                                         f"must be JSON ({e})") from None
            out.append({"input": orjson.dumps(args).decode(), "output": c["output"]})
        else:
            raise RecordError(field, f"test {i}: unknown testtype {kind!r} (stdin or functional)")
    return out, kinds


def from_livecodebench(row: dict) -> dict:
    md = json_field(row, "metadata") or {}
    if not isinstance(md, dict):
        raise RecordError("metadata", "must decode to an object")
    fn_name = md.get("func_name") or None
    public, k1 = _tests(json_field(row, "public_test_cases") or [], "public_test_cases", fn_name)
    private, k2 = _tests(decode_private_tests(row.get("private_test_cases")), "private_test_cases",
                         fn_name)
    kinds = k1 | k2
    if len(kinds) > 1:
        raise RecordError("public_test_cases", "mixes stdin and functional tests")
    if kinds == {"functional"} and not isinstance(fn_name, str):
        raise RecordError("metadata", "functional tests need metadata.func_name")
    tests = public + private
    if not tests:
        raise Unusable("no tests (public_test_cases and private_test_cases are empty)")
    if row.get("question_id") in (None, ""):
        raise RecordError("question_id", "missing (the problem's id)")
    content = row.get("question_content")
    if not isinstance(content, str):
        raise RecordError("question_content", "missing (the problem statement)")
    out: dict[str, Any] = {
        "id": str(row.get("question_id")),
        "prompt": with_starter_code(content, row.get("starter_code")),
        "tests": tests,
        "public_tests": public,
        "meta": meta("livecodebench", row, CONSUMED, private_tests=len(private)),
    }
    if kinds == {"functional"}:
        out["fn_name"] = fn_name
    return out
