"""The events of the model jobs: training (``routeshell train --events``, the Train pane), the
model server (``routeshell serve --events``) and judging (``routeshell eval judge --json``).

:mod:`engine.events` puts them in the one ``Event`` union with the agent and plan events.
"""

# No ``from __future__ import annotations``: the schema is generated from the live annotations.

from typing import Literal, TypedDict

# -- training: routeshell train --events and the Train pane ---------------------------------------

#: The stages of ``routeshell train`` that train a model; ``all`` chains tokenizer, pretrain and sft.
TrainStage = Literal["tokenizer", "pretrain", "sft", "reasoning", "router", "planner"]


class DataFilterEvent(TypedDict):
    """One cleaning filter ran over ``split`` data of a stage: how many documents it removed."""

    type: Literal["data_filter"]
    stage: TrainStage
    filter: str
    removed: int
    kept: int


class DataReadyEvent(TypedDict):
    """The data of a stage is cleaned, split and tokenized; ``cached`` when it came from the disk cache."""

    type: Literal["data_ready"]
    stage: TrainStage
    documents: dict[str, int]
    tokens: dict[str, int]
    cached: bool
    seconds: float


class TrainStartEvent(TypedDict):
    """A stage starts: the model, where it runs and where it is written."""

    type: Literal["train_start"]
    stage: TrainStage
    preset: str
    out: str
    parameters: int
    max_steps: int
    device: str
    dtype: str
    world_size: int
    resumed_from: str | None


class TrainStepEvent(TypedDict):
    """A logged optimizer step; ``eta_s`` is None until a rate is known."""

    type: Literal["train_step"]
    stage: TrainStage
    step: int
    max_steps: int
    loss: float
    lr: float
    tokens_per_s: float
    elapsed_s: float
    eta_s: float | None


class TrainEvalEvent(TypedDict):
    """A held-out evaluation: mean loss on the validation split and its perplexity."""

    type: Literal["train_eval"]
    stage: TrainStage
    step: int
    eval_loss: float
    perplexity: float


class CheckpointEvent(TypedDict):
    """A checkpoint was written to ``path``; ``final`` for the loadable model of a finished stage."""

    type: Literal["checkpoint"]
    stage: TrainStage
    step: int
    path: str
    final: bool


class TrainDoneEvent(TypedDict):
    """A stage ended; ``interrupted`` when Ctrl-C stopped it (its last checkpoint resumes it)."""

    type: Literal["train_done"]
    stage: TrainStage
    path: str
    steps: int
    train_loss: float | None
    eval_loss: float | None
    perplexity: float | None
    elapsed_s: float
    interrupted: bool


# -- the model server (routeshell serve --events) -------------------------------------------------


class ServeReadyEvent(TypedDict):
    """The server listens: ``url`` is the OpenAI base URL (ending in ``/v1``); ``dtype`` and ``device``
    are the weights' format and where they are (``cpu`` or ``cuda``); ``pid`` is the server's process
    and ``engine_pid`` that of its engine, which the server stops when it stops."""

    type: Literal["serve_ready"]
    url: str
    models: list[str]
    dtype: str
    device: str
    pid: int
    engine_pid: int


class ServeRequestEvent(TypedDict):
    """One HTTP request ended (answered, refused or cut off by its client)."""

    type: Literal["serve_request"]
    method: str
    path: str
    status: int
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    elapsed_s: float


class ServeStoppedEvent(TypedDict):
    """The server stopped: ``reason`` is ``signal`` (Ctrl-C, SIGTERM) or ``error``."""

    type: Literal["serve_stopped"]
    reason: Literal["signal", "error"]
    requests: int


# -- judging a model (routeshell eval judge --json) ------------------------------------------------

EvalStatus = Literal["scored", "unscored", "failed"]


class EvalStartEvent(TypedDict):
    """An evaluation starts: ``cached`` of the ``samples`` were judged before and are not asked again."""

    type: Literal["eval_start"]
    samples: int
    cached: int
    concurrency: int
    out: str


class EvalSampleEvent(TypedDict):
    """One sample was judged (``scored``), had no valid verdict (``unscored``) or no answer (``failed``)."""

    type: Literal["eval_sample"]
    index: int
    status: EvalStatus
    overall: int | None
    reason: str
    done: int
    total: int


class EvalCounts(TypedDict):
    scored: int
    unscored: int
    failed: int


class EvalAverages(TypedDict):
    """The mean of each criterion over the scored samples; None when none was scored."""

    accuracy: float | None
    completeness: float | None
    fluency: float | None
    professionalism: float | None
    overall: float | None


class EvalSummary(TypedDict):
    """What ``summary.json`` holds: the averages, the counts and where the per-sample details are."""

    data: list[str]
    model: str
    judge_model: str
    prompt_version: int
    samples: int
    counts: EvalCounts
    averages: EvalAverages
    details: str
    summary: str


class EvalDoneEvent(EvalSummary):
    """The evaluation ended; the summary and the details are written."""

    type: Literal["eval_done"]


# -- router labels: routeshell train labels --events ---------------------------------------------

#: What became of one task's label: asked and labelled, read from the cache, or dropped.
LabelStatus = Literal["labelled", "cached", "dropped"]


class LabelStartEvent(TypedDict):
    """A labelling run starts: ``cached`` of the ``tasks`` have a teacher answer on disk already."""

    type: Literal["label_start"]
    source: str
    labeler: str
    tasks: int
    cached: int
    concurrency: int
    out: str


class LabelTaskEvent(TypedDict):
    """One task was labelled, taken from the cache, or dropped after ``attempts`` invalid answers."""

    type: Literal["label_task"]
    task_id: str
    status: LabelStatus
    attempts: int
    problem: str | None
    done: int
    total: int


class LabelDoneEvent(TypedDict):
    """The labels are written: how many, how many tasks were dropped, and invalid answers in all."""

    type: Literal["label_done"]
    out: str
    samples: int
    dropped: int
    invalid_answers: int
    asked: int
    seconds: float
