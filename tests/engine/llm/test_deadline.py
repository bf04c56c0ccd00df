"""A server that keeps sending a little, never finishing, times out like a silent one.

Each trickle stops by itself after TRICKLE_S seconds and the connection closes: a client without a
deadline on the whole reply would then fail with a dropped connection, not with a timeout.
"""

from __future__ import annotations

import httpx
import pytest

from engine.config.profiles import Endpoint
from engine.evaluation.endpoints import listed_model
from engine.llm.client import ChatClient, EndpointError
from engine.llm.deadline import http_client, http_get, within
from tests.engine.llm.test_llm import HELLO, client_for, fails
from tests.scripted_llm import Reply, ScriptedLLM, Stall, Trickle

TRICKLE_S = 20.0


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_trickled_reply_times_out(scripted_llm: ScriptedLLM, where: str) -> None:
    scripted_llm.enqueue(Trickle(where=where, interval_s=0.1, seconds=TRICKLE_S))
    client, _ = client_for(scripted_llm.base_url, timeout_s=0.5, max_retries=0)
    error = fails(client)
    assert str(error).startswith(f"LLM endpoint {scripted_llm.base_url} timed out after 0.5 s (1 attempt);")


def test_a_timeout_names_the_setting_to_raise_only_where_there_is_one(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Stall(20), Stall(20))
    client, _ = client_for(scripted_llm.base_url, timeout_s=0.3, max_retries=0)
    assert str(fails(client)).endswith("is the server overloaded? (raise timeout_s in the profile's llm section)")
    fixed = Endpoint(base_url=scripted_llm.base_url, model="m", api_key="k", timeout_s=0.3, max_retries=0,
                     timeout_setting="")  # fmt: skip
    assert str(fails(ChatClient(fixed))).endswith("is the server overloaded?")


def test_a_stream_of_keepalives_without_text_times_out(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Trickle(b": keep-alive\n\n", where="stream", interval_s=0.1, seconds=TRICKLE_S))
    client, _ = client_for(scripted_llm.base_url, timeout_s=0.5, max_retries=0)
    error = fails(client, stream=True)
    assert "timed out after 0.5 s" in str(error)


def test_a_stream_that_keeps_sending_text_is_not_cut_short(scripted_llm: ScriptedLLM) -> None:
    # Nine pieces, 0.2 s apart: longer than the timeout in all, never that long without text.
    text = "".join(f"piece {n}. " for n in range(9))
    scripted_llm.enqueue(Reply(text, pieces=9, piece_delay_s=0.2))
    client, _ = client_for(scripted_llm.base_url, timeout_s=1.0, max_retries=0)
    with client:
        reply = client.chat(HELLO, stream=True)
    assert reply.content == text


def test_the_model_list_is_read_within_the_timeout(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.models = Trickle(interval_s=0.1, seconds=TRICKLE_S)
    with pytest.raises(EndpointError) as caught:
        listed_model(scripted_llm.base_url, None, option="--model", timeout_s=0.5)
    assert "did not list its models within 0.5 s" in str(caught.value)
    assert "give the model with --model" in str(caught.value)


def test_a_get_reads_the_whole_answer_within_the_timeout(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.models = Trickle(interval_s=0.1, seconds=TRICKLE_S)
    with pytest.raises(httpx.ReadTimeout):
        http_get(scripted_llm.base_url + "/models", timeout_s=0.5)


def test_without_a_deadline_the_client_is_plain_httpx(scripted_llm: ScriptedLLM) -> None:
    with http_client(5.0) as client:
        assert client.get(scripted_llm.base_url + "/models").json()["data"][0]["id"] == "scripted"
        with within(5.0):
            assert client.get(scripted_llm.base_url + "/models").status_code == 200
