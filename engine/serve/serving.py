"""Turning a validated OpenAI request into engine work, and engine deltas into OpenAI responses.

Nothing here speaks HTTP: :class:`Serving` prepares a :class:`Job` (prompt tokens, sampling,
grammar, the choices to run), then either collects it into one response object or yields the
chunks of a stream. It never imports torch itself; the model and the engine arrive built.

Reasoning models answer ``【推理过程】 ... 【最终答案】 ...``: the part before the answer marker is
``reasoning_content``, the rest ``content`` (in a stream, text is held back while it may be the
start of the marker). A ``json_schema`` answer is checked against the original schema after
generation; one that fails it (a keyword the grammar had to rewrite) is refused with 422
(``code: "schema_not_satisfied"``), in a stream as a final ``error`` event before ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from engine.serve import protocol
from engine.serve.protocol import ChatRequest, ChoiceResult, CompletionRequest
from engine.serve.types import (
    GRAMMAR_FAILED,
    Delta,
    FinishReason,
    GenerationRequest,
    SamplingParams,
    ServeError,
    TokenLogprob,
)

if TYPE_CHECKING:
    from engine.serve.engine import EngineApi, Stream
    from engine.serve.grammar import JsonGrammar
    from engine.serve.loaded import LoadedModel
    from engine.tinyllm.sft_data import Markers

#: Markers of reasoning models, as ``routeshell train reasoning`` writes them (engine.tinyllm.sft_data).
REASONING_MARKERS = {"zh": ("【推理过程】", "【最终答案】"), "en": ("Reasoning:", "Answer:")}


@dataclass
class Tally:
    """What one request used, filled in as it runs (read by the request log and the metrics)."""

    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Job:
    """A request ready for the engine: one :class:`GenerationRequest` per sequence to generate."""

    kind: Literal["chat", "text"]
    response_id: str
    created: int
    model: str
    requests: list[GenerationRequest]
    prompt_tokens: int
    grammar: JsonGrammar | None
    reasoning: Markers | None
    include_usage: bool
    self_consistency: bool
    tally: Tally = field(default_factory=Tally)


@dataclass
class _Choice:
    """One sequence's text so far, split into reasoning and content for a reasoning model."""

    index: int
    content: list[str] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    completion_tokens: int = 0


class ReasoningSplitter:
    """Sorts a reasoning model's streamed text into reasoning and content as it arrives.

    A text that opens with the reasoning marker is reasoning up to the answer marker (on a line of
    its own) and content after it, as :func:`engine.serve.reasoning.split_answer` splits a whole
    text; a text opening with the answer marker is all answer, and any other text all content. Text
    that may be the start of a marker is held back until the next piece decides.
    """

    def __init__(self, language: Markers) -> None:
        reasoning, answer = REASONING_MARKERS[language]
        self.head = f"{reasoning}\n"
        self.answer = f"\n{answer}\n"
        self.text = ""
        self.mode: Literal["undecided", "reasoning", "content"] = "undecided"
        self.sent_reasoning = 0

    def feed(self, text: str, *, final: bool = False) -> tuple[str, str]:
        """Add ``text``; return the (reasoning, content) that can be sent now."""
        if self.mode == "content":
            return "", text
        self.text += text
        if self.mode == "undecided":
            opening = self.answer[1:]
            if not final and (self.head.startswith(self.text) or opening.startswith(self.text)):
                return "", ""
            if self.text.startswith(opening):  # no reasoning at all: the answer marker opens the text
                self.mode = "content"
                return "", self.text.removeprefix(opening)
            if not self.text.startswith(self.head):
                self.mode = "content"
                return "", self.text
            self.mode = "reasoning"
        body = self.text.removeprefix(self.head)
        before, found, after = body.partition(self.answer)
        if found:
            self.mode = "content"
            return before[self.sent_reasoning :], after
        keep = 0 if final else len(self.answer) - 1
        ready = body[: max(self.sent_reasoning, len(body) - keep)]
        new = ready[self.sent_reasoning :]
        self.sent_reasoning = len(ready)
        return new, ""


class Serving:
    """The OpenAI endpoints over one loaded model and its engine, without HTTP.

    ``on_first_token(seconds)`` and ``on_tokens(count)`` report to the metrics as tokens arrive.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        engine: EngineApi,
        *,
        on_first_token: Callable[[float], None] = lambda seconds: None,
        on_tokens: Callable[[int], None] = lambda count: None,
    ) -> None:
        self.loaded = loaded
        self.engine = engine
        self.on_first_token = on_first_token
        self.on_tokens = on_tokens

    # -- preparing -------------------------------------------------------------------------------

    def prepare_chat(self, request: ChatRequest) -> Job:
        """Tokenize a chat request into a :class:`Job`; raise ServeError for what cannot be served."""
        adapter = self.loaded.adapter_for(request.model)
        messages = [message.as_chat() for message in request.messages]
        if request.calculator:
            messages = self._with_calculator(messages)
        prompt = self.loaded.chat_ids(messages)
        return self._job("chat", request, prompt, adapter, "messages")

    def prepare_completion(self, request: CompletionRequest) -> Job:
        """Tokenize a text-completion request into a :class:`Job`."""
        adapter = self.loaded.adapter_for(request.model)
        if isinstance(request.prompt, str):
            text = request.prompt
            if request.calculator:
                text = self._calculator_prefix(text) + text
            prompt = self.loaded.text_ids(text)
        else:
            if request.calculator:
                raise ServeError("calculator needs a text prompt, not token ids", param="calculator")
            vocab = self.loaded.vocab_size
            if any(not 0 <= token < vocab for token in request.prompt):
                raise ServeError(f"prompt: token ids must be between 0 and {vocab - 1}", param="prompt")
            prompt = list(request.prompt)
        return self._job("text", request, prompt, adapter, "prompt")

    def _with_calculator(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        note = _calculator_note(question)
        if note is None:
            return messages
        # Chat templates expect the system message first: the note joins it, or becomes it.
        if messages and messages[0]["role"] == "system":
            return [{"role": "system", "content": f"{messages[0]['content']}\n\n{note}"}, *messages[1:]]
        return [{"role": "system", "content": note}, *messages]

    def _calculator_prefix(self, text: str) -> str:
        note = _calculator_note(text)
        return f"{note}\n" if note else ""

    def _job(
        self,
        kind: Literal["chat", "text"],
        request: ChatRequest | CompletionRequest,
        prompt: Sequence[int],
        adapter: str | None,
        prompt_param: str,
    ) -> Job:
        context = self.loaded.context_length
        if len(prompt) >= context:
            raise ServeError(
                f"the prompt is {len(prompt)} tokens; the model's context is {context} tokens, "
                "and at least one must be left for the answer: shorten the prompt",
                param=prompt_param,
                code="context_length_exceeded",
            )
        asked = request.effective_max_tokens()
        chat_limit = isinstance(request, ChatRequest) and request.max_completion_tokens
        param = "max_completion_tokens" if chat_limit else "max_tokens"
        if asked is not None and len(prompt) + asked > context:
            raise ServeError(
                f"{param} is {asked} but the prompt already takes {len(prompt)} of the model's {context} "
                f"context tokens: ask for at most {context - len(prompt)}",
                param=param,
                code="context_length_exceeded",
            )
        max_tokens = asked if asked is not None else context - len(prompt)
        grammar = self._grammar(request)
        voting = (request.self_consistency or 1) > 1
        temperature = request.temperature
        if temperature is None:
            temperature = protocol.SELF_CONSISTENCY_TEMPERATURE if voting else 1.0
        top_k = request.top_k or 0
        if request.top_p == 0.0:  # nothing but the most likely token
            top_k = 1
        response_id = protocol.new_id("chatcmpl" if kind == "chat" else "cmpl")
        requests = []
        for i in range(request.samples):
            seed = None if request.seed is None else (request.seed + i) % 2**63
            params = SamplingParams(
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=request.top_p if request.top_p else 1.0,
                top_k=max(top_k, 0),
                presence_penalty=request.presence_penalty,
                frequency_penalty=request.frequency_penalty,
                seed=seed,
                stop=request.stop,
                logprobs=request.logprob_count(),
                processed_logprobs=request.logprobs_mode == "processed",
            )
            requests.append(GenerationRequest(f"{response_id}-{i}", tuple(prompt), params, adapter, grammar))
        return Job(
            kind=kind,
            response_id=response_id,
            created=protocol.now(),
            model=request.model,
            requests=requests,
            prompt_tokens=len(prompt),
            grammar=grammar,
            reasoning=self.loaded.reasoning if grammar is None else None,
            include_usage=request.include_usage,
            self_consistency=voting,
            tally=Tally(model=request.model, prompt_tokens=len(prompt)),
        )

    def _grammar(self, request: ChatRequest | CompletionRequest) -> JsonGrammar | None:
        form = request.response_format
        if form is None or form.type == "text":
            return None
        from engine.serve.grammar import compile_response_format

        return compile_response_format(
            form.model_dump(by_alias=True, exclude_none=True),
            self.loaded.tokenizer,
            eos_ids=sorted(self.loaded.eos_ids),
        )

    # -- running ---------------------------------------------------------------------------------

    def submit(self, job: Job) -> list[Stream]:
        """Hand every sequence of ``job`` to the engine; on refusal (Overloaded) cancel those already in."""
        capacity = self.engine.max_batch + self.engine.max_queue
        if len(job.requests) > capacity:
            # The queue could never hold them all: waiting and retrying would not help.
            raise ServeError(
                f"{len(job.requests)} sequences were asked for; this server runs and queues at most {capacity}",
                param="self_consistency" if job.self_consistency else "n",
            )
        streams: list[Stream] = []
        try:
            for request in job.requests:
                streams.append(self.engine.submit(request))
        except BaseException:
            for stream in streams:
                stream.cancel()
            raise
        return streams

    async def _deltas(self, job: Job, streams: Sequence[Stream]) -> AsyncIterator[tuple[int, Delta]]:
        """Every stream's deltas as they come, with the stream's index; cancels all streams on exit."""
        started = time.perf_counter()
        first = True
        try:
            async with contextlib.aclosing(_merged(streams)) as merged:
                async for index, delta in merged:
                    if delta.finish_reason == "error" and (delta.error or "").startswith(GRAMMAR_FAILED):
                        raise ServeError(
                            f"{delta.error}; simplify the schema", param="response_format", code="grammar_failed"
                        )
                    if delta.finish_reason == "error":
                        raise ServeError(
                            f"generation failed: {delta.error or 'no details'}", status=500, kind="server_error"
                        )
                    if delta.finish_reason == "cancelled" and not streams[index].cancelled:
                        raise ServeError("the server is stopping; try again", status=503, kind="server_error")
                    if delta.token_ids:
                        if first:
                            self.on_first_token(time.perf_counter() - started)
                            first = False
                        self.on_tokens(len(delta.token_ids))
                    yield index, delta
        finally:
            for stream in streams:
                stream.cancel()

    async def complete(self, job: Job, streams: Sequence[Stream]) -> dict[str, Any]:
        """Run ``job`` to the end; return the whole chat.completion or text_completion object."""
        choices = [_Choice(i) for i in range(len(streams))]
        async for index, delta in self._deltas(job, streams):
            choice = choices[index]
            choice.content.append(delta.text)
            choice.logprobs.extend(delta.logprobs)
            if delta.finish_reason is not None:
                choice.finish_reason = delta.finish_reason
                choice.completion_tokens = delta.completion_tokens
                job.tally.completion_tokens += delta.completion_tokens
        results = [self._result(job, choice) for choice in choices]
        extra: dict[str, Any] = {}
        if job.self_consistency:
            results, extra = self._vote(results)
        for result in results:
            await self._check_schema_off_loop(job, result)
        counts = (job.prompt_tokens, job.tally.completion_tokens)
        build = protocol.chat_response if job.kind == "chat" else protocol.completion_response
        response = build(job.response_id, job.created, job.model, results, counts)
        response.update(extra)
        return response

    def _result(self, job: Job, choice: _Choice) -> ChoiceResult:
        text = "".join(choice.content)
        reasoning = None
        if job.reasoning is not None and job.kind == "chat":
            from engine.serve.reasoning import split_answer

            reasoning, text = split_answer(text, job.reasoning)
        logprobs = tuple(choice.logprobs) if job.requests[0].params.logprobs is not None else None
        return ChoiceResult(choice.index, text, choice.finish_reason or "stop", reasoning, logprobs)

    def _vote(self, results: list[ChoiceResult]) -> tuple[list[ChoiceResult], dict[str, Any]]:
        from engine.serve.reasoning import vote

        winner, counts = vote([result.content for result in results])
        chosen = results[winner]
        votes = {"samples": len(results), "votes": dict(counts), "winner": winner}
        return [ChoiceResult(0, chosen.content, chosen.finish_reason, chosen.reasoning, chosen.logprobs)], {
            "self_consistency": votes
        }

    async def _check_schema_off_loop(self, job: Job, result: ChoiceResult) -> None:
        # Matching a schema's patterns may take up to its budget (engine.serve.schema_check): never
        # on the event loop, which answers /health meanwhile.
        if job.grammar is not None and result.finish_reason == "stop":
            await asyncio.to_thread(self._check_schema, job, result)

    def _check_schema(self, job: Job, result: ChoiceResult) -> None:
        if job.grammar is None or result.finish_reason != "stop":
            return  # a cut-off answer says so with finish_reason "length"
        problem = job.grammar.check(result.content)
        if problem is not None:
            raise ServeError(
                f"choice {result.index}: the answer does not satisfy the schema ({problem}); the grammar could "
                "not enforce every keyword of it: retry with another seed or simplify the schema",
                status=422,
                param="response_format",
                code="schema_not_satisfied",
            )

    async def stream(self, job: Job, streams: Sequence[Stream]) -> AsyncGenerator[dict[str, Any], None]:
        """Yield the chunks of a streamed response (without the final ``[DONE]``)."""
        if job.self_consistency:
            # The answer is known only after the vote: it goes out as one chunk.
            response = await self.complete(job, streams)
            for chunk in self._chunks_of(job, response):
                yield chunk
            return
        ids = (job.response_id, job.created, job.model)
        choices = [_Choice(i) for i in range(len(streams))]
        reasoning = job.reasoning if job.kind == "chat" else None
        splitters = {i: ReasoningSplitter(reasoning) for i in range(len(streams))} if reasoning else {}
        offsets = [0] * len(streams)
        if job.kind == "chat":
            for i in range(len(streams)):
                yield protocol.chat_chunk(*ids, i, {"role": "assistant", "content": ""})
        async for index, delta in self._deltas(job, streams):
            choice = choices[index]
            choice.content.append(delta.text)
            wanted = job.requests[index].params.logprobs is not None
            logprobs = delta.logprobs if wanted else None
            if delta.finish_reason is not None:
                choice.finish_reason = delta.finish_reason
                job.tally.completion_tokens += delta.completion_tokens
                result = ChoiceResult(index, "".join(choice.content), delta.finish_reason)
                await self._check_schema_off_loop(job, result)
            if job.kind == "text":
                if delta.text or delta.finish_reason or logprobs:
                    yield protocol.completion_chunk(
                        *ids,
                        index,
                        delta.text,
                        finish_reason=delta.finish_reason,
                        logprobs=logprobs,
                        offset=offsets[index],
                    )
                offsets[index] += len(delta.text)
                continue
            pieces: dict[str, str] = {}
            if index in splitters:
                thought, said = splitters[index].feed(delta.text, final=delta.finish_reason is not None)
                if thought:
                    pieces["reasoning_content"] = thought
                if said:
                    pieces["content"] = said
            elif delta.text:
                pieces["content"] = delta.text
            if pieces or delta.finish_reason or logprobs:
                yield protocol.chat_chunk(*ids, index, pieces, finish_reason=delta.finish_reason, logprobs=logprobs)
        if job.include_usage:
            yield protocol.usage_chunk(*ids, job.kind, (job.prompt_tokens, job.tally.completion_tokens))

    def _chunks_of(self, job: Job, response: dict[str, Any]) -> list[dict[str, Any]]:
        ids = (job.response_id, job.created, job.model)
        chunks = []
        for choice in response["choices"]:
            if job.kind == "chat":
                delta = {"role": "assistant", **choice["message"]}
                chunk = protocol.chat_chunk(*ids, choice["index"], delta, finish_reason=choice["finish_reason"])
            else:
                chunk = protocol.completion_chunk(
                    *ids, choice["index"], choice["text"], finish_reason=choice["finish_reason"]
                )
            chunk["choices"][0]["logprobs"] = choice["logprobs"]
            chunks.append(chunk)
        if "self_consistency" in response:
            chunks[-1]["self_consistency"] = response["self_consistency"]
        if job.include_usage:
            chunks.append(protocol.usage_chunk(*ids, job.kind, (job.prompt_tokens, job.tally.completion_tokens)))
        return chunks


def _calculator_note(question: str) -> str | None:
    from engine.serve.reasoning import calculator_note

    return calculator_note(question)


async def _merged(streams: Sequence[Stream]) -> AsyncGenerator[tuple[int, Delta], None]:
    """The deltas of every stream as they come, with the stream's index. One stream (the usual
    request) is read directly; several go through one queue, a task reading each."""
    if len(streams) == 1:
        async for alone in streams[0].aiter():
            yield 0, alone
        return
    queue: asyncio.Queue[tuple[int, Delta | None]] = asyncio.Queue()

    async def pump(index: int, stream: Stream) -> None:
        try:
            async for delta in stream.aiter():
                await queue.put((index, delta))
        finally:
            await queue.put((index, None))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        live = len(tasks)
        while live:
            index, item = await queue.get()
            if item is None:
                live -= 1
                continue
            yield index, item
        for task in tasks:
            task.result()  # an engine failure surfaces here, not as a stream that ends early
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
