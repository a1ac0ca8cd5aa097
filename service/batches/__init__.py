"""Batches: OpenAI's Files and Batch APIs, and the drainer that runs batch lines behind
interactive traffic on every replica. Above `http/` (it runs lines as the routes run requests:
the same validation, services, admission and keys), below the routes.

    files.py       the Files API (uploads streamed into the store)
    api.py         the Batch API: create (validating the input file), get, list, cancel
    validation.py  an input file's structure, line by line
    drainer.py     one per replica: claims lines under leases, housekeeping, heartbeat
    room.py        the engine share lines may use (behind interactive requests)
    runner.py      one line to its one result (or back to the store for later)
    endpoints.py   a line as its endpoint would serve it (request model, prepare, service)
    accounts.py    who a line runs as (revoked keys), its rate limits, `charge_line`
    results.py     a batch's output and error files, and its final status
    events.py      access-log lines per batch event, batch metrics
"""
