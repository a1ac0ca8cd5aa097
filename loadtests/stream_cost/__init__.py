"""What one streamed event costs the gateway's API process, in CPU time (`python -m
loadtests.stream_cost --help`).

Three levels, each with the engine out of the way (a fake engine whose output costs nothing):

- `service`: a service's stream (`chat.stream`, `completions.stream`, the task API's) driven by a
  handler-fed fake engine: chunk building and serialization, the reader, the accounting.
- `app`: the whole ASGI app in process (middleware, routing, the guard, sse-starlette, the
  service), driven by a minimal ASGI server loop: many concurrent streams, no sockets.
- `server`: `python -m service --engine fake` under uvicorn on loopback, streamed to by httpx
  from this process; the server process's own CPU time per event (sockets and HTTP included).

Figures are CPU microseconds per stream event (one SSE `data:` line), the median over rounds
with the spread. CPU time is far less sensitive than wall time to other work on the machine,
but not immune to it (caches, frequency): compare trees in alternating runs on one machine.
"""
