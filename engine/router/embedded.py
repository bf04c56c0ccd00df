"""MasRouter-style routers on sentence embeddings: k nearest neighbours, and an MLP with cascaded
heads (topology, then roles given the topology, then rounds given both).

Tasks are embedded with all-MiniLM-L6-v2, the encoder MasRouter used: the embedder lives in
:mod:`engine.semantic.embedder`, shared with the file index (``Embedder`` is re-exported here,
where it lived before). This module imports torch; the registry reaches it by name only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.kinds import TOPOLOGIES
from engine.router.candidates import MAX_LOOP_ROUNDS, Candidate, candidate_index, candidates
from engine.semantic.embedder import Embedder as Embedder
from engine.semantic.embedder import shared_embedder
from engine.textfile import read_capped

#: The most bytes ``knn.json`` may hold (it holds ``{"k": N}``); a longer file, or one that is no
#: regular file (a link to ``/dev/zero``), is refused in one line instead of filling the memory.
MAX_SETTINGS_BYTES = 1 << 20

EXTRA_ROLES = ("planner", "tester", "refactor")


class KnnModel:
    """The ``k`` training tasks most similar to a task vote for their labels, weighted by similarity."""

    kind = "knn"

    def __init__(self, vectors: torch.Tensor, labels: torch.Tensor, k: int = 7) -> None:
        self.vectors = vectors.float()  # (N, 384)
        self.labels = labels.long()  # (N,)
        self.k = k

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[Candidate], *, k: int = 7) -> KnnModel:
        """Keep the embeddings of ``texts`` and their labels."""
        indices = torch.tensor([candidate_index()[label.key] for label in labels])
        return cls(shared_embedder().embed(texts, memo=True), indices, k)

    def probabilities(self, texts: Sequence[str]) -> list[list[float]]:
        similarity = shared_embedder().embed(texts) @ self.vectors.T  # (B, N)
        k = min(self.k, self.vectors.shape[0])
        top, where = similarity.topk(k, dim=1)  # (B, k)
        weights = torch.softmax(top / 0.05, dim=1)  # sharper for closer neighbours
        votes = torch.zeros(len(texts), len(candidates()))
        votes.scatter_add_(1, self.labels[where], weights)
        return [[float(x) for x in row] for row in votes]

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        save_file({"vectors": self.vectors.half().contiguous(), "labels": self.labels.contiguous()},
                  str(directory / "knn.safetensors"))  # fmt: skip
        (directory / "knn.json").write_text(json.dumps({"k": self.k}), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> KnnModel:
        from safetensors.torch import load_file

        tensors = _finite(load_file(str(directory / "knn.safetensors")), "knn.safetensors")
        settings = json.loads(read_capped(directory / "knn.json", MAX_SETTINGS_BYTES).decode("utf-8"))
        return cls(tensors["vectors"], tensors["labels"], int(settings["k"]))


def _targets(labels: Sequence[Candidate]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    topology = torch.tensor([TOPOLOGIES.index(c.topology) for c in labels])
    roles = torch.tensor([[float(role in c.roles) for role in EXTRA_ROLES] for c in labels])
    rounds = torch.tensor([c.max_rounds - 1 if c.topology == "loop" else -100 for c in labels])
    return topology, roles, rounds


class CascadeHeads(nn.Module):
    """A shared hidden layer and three heads, each reading the decisions of the heads before it."""

    def __init__(self, width: int = 384, hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout))
        self.topology = nn.Linear(hidden, len(TOPOLOGIES))
        self.roles = nn.Linear(hidden + len(TOPOLOGIES), len(EXTRA_ROLES))
        self.rounds = nn.Linear(hidden + len(TOPOLOGIES) + len(EXTRA_ROLES), MAX_LOOP_ROUNDS)

    def forward(
        self, x: torch.Tensor, topology: torch.Tensor, roles: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits of the three heads for embeddings ``x`` (B, W), given one-hot topologies (B, 3) and roles (B, 3)."""
        h = self.trunk(x)  # (B, H)
        return (
            self.topology(h),  # (B, 3)
            self.roles(torch.cat([h, topology], dim=-1)),  # (B, 3)
            self.rounds(torch.cat([h, topology, roles], dim=-1)),  # (B, 5)
        )


@cache
def _candidate_tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each candidate's topology index, one-hot topology, extra roles and round index: (C,), (C, 3), (C, 3), (C,)."""
    found = candidates()
    topology = torch.tensor([TOPOLOGIES.index(c.topology) for c in found])
    roles = torch.tensor([[float(role in c.roles) for role in EXTRA_ROLES] for c in found])
    rounds = torch.tensor([c.max_rounds - 1 for c in found])
    return topology, nn.functional.one_hot(topology, len(TOPOLOGIES)).float(), roles, rounds


class CascadeMlpModel:
    """The cascade's probability of a candidate is P(topology) x P(roles | topology) x
    P(rounds | topology, roles) (rounds for a loop only), renormalised over the 28 candidates."""

    kind = "mlp"

    def __init__(self, heads: CascadeHeads) -> None:
        self.heads = heads.eval()

    @classmethod
    def fit(
        cls, texts: Sequence[str], labels: Sequence[Candidate], *, seed: int = 0, epochs: int = 300
    ) -> CascadeMlpModel:
        """Train the heads on the embeddings of ``texts``, each head taught with the true earlier decisions."""
        torch.manual_seed(seed)
        x = shared_embedder().embed(texts, memo=True)
        topology, roles, rounds = _targets(labels)
        heads = CascadeHeads()
        optimizer = torch.optim.AdamW(heads.parameters(), lr=3e-3, weight_decay=1e-2)
        one_hot = nn.functional.one_hot(topology, len(TOPOLOGIES)).float()
        heads.train()
        for _ in range(epochs):
            optimizer.zero_grad()
            topo_logits, role_logits, round_logits = heads(x, one_hot, roles)
            loss = nn.functional.cross_entropy(topo_logits, topology)
            loss = loss + nn.functional.binary_cross_entropy_with_logits(role_logits, roles)
            if bool((rounds >= 0).any()):
                loss = loss + nn.functional.cross_entropy(round_logits, rounds, ignore_index=-100)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        return cls(heads)

    @torch.inference_mode()
    def probabilities(self, texts: Sequence[str]) -> list[list[float]]:
        x = shared_embedder().embed(texts)  # (B, W)
        c_topology, c_one_hot, c_roles, c_rounds = _candidate_tensors()
        count = len(c_topology)
        batch = x.shape[0]
        xs = x.repeat_interleave(count, dim=0)  # (B*C, W)
        topo_logits, role_logits, round_logits = self.heads(xs, c_one_hot.repeat(batch, 1), c_roles.repeat(batch, 1))
        log_p = torch.log_softmax(topo_logits, -1).gather(1, c_topology.repeat(batch)[:, None])[:, 0]  # (B*C,)
        roles = c_roles.repeat(batch, 1)
        role_log = -nn.functional.binary_cross_entropy_with_logits(role_logits, roles, reduction="none").sum(-1)
        is_loop = (c_topology == TOPOLOGIES.index("loop")).repeat(batch)
        round_log = torch.log_softmax(round_logits, -1).gather(1, c_rounds.repeat(batch)[:, None])[:, 0]
        total = (log_p + role_log + torch.where(is_loop, round_log, torch.zeros_like(round_log))).view(batch, count)
        return [[float(p) for p in row] for row in torch.softmax(total, dim=-1)]

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.heads.state_dict().items()}, str(directory / "mlp.safetensors"))

    @classmethod
    def load(cls, directory: Path) -> CascadeMlpModel:
        from safetensors.torch import load_file

        heads = CascadeHeads()
        heads.load_state_dict(_finite(load_file(str(directory / "mlp.safetensors")), "mlp.safetensors"))
        return cls(heads)


def _finite(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """``tensors``; raise ``ValueError`` when a weight in one is not a finite number."""
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{name}: {key} holds a weight that is not a finite number")
    return tensors


def fit_embedded(kind: str, texts: Sequence[str], labels: Sequence[Candidate], *, seed: int = 0) -> Any:
    """Fit the ``knn`` or ``mlp`` router."""
    if kind == "knn":
        return KnnModel.fit(texts, labels)
    return CascadeMlpModel.fit(texts, labels, seed=seed)


def load_embedded(kind: str, directory: Path) -> Any:
    """Load a saved ``knn`` or ``mlp`` router."""
    return KnnModel.load(directory) if kind == "knn" else CascadeMlpModel.load(directory)
