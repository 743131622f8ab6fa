"""Strict request decoding: bad input is a 400 (or 413) that names the problem, never a 500."""

from __future__ import annotations

import json
from typing import Any


class BadRequest(Exception):
    """A client error (400, 401, 413, or 499 for a client gone mid-body); the message is safe
    to return."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_json(body: bytes) -> Any:
    """The decoded body, or BadRequest: a client's JSON must never cost a 500."""
    if not body:
        raise BadRequest('empty request body: send JSON like {"instances": [[...]]}')
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    except RecursionError:  # e.g. "[[[[..." 200,000 deep: the decoder gives up, so do we
        raise BadRequest("malformed JSON: nested too deeply") from None
