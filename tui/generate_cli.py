"""``routeshell generate``: one prompt through the serving engine, without HTTP, for scripts.

The request goes through the same validation, engine and answer handling as ``routeshell serve``
(:mod:`engine.serve.serving`): the text streams to stdout (escaped on a terminal, raw on a pipe)
with the usage on stderr at the end, or with ``--json`` the whole OpenAI response object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from tui.arg_types import given_path, random_seed
from tui.standard_streams import OutputError

#: The most bytes of a --json-schema file read (the grammar then holds it to its own, smaller bound).
MAX_SCHEMA_FILE_BYTES = 1 << 20

DESCRIPTION = """\
Generate text with a model trained by 'routeshell train', without starting a server.

The prompt is the PROMPT argument, or standard input with '-' (or when PROMPT is left out and
input is piped). With --chat (the default) it is the user message of a chat in the model's
template; with --raw it is continued as plain text. A reasoning model's reasoning goes to
stderr and its final answer to stdout.
"""

EXIT_CODES = """\
exit codes:
  0    generated
  1    generation failed (an answer that does not satisfy --json-schema, the engine failed)
  2    bad input: a missing or unusable model directory (a config.json that does not describe
       its weights, a malformed tokenizer.json), an unreadable schema, a prompt longer than the
       context, --device cuda where torch sees no CUDA device
  130  interrupted (Ctrl-C)
"""

#: The most characters of a line of the engine's log shown.
MAX_LOG_CHARS = 300

#: Sampling defaults of the TinyLLM design (the server's are the OpenAI API's).
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_K = 40
DEFAULT_TOP_P = 0.9


def add_generate_command(commands: Any, dtypes: tuple[str, ...]) -> None:
    """Add ``generate`` with its options to the ``routeshell`` subcommands."""
    generate = commands.add_parser(
        "generate",
        help="generate text with a trained model, offline",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = generate.add_argument
    add("prompt", nargs="?", metavar="PROMPT", help="the prompt, or '-' to read it from standard input")
    add("--model", required=True, type=given_path, metavar="DIR", help="a model directory made by 'routeshell train'")
    mode = generate.add_mutually_exclusive_group()
    mode.add_argument("--chat", dest="raw", action="store_false", help="the prompt is a user message (default)")
    mode.add_argument("--raw", dest="raw", action="store_true", help="continue the prompt as plain text")
    generate.set_defaults(raw=False)
    add("--system", metavar="TEXT", help="a system message (with --chat)")
    add("--max-tokens", type=int, metavar="N", help="the most tokens to generate (default: up to the context)")
    add("--temperature", type=float, default=DEFAULT_TEMPERATURE, metavar="T", help="0 is greedy (0.7)")
    add("--top-p", type=float, default=DEFAULT_TOP_P, metavar="P", help="nucleus sampling (0.9)")
    add("--top-k", type=int, default=DEFAULT_TOP_K, metavar="K", help="sample among the K likeliest, 0: all (40)")
    add("--seed", type=random_seed, metavar="N", help="random seed: same seed, same text")
    add("--stop", action="append", default=[], metavar="TEXT", help="stop before this text (repeatable, up to 4)")
    add("--json-schema", type=given_path, metavar="FILE", help="constrain the answer to this JSON Schema")
    add("--self-consistency", type=int, metavar="N", help="sample N answers and print the majority one")
    add("--calculator", action="store_true", help="evaluate the prompt's arithmetic and tell the model")
    add(
        "--dtype",
        choices=dtypes,
        default="auto",
        help="weight format (auto: int8 on a CPU, bf16 with adapters or on a GPU)",
    )
    add("--json", action="store_true", help="print the whole response as an OpenAI JSON object")
    from tui.serve_cli import add_device_option, add_threads_option

    add_device_option(generate)
    add_threads_option(generate)


def _read_prompt(args: argparse.Namespace) -> str:
    from engine.errors import UsageError

    if args.prompt is not None and args.prompt != "-":
        return str(args.prompt)
    if args.prompt is None and sys.stdin.isatty():
        raise UsageError("give a PROMPT, or '-' and the prompt on standard input")
    from engine.textfile import read_bounded
    from tui.sizes import MAX_TASK_BYTES

    data = read_bounded("-", MAX_TASK_BYTES, "the prompt")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("the prompt on standard input is not UTF-8 text") from None


def _schema(path: Path) -> dict[str, Any]:
    from engine.errors import UsageError
    from engine.names import display_name
    from engine.textfile import read_bounded

    try:
        schema = json.loads(read_bounded(path, MAX_SCHEMA_FILE_BYTES, "the schema"))
    except (ValueError, RecursionError):
        raise UsageError(f"the schema {display_name(str(path))} is not JSON") from None
    if not isinstance(schema, dict):
        raise UsageError(f"the schema {display_name(str(path))} is not a JSON object")
    return schema


def request_body(args: argparse.Namespace, prompt: str) -> dict[str, Any]:
    """The OpenAI request body that ``generate``'s options stand for."""
    body: dict[str, Any] = {
        "model": "generate",
        "temperature": args.temperature,
        "top_p": args.top_p,
        "top_k": args.top_k,
        "stop": args.stop,
        "calculator": args.calculator,
    }
    if args.raw:
        body["prompt"] = prompt
    else:
        system = [{"role": "system", "content": args.system}] if args.system else []
        body["messages"] = [*system, {"role": "user", "content": prompt}]
    for option, field in (("max_tokens", "max_tokens"), ("seed", "seed"), ("self_consistency", "self_consistency")):
        if getattr(args, option) is not None:
            body[field] = getattr(args, option)
    if args.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            # The API's name is 1 to 64 characters; a file's name may be anything.
            "json_schema": {"name": args.json_schema.stem[:64] or "schema", "schema": _schema(args.json_schema)},
        }
    return body


def run_generate_command(args: argparse.Namespace) -> int:
    """Run ``routeshell generate``; return the exit code."""
    from engine.errors import ExitCode, RouteshellError, UsageError
    from engine.serve.protocol import ChatRequest, CompletionRequest, parse_request
    from engine.serve.types import ServeError
    from tui.serve_cli import reexec_with_huge_pages

    # before the prompt is read: stdin would not survive the exec
    reexec_with_huge_pages(getattr(args, "own_process", False))
    prompt = _read_prompt(args)
    body = request_body(args, prompt)
    try:  # the options are checked before the model loads; its name is filled in after
        request: ChatRequest | CompletionRequest = (
            parse_request(CompletionRequest, body) if args.raw else parse_request(ChatRequest, body)
        )
    except ServeError as err:
        raise UsageError(str(err)) from None
    from tui.serve_cli import load, prefill_threads

    loaded = load(args)
    request.model = loaded.name
    # Imported here, not at the top: the parser of every command imports this module.
    import asyncio

    from engine.serve.engine import Engine
    from engine.serve.serving import Serving

    log_engine_in_one_line()
    samples = max(1, args.self_consistency or 1)
    engine = Engine(loaded, max_batch=min(samples, 16), max_queue=samples, prefill_threads=prefill_threads(args))
    serving = Serving(loaded, engine)
    engine.start()
    try:
        if isinstance(request, CompletionRequest):
            job = serving.prepare_completion(request)
        else:
            job = serving.prepare_chat(request)
        started = time.perf_counter()
        streams = serving.submit(job)
        if args.json:
            response = asyncio.run(serving.complete(job, streams))
            text = json.dumps(response, ensure_ascii=False, indent=2)
            print(json_for_terminal(text) if sys.stdout.isatty() else text)
            return ExitCode.OK
        finish = asyncio.run(_print_stream(serving, job, streams))
        elapsed = time.perf_counter() - started
    except ServeError as err:
        if err.status < 500 and err.status != 422:
            raise UsageError(str(err)) from None
        raise RouteshellError(str(err)) from None
    except (BrokenPipeError, OutputError):
        raise  # the reader went away, or the output cannot be written: the command line says which
    except Exception as err:  # a failure inside the libraries: one line, never a traceback
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        raise RouteshellError(f"generation failed: {type(err).__name__}: {first}") from err
    finally:
        engine.stop()
    tally = job.tally
    rate = tally.completion_tokens / elapsed if elapsed > 0 else 0.0
    print(
        f"routeshell: {tally.prompt_tokens} prompt + {tally.completion_tokens} completion tokens, "
        f"{elapsed:.2f}s ({rate:.1f} tokens/s), finish_reason {finish}",
        file=sys.stderr,
    )
    return ExitCode.OK


class EngineLog(logging.Handler):
    """The log of an engine running in this process, on stderr: one escaped line a record. A record of
    a failure (with its exception: a failed prefill or decode step) is left out, never a traceback: the
    engine ends the request with that error, and the command's own error line says it, exit 1."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None and bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        from engine.names import display_line

        lines = record.getMessage().strip().splitlines()
        sys.stderr.write(f"routeshell: generate: {display_line(lines[0][:MAX_LOG_CHARS] if lines else '')}\n")


def log_engine_in_one_line() -> None:
    """Send the ``engine`` loggers' warnings to :class:`EngineLog` (unset, Python would print each
    with its traceback)."""
    logger = logging.getLogger("engine")
    logger.handlers = [EngineLog(logging.WARNING)]
    logger.propagate = False


def json_for_terminal(text: str) -> str:
    """Return JSON ``text`` with every non-printable character (C1 controls, bidi overrides, line
    separators, which JSON leaves as they are) written as a ``\\u`` escape: the same JSON, safe to
    show on a terminal. Such characters only occur inside strings, where an escape means the same."""
    if text.replace("\n", "").isprintable():
        return text
    shown = []
    for ch in text:
        code = ord(ch)
        if ch == "\n" or ch.isprintable():
            shown.append(ch)
        elif code > 0xFFFF:  # JSON spells a character beyond the BMP as a surrogate pair
            code -= 0x10000
            shown.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            shown.append(f"\\u{code:04x}")
    return "".join(shown)


async def _print_stream(serving: Any, job: Any, streams: Any) -> str:
    """Print the answer as it streams; return its finish reason."""
    from engine.names import display_text

    terminal = sys.stdout.isatty()
    finish = "stop"
    ended_line = True
    async for chunk in serving.stream(job, streams):
        for choice in chunk.get("choices", []):
            delta = choice.get("delta", choice)
            thought = delta.get("reasoning_content")
            text = delta.get("content", delta.get("text")) or ""
            if thought:
                sys.stderr.write(display_text(thought) if sys.stderr.isatty() else thought)
                sys.stderr.flush()
            if text:
                sys.stdout.write(display_text(text) if terminal else text)
                sys.stdout.flush()
                ended_line = text.endswith("\n")
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
    if not ended_line:
        sys.stdout.write("\n")
    return str(finish)
