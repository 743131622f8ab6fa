"""Reading a request body with a byte cap: a client must not make a replica buffer (and then
parse) more than a request may legitimately hold."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from serving.validation import BadRequest

# Room per number in a /predict row: json.dumps writes at most 24 characters for a float
# ("-1.2345678901234567e-100"), plus ", ". Pretty-printed bodies get the headroom below.
BYTES_PER_VALUE = 32
HEADROOM = 4096
CLIENT_CLOSED = 499


def predict_body_limit(max_rows: int, n_features: int) -> int:
    """The largest /predict body worth reading: max_rows rows written at full float precision."""
    return HEADROOM + max_rows * (n_features * BYTES_PER_VALUE + 8)


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The body, or a 413 as soon as it is known to exceed `limit` bytes (before reading it all)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit, what)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit, what)
            chunks.append(chunk)
    except ClientDisconnect:
        # The client's doing, not a server error: 499 (nginx's "client closed request").
        raise BadRequest(
            f"the client disconnected after {size} bytes of the body", status=CLIENT_CLOSED
        ) from None
    return b"".join(chunks)


def _too_large(size: int, limit: int, what: str) -> BadRequest:
    return BadRequest(
        f"request body too large: {size} bytes > limit {limit} bytes ({what}); split the request",
        status=413,
    )
