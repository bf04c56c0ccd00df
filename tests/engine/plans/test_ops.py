"""The table of plan ops: every part of the engine reads the same declaration of each op."""

from __future__ import annotations

from engine.plans.model import PATH_KEYS
from engine.plans.ops import OPS
from engine.schemas import load_schema


def test_the_schema_and_the_table_name_the_same_ops() -> None:
    schema = load_schema("plan")
    assert schema["$defs"]["step"]["properties"]["op"]["enum"] == list(OPS)
    for name, op in OPS.items():
        shape = schema["$defs"][name]["properties"]
        assert {key.key for key in op.paths} | set(op.texts) | set(op.defaults) <= set(shape), name
        assert all(shape[key.key] == {"$ref": "#/$defs/path"} for key in op.paths), name


def test_every_op_declares_what_the_engine_needs() -> None:
    for name, op in OPS.items():
        assert op.name == name
        assert f'"op": "{name}"' in op.usage
        assert PATH_KEYS[name] == tuple((key.key, key.write) for key in op.paths)
