"""Reading a request body with a byte cap: a client must not make a replica buffer (and then
parse) more than a request may legitimately hold."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from serving.schema import InputSchema, Kind
from serving.validation import BadRequest

# Room per number in a /predict row: json.dumps writes at most 24 characters for a float
# ("-1.2345678901234567e-100"), plus ", ". Pretty-printed bodies get the headroom below.
BYTES_PER_VALUE = 32
BYTES_PER_TEXT = 64  # a category value's room at least (an unseen one may be longer than ours)
HEADROOM = 4096
CLIENT_CLOSED = 499


def predict_body_limit(max_rows: int, schema: InputSchema) -> int:
    """The largest /predict body worth reading: max_rows rows written as records, each value at
    full float precision or as a category's string (escaped: twice its length at most)."""
    row = 8
    for column in schema.columns:
        row += len(column.name) + 8  # "name": ,
        if column.kind is Kind.CATEGORY:
            longest = max((len(c) for c in column.categories or ()), default=0)
            row += max(BYTES_PER_TEXT, 2 * longest + 2)
        else:
            row += BYTES_PER_VALUE
    return HEADROOM + max_rows * row


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
