"""Evaluating a served model: a judge model scores its answers (``routeshell eval judge``)."""
