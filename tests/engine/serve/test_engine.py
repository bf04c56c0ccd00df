"""The engine on a real nano model: batching, sampling, stops, cancellation, overload and adapters."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from engine.serve.engine import Engine, Stream, collect
from engine.serve.loaded import LoadedModel, ModelLoadError, load_model
from engine.serve.types import GenerationRequest, Overloaded, SamplingParams, ServeError
from tests.engine.tinyllm.training_support import TrainRun

PROMPTS = ["def parse(", "import os\n\n", "class Reader:\n    def", "# the format of a record", "x", "return {"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def engine(loaded: LoadedModel) -> Iterator[Engine]:
    engine = Engine(loaded, max_batch=8, max_queue=8)
    engine.start()
    yield engine
    engine.stop()


def request(loaded: LoadedModel, prompt: str, rid: str = "r", **sampling: object) -> GenerationRequest:
    params = {"max_tokens": 24, "temperature": 0.0} | sampling
    return GenerationRequest(rid, tuple(loaded.text_ids(prompt)), SamplingParams(**params))  # type: ignore[arg-type]


def wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_batched_greedy_decoding_gives_the_tokens_of_single_stream_decoding(
    engine: Engine, loaded: LoadedModel
) -> None:
    alone = [collect(engine.submit(request(loaded, prompt, max_tokens=30))) for prompt in PROMPTS]
    # Three start together; three more join the running batch a few steps later, with other lengths.
    made = engine.stats().completion_tokens
    first = [engine.submit(request(loaded, prompt, max_tokens=30)) for prompt in PROMPTS[:3]]
    wait_for(lambda: engine.stats().completion_tokens >= made + 6)
    later = [engine.submit(request(loaded, prompt, max_tokens=30)) for prompt in PROMPTS[3:]]
    together = [collect(stream) for stream in first + later]
    assert [c.token_ids for c in together] == [c.token_ids for c in alone]
    assert [c.text for c in together] == [c.text for c in alone]
    assert all(c.prompt_tokens == len(loaded.text_ids(p)) for c, p in zip(together, PROMPTS, strict=True))


def test_max_tokens_ends_a_sequence_with_length(engine: Engine, loaded: LoadedModel) -> None:
    done = collect(engine.submit(request(loaded, "def ", max_tokens=7)))
    # The nano model may end early with its end token; then the reason is stop.
    assert (done.finish_reason, done.completion_tokens) == ("length", 7) or done.finish_reason == "stop"
    assert len(done.token_ids) == done.completion_tokens


def test_a_stop_string_cuts_the_text_before_it_and_is_never_sent(engine: Engine, loaded: LoadedModel) -> None:
    full = collect(engine.submit(request(loaded, PROMPTS[2], max_tokens=40)))
    assert len(full.text) > 8, full.text
    stop = full.text[5:8]
    cut = full.text[: full.text.index(stop)]
    stream = engine.submit(request(loaded, PROMPTS[2], max_tokens=40, stop=(stop, "\x00never")))
    deltas = list(stream)
    assert "".join(d.text for d in deltas) == cut
    assert deltas[-1].finish_reason == "stop"
    assert all(stop not in "".join(d.text for d in deltas[: i + 1]) for i in range(len(deltas)))


def test_a_seed_makes_sampling_reproducible_whatever_shares_the_batch(engine: Engine, loaded: LoadedModel) -> None:
    sampled = {"temperature": 1.0, "top_p": 0.95, "top_k": 50, "max_tokens": 30}
    alone = collect(engine.submit(request(loaded, PROMPTS[1], seed=7, **sampled)))
    crowd = [engine.submit(request(loaded, prompt, seed=index, **sampled)) for index, prompt in enumerate(PROMPTS)]
    again = collect(engine.submit(request(loaded, PROMPTS[1], seed=7, **sampled)))
    other = collect(engine.submit(request(loaded, PROMPTS[1], seed=8, **sampled)))
    for stream in crowd:
        collect(stream)
    assert again.token_ids == alone.token_ids
    assert other.token_ids != alone.token_ids


def test_logprobs_give_the_chosen_token_and_its_rivals(engine: Engine, loaded: LoadedModel) -> None:
    done = collect(engine.submit(request(loaded, PROMPTS[0], max_tokens=6, logprobs=3)))
    assert len(done.logprobs) == len(done.token_ids) > 0
    for entry in done.logprobs:
        assert entry.logprob <= 0.0
        assert len(entry.top) == 3
        # Greedy: the chosen token is the most likely one.
        assert entry.top[0].logprob == pytest.approx(entry.logprob)
        assert [t.logprob for t in entry.top] == sorted((t.logprob for t in entry.top), reverse=True)
    assert collect(engine.submit(request(loaded, PROMPTS[0], max_tokens=3))).logprobs == ()


def test_processed_logprobs_are_each_rows_own_in_a_batch(engine: Engine, loaded: LoadedModel) -> None:
    # Without a grammar or a penalty, what a token is picked from is the model's own distribution.
    raw = collect(engine.submit(request(loaded, PROMPTS[0], max_tokens=8, logprobs=2)))
    processed = collect(engine.submit(request(loaded, PROMPTS[0], max_tokens=8, logprobs=2, processed_logprobs=True)))
    assert processed.token_ids == raw.token_ids
    assert [e.logprob for e in processed.logprobs] == pytest.approx([e.logprob for e in raw.logprobs], abs=1e-5)
    # A penalised row asking for processed ones, batched with a raw one: each gets what it asked for.
    penalised = request(loaded, PROMPTS[3], "p", max_tokens=12, logprobs=1, frequency_penalty=2.0,
                        processed_logprobs=True)  # fmt: skip
    alone = collect(engine.submit(penalised))
    streams = [engine.submit(request(loaded, PROMPTS[0], "q", max_tokens=8, logprobs=2)), engine.submit(penalised)]
    plain, mine = (collect(stream) for stream in streams)
    # (the same numbers up to the rounding of another batch shape)
    assert [e.logprob for e in plain.logprobs] == pytest.approx([e.logprob for e in raw.logprobs], abs=1e-3)
    assert [e.logprob for e in mine.logprobs] == pytest.approx([e.logprob for e in alone.logprobs], abs=1e-3)
    assert all(entry.logprob <= 0.0 for entry in mine.logprobs)


def test_a_frequency_penalty_changes_what_a_repetitive_model_says(engine: Engine, loaded: LoadedModel) -> None:
    plain = collect(engine.submit(request(loaded, PROMPTS[3], max_tokens=30)))
    penalised = collect(engine.submit(request(loaded, PROMPTS[3], max_tokens=30, frequency_penalty=2.0)))
    assert len(set(penalised.token_ids)) > len(set(plain.token_ids))


def test_cancel_frees_the_batch_slot_at_once(engine: Engine, loaded: LoadedModel) -> None:
    stream = engine.submit(request(loaded, PROMPTS[0], max_tokens=200))
    deltas = iter(stream)
    next(deltas)
    wait_for(lambda: engine.stats().running == 1)
    stream.cancel()
    wait_for(lambda: engine.stats().running == 0)
    rest = list(deltas)
    assert rest[-1].finish_reason == "cancelled"
    assert sum(len(d.token_ids) for d in rest) < 199


def test_requests_sent_together_to_an_idle_engine_are_prefilled_together(loaded: LoadedModel) -> None:
    # Prompts of one length (prefilled together, they are one group), a millisecond apart as
    # clients' requests come. The windows are wide here so that a loaded machine, which can hold
    # this thread back for longer than the served 4 ms, does not split them.
    engine = Engine(loaded, max_batch=8, max_queue=8, gather=(0.5, 5.0))
    engine.start()
    try:
        streams = []
        for index in range(6):
            streams.append(engine.submit(request(loaded, PROMPTS[0], str(index), max_tokens=3)))
            time.sleep(0.001)
        for stream in streams:
            collect(stream)
    finally:
        engine.stop()
    # One prefill gives every row its first token at the same moment.
    assert len({stream.first_token_at for stream in streams}) == 1


def test_a_full_queue_refuses_with_retry_after(loaded: LoadedModel) -> None:
    engine = Engine(loaded, max_batch=1, max_queue=1)
    engine.start()
    try:
        running = engine.submit(request(loaded, PROMPTS[0], max_tokens=200))
        wait_for(lambda: engine.stats().running == 1)
        waiting = engine.submit(request(loaded, PROMPTS[1], max_tokens=5))
        with pytest.raises(Overloaded) as refused:
            engine.submit(request(loaded, PROMPTS[2], max_tokens=5))
        assert refused.value.status == 503
        assert refused.value.retry_after
        assert engine.stats().waiting == 1
        running.cancel()
        assert collect(waiting).finish_reason in {"length", "stop"}
    finally:
        engine.stop()


def test_stopping_the_engine_ends_every_sequence(loaded: LoadedModel) -> None:
    engine = Engine(loaded, max_batch=1, max_queue=4)
    engine.start()
    streams = [engine.submit(request(loaded, prompt, max_tokens=200)) for prompt in PROMPTS[:3]]
    wait_for(lambda: engine.stats().running == 1)
    engine.stop()
    assert [collect(s).finish_reason for s in streams] == ["cancelled"] * 3
    with pytest.raises(ServeError) as refused:
        engine.submit(request(loaded, PROMPTS[0]))
    assert refused.value.status == 503


@pytest.mark.parametrize(
    ("prompt_tokens", "max_tokens", "param"),
    [(300, 1, "messages"), (256, 1, "messages"), (250, 7, "max_tokens"), (10, 0, "max_tokens"), (0, 5, "messages")],
)
def test_lengths_beyond_the_context_are_refused_with_400(
    engine: Engine, prompt_tokens: int, max_tokens: int, param: str
) -> None:
    assert engine.loaded.context_length == 256
    ids = tuple([5] * prompt_tokens)
    with pytest.raises(ServeError) as refused:
        engine.submit(GenerationRequest("r", ids, SamplingParams(max_tokens=max_tokens)))
    assert (refused.value.status, refused.value.param) == (400, param)


def test_a_prompt_may_fill_the_context_but_one(engine: Engine) -> None:
    done = collect(engine.submit(GenerationRequest("r", tuple([5] * 255), SamplingParams(max_tokens=1))))
    assert done.completion_tokens == 1


def test_streams_can_be_read_from_an_event_loop(engine: Engine, loaded: LoadedModel) -> None:
    import asyncio

    async def read(stream: Stream) -> str:
        return "".join([delta.text async for delta in stream.aiter()])

    expected = collect(engine.submit(request(loaded, PROMPTS[4]))).text
    assert asyncio.run(read(engine.submit(request(loaded, PROMPTS[4])))) == expected


def test_bf16_and_int8_weights_decode(pretrained: tuple[Path, TrainRun]) -> None:
    for dtype in ("bf16", "int8"):
        loaded = load_model(pretrained[0], dtype=dtype)
        assert loaded.dtype == dtype
        engine = Engine(loaded)
        engine.start()
        try:
            done = collect(engine.submit(request(loaded, PROMPTS[0], max_tokens=5)))
        finally:
            engine.stop()
        assert done.finish_reason in {"length", "stop"}
        assert done.completion_tokens >= 1


def test_model_directories_that_cannot_be_served_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such model directory"):
        load_model(tmp_path / "missing")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match=r"not a finished model directory \(missing tokenizer.json, model"):
        load_model(tmp_path)


def test_a_chat_template_that_cannot_render_is_refused_at_load(
    pretrained: tuple[Path, TrainRun], tmp_path: Path
) -> None:
    import shutil

    model_dir = Path(shutil.copytree(pretrained[0], tmp_path / "m"))
    broken = "{% for message in messages %}{{ message['content'] | no_such_filter }}{% endfor %}"
    jinja = model_dir / "chat_template.jinja"
    if jinja.exists():
        jinja.write_text(broken)
    else:
        config = json.loads((model_dir / "tokenizer_config.json").read_text())
        (model_dir / "tokenizer_config.json").write_text(json.dumps(config | {"chat_template": broken}))
    with pytest.raises(ModelLoadError, match="chat template does not render") as caught:
        load_model(model_dir)
    assert "\n" not in str(caught.value)
    # a template that wants a system message first still serves the clients that send one
    wants_system = (
        "{% if messages[0]['role'] != 'system' %}{{ raise_exception('a system message comes first') }}{% endif %}"
        "{% for message in messages %}{{ message['content'] }}{% endfor %}"
    )
    if jinja.exists():
        jinja.write_text(wants_system)
    else:
        (model_dir / "tokenizer_config.json").write_text(json.dumps(config | {"chat_template": wants_system}))
    assert load_model(model_dir).name == "m"


def test_an_unknown_model_id_is_a_404_that_does_not_echo_a_huge_name(loaded: LoadedModel) -> None:
    with pytest.raises(ServeError) as caught:
        loaded.adapter_for("x" * 100_000)
    assert caught.value.status == 404
    assert len(str(caught.value)) < 300


def make_adapter(model_dir: Path, out: Path, seed: int) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(str(out))
    return out


def test_adapters_are_model_ids_and_share_a_batch_with_the_base(
    pretrained: tuple[Path, TrainRun], tmp_path: Path
) -> None:
    model_dir = pretrained[0]
    adapter = make_adapter(model_dir, tmp_path / "lora", seed=3)
    loaded = load_model(model_dir, dtype="fp32", adapters={"router": adapter}, name="tiny")
    assert loaded.model_ids() == ["tiny", "router"]
    assert loaded.adapter_for("router") == "router"
    assert loaded.adapter_for("tiny") is None
    with pytest.raises(ServeError) as unknown:
        loaded.adapter_for("gpt-4o")
    assert unknown.value.status == 404
    engine = Engine(loaded)
    engine.start()
    try:

        def run(adapter_id: str | None, prompt: str) -> GenerationRequest:
            params = SamplingParams(max_tokens=20, temperature=0)
            return GenerationRequest("r", tuple(loaded.text_ids(prompt)), params, adapter_id)

        alone = [collect(engine.submit(run(a, p))) for a in (None, "router") for p in PROMPTS[:2]]
        mixed = [engine.submit(run(a, p)) for a in (None, "router") for p in PROMPTS[:2]]
        assert [collect(s).token_ids for s in mixed] == [c.token_ids for c in alone]
        assert alone[0].token_ids != alone[2].token_ids
    finally:
        engine.stop()
    with pytest.raises(ModelLoadError, match="int8 does not go with adapters"):
        load_model(model_dir, dtype="int8", adapters={"router": adapter})


@pytest.mark.parametrize("dynamic", [True, False], ids=["fbgemm", "weight-only"])
def test_int8_linear_layers_stay_close_to_their_weights(dynamic: bool) -> None:
    from engine.serve.quantize import (
        DynamicInt8Linear,
        Int8Linear,
        dynamic_kernel_available,
        float_dtype,
        quantize_int8,
    )

    if dynamic and not dynamic_kernel_available():
        pytest.skip("PyTorch's x86 quantized engine is not in this build")
    kind = DynamicInt8Linear if dynamic else Int8Linear
    dtype = float_dtype(dynamic)
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 512, bias=False)
    x = torch.randn(3, 5, 256)
    with torch.no_grad():
        exact = linear(x)
        approx = kind(linear)(x.to(dtype)).float()
    assert approx.shape == exact.shape
    assert float((approx - exact).norm() / exact.norm()) < 0.03
    model = torch.nn.Sequential(
        torch.nn.Linear(32, 12, bias=False), torch.nn.Linear(12, 16, bias=False), torch.nn.Linear(16, 4)
    ).to(dtype)
    # a layer with a bias stays as it is; so does a width the weight-only kernel would crash on
    assert quantize_int8(model, dynamic=dynamic) == (2 if dynamic else 1)
    assert isinstance(model[0], kind)
    assert isinstance(model[1], kind if dynamic else torch.nn.Linear)
    assert isinstance(model[2], torch.nn.Linear)
    with torch.no_grad():
        assert model(torch.randn(5, 32, dtype=dtype)).shape == (5, 4)


def test_auto_weights_are_int8_on_a_cpu_and_float_with_adapters(pretrained: tuple[Path, TrainRun]) -> None:
    from engine.serve.loaded import cpu_has_bf16, resolve_dtype

    assert resolve_dtype("auto", "cpu") == "int8"
    assert resolve_dtype("auto", "cpu", adapters=True) == ("bf16" if cpu_has_bf16() else "fp32")
    assert resolve_dtype("fp32", "cpu") == "fp32"
    assert load_model(pretrained[0]).dtype == "int8"


def test_prompts_prefilled_together_decode_as_each_alone(loaded: LoadedModel) -> None:
    from engine.serve.batch import BatchCache

    def run(groups: list[list[str]]) -> list[tuple[int, ...]]:
        batch = BatchCache(loaded)
        streams = []
        for group in groups:
            made = [Stream(request(loaded, prompt, max_tokens=12), lambda: None) for prompt in group]
            batch.add([(stream, 0) for stream in made])
            streams += made
        with torch.inference_mode():
            while batch.rows:
                batch.decode()
        return [collect(stream).token_ids for stream in streams]

    # different lengths, so the group is left-padded; one more group joins the running batch
    together = run([PROMPTS[:4], PROMPTS[4:]])
    alone = run([[prompt] for prompt in PROMPTS])
    assert together == alone
    assert all(len(tokens) == 12 for tokens in alone)


def test_prefill_groups_keep_padding_small() -> None:
    from engine.serve.batch import GROUP_TOKENS, prefill_groups

    assert prefill_groups([]) == []
    assert prefill_groups([64] * 8) == [list(range(8))]
    assert prefill_groups([5, 300, 7, 6]) == [[0, 3, 2], [1]]  # shortest first; the long one alone
    assert sorted(i for group in prefill_groups([3, 90, 40, 41, 88, 2]) for i in group) == list(range(6))
    assert all(len(group) == 1 for group in prefill_groups([GROUP_TOKENS // 2 + 1] * 3))
