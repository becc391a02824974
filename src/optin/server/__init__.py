"""The collector's HTTP service (``optin serve``).

app.py       the ASGI application: POST /v1/events (plain ASGI) beside Starlette routes
ingest.py    media type, gzip, JSON and batch decoding with every limit
validate.py  the policy compiled into a fast checker with the reference's verdicts
errors.py    the one JSON error body
ratelimit.py per-source token buckets on salted, daily-rotated hashes (memory only)
metrics.py   Prometheus text
writer.py    storage calls grouped per turn of the loop, with back-pressure
child.py     the worker's end of the SQLite storage process (optin.storage.process)
openapi.py   the hand-written OpenAPI 3.1 document
protocol.py  uvicorn's httptools protocol plus 408 (slow headers) and 431 (big headers)
run.py       ``serve(args)``: uvicorn with uvloop + httptools, workers, no access log
"""

from optin.server.app import Collector, create_app

__all__ = ["Collector", "create_app"]
