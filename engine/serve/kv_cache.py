"""A key/value cache that grows in place: transformers' ``DynamicLayer`` with room to spare.

``DynamicLayer.update`` concatenates each step's keys and values onto the whole cache, so every
decode step copies all of it into new memory: with eight rows of the ``small`` preset that copy
took more time than the attention itself. A :class:`GrowingLayer` keeps a buffer with room for
:data:`GROWTH` more positions; a step writes its one position in place and the attention reads a
view of the filled part. Assigning ``keys``/``values`` (as the batch does when rows join or
leave) replaces the buffer.

A layer may keep its buffers in a narrower ``storage`` dtype than the model computes in: the int8
model computes in fp32, and with eight rows reading every key and value of every layer took
almost half of each decode step, bound by memory bandwidth. Stored in bf16 they are half the
bytes. ``update`` returns views in the storage dtype: the attention must take them as they are
(:func:`engine.serve.attention.decode_attention` does, and is the only one given such a cache).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

#: Positions of room added when a layer's buffer is full: one copy every GROWTH steps.
GROWTH = 64


class GrowingLayer(DynamicLayer):  # type: ignore[no-untyped-call]
    """A ``DynamicLayer`` whose keys and values are views of buffers with room to grow."""

    def __init__(self, storage: torch.dtype | None = None) -> None:
        self.storage = storage
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None
        # Filled positions of each buffer: equal after every update; apart only between the two
        # assignments that replace them (``layer.keys = ...; layer.values = ...``).
        self._length = 0
        self._value_length = 0
        super().__init__()  # type: ignore[no-untyped-call]

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self._key_buffer = self._value_buffer = None
        self._length = self._value_length = 0
        self.is_initialized = True

    @property
    def keys(self) -> torch.Tensor | None:
        if self._key_buffer is None:
            return None
        return self._key_buffer[..., : self._length, :]

    @keys.setter
    def keys(self, tensor: torch.Tensor | None) -> None:
        self._key_buffer = tensor
        self._length = 0 if tensor is None else tensor.shape[-2]

    @property
    def values(self) -> torch.Tensor | None:
        if self._value_buffer is None:
            return None
        return self._value_buffer[..., : self._value_length, :]

    @values.setter
    def values(self, tensor: torch.Tensor | None) -> None:
        self._value_buffer = tensor
        self._value_length = 0 if tensor is None else tensor.shape[-2]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new positions in place (making room first when full); return the filled views."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        if self._length != self._value_length:
            raise RuntimeError(f"keys hold {self._length} positions but values {self._value_length}")
        start = self._length
        end = start + key_states.shape[-2]
        keys, values = self._key_buffer, self._value_buffer
        if keys is None or values is None or end > keys.shape[-2] or end > values.shape[-2]:
            keys = self._key_buffer = self._grown(keys, key_states, end)
            values = self._value_buffer = self._grown(values, value_states, end)
        keys[..., start:end, :] = key_states
        values[..., start:end, :] = value_states
        self._length = self._value_length = end
        return keys[..., :end, :], values[..., :end, :]

    def _grown(self, buffer: torch.Tensor | None, like: torch.Tensor, needed: int) -> torch.Tensor:
        dtype = self.storage if self.storage is not None else like.dtype
        grown = like.new_empty((*like.shape[:-2], needed + GROWTH, like.shape[-1]), dtype=dtype)
        if buffer is not None and self._length:
            grown[..., : self._length, :] = buffer[..., : self._length, :]
        return grown

    def get_seq_length(self) -> int:
        return self._length if self.is_initialized else 0

    def reset(self) -> None:
        self._key_buffer = self._value_buffer = None
        self._length = self._value_length = 0
        self.is_initialized = False
        super().reset()


def growing_cache(config: Any, storage: torch.dtype | None = None) -> Cache:
    """A cache of :class:`GrowingLayer`, one per decoder layer of ``config``, keeping its keys and
    values in ``storage`` (default: the dtype the model computes in)."""
    layers = int(config.get_text_config(decoder=True).num_hidden_layers)
    return Cache(layers=[GrowingLayer(storage) for _ in range(layers)])
