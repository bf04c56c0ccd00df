"""``routeshell serve`` as a real subprocess for tests: started on loopback, read as JSON events."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.helpers import ROUTESHELL

#: Seconds a server may take to load torch and the model and start listening.
START_TIMEOUT_S = 180


class ServeProcess:
    """A running ``routeshell serve --events --port 0``; its events are read on a thread."""

    def __init__(self, model: Path, *args: str, env: dict[str, str] | None = None) -> None:
        environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
        self.process = subprocess.Popen(
            [ROUTESHELL, "serve", "--model", str(model), "--port", "0", "--events", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        self.events: list[dict[str, Any]] = []
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        try:
            self.ready = self.wait_for("serve_ready")
        except BaseException:
            self.process.kill()
            self.process.wait(10)
            raise
        self.url: str = self.ready["url"]
        self.root = self.url.removesuffix("/v1")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            self.events.append(event)
            self._lines.put(event)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self._stderr.extend(self.process.stderr)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def wait_for(self, kind: str, timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
        """Return the next event of type ``kind``; fail when the server ends or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {kind} event within {timeout}s; stderr: {self.stderr}") from None
            if event is None:
                self.process.wait(10)
                raise AssertionError(f"the server ended ({self.process.returncode}) before {kind}: {self.stderr}")
            if event["type"] == kind:
                return event

    def client(self, api_key: str = "unused", **options: Any) -> openai.OpenAI:
        """The official client on this server, without retries (a refusal must show as it is)."""
        return openai.OpenAI(base_url=self.url, api_key=api_key, max_retries=0, timeout=120, **options)

    def health(self) -> dict[str, Any]:
        response = httpx.get(f"{self.root}/health", timeout=30)
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``signum`` and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"the server did not stop on signal {signum}") from None


@contextmanager
def serving(model: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[ServeProcess]:
    """A started server for the block; stopped with SIGTERM after it (killed if it hangs)."""
    server = ServeProcess(model, *args, env=env)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


def wait_until(predicate: Any, timeout: float = 60, every: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true (return True) or ``timeout`` passes (return False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def make_adapter(model_dir: Path, out: Path, seed: int) -> Path:
    """Save a LoRA adapter with random (non-zero) weights for ``model_dir`` into ``out``; return it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(str(out))
    return out
