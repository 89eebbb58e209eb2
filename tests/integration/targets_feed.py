"""targets_feed.py -- what test-targets sends through the original API
(api.proto SendEvent) for one tenant: events FROM..FROM+N-1, 100 to a
stream, each message {"i": i, "v": 1}; with "bad", {"i": i, "v": "not a
number"} (a document an index that mapped v as a number refuses). Every
stream must be answered SUCCESS; exits 1 otherwise.

usage: targets_feed.py PORT TOKEN KEY FROM N [bad]
"""
import json
import sys

import pyproto  # tests/integration/pyproto.py, beside this script

port, token, key = sys.argv[1:4]
first, n = int(sys.argv[4]), int(sys.argv[5])
bad = len(sys.argv) > 6 and sys.argv[6] == "bad"
send, api_pb2 = pyproto.send_event(port)
md = [("authorization", "Bearer " + token)]


def ev(i):
    msg = {"i": i, "v": "not a number" if bad else 1}
    return api_pb2.Event(agent_id="targets", tag="t", AccessKey=key, message=json.dumps(msg))


for at in range(first, first + n, 100):
    r = send(iter([ev(i) for i in range(at, min(at + 100, first + n))]), metadata=md,
             timeout=60)
    if api_pb2.EventCode.Name(r.status) != "SUCCESS":
        print("targets_feed: %s: %s" % (key, api_pb2.EventCode.Name(r.status)),
              file=sys.stderr)
        sys.exit(1)
