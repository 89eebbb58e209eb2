"""ledger_feed.py -- what test-ledger sends through the original API
(api.proto SendEvent) with a token for one tenant: a stream of 3 valid
events (answered SUCCESS), then a stream of 2 valid events and one whose
agent_id is longer than the record allows (refused INVALID_ARGUMENT:
nothing of that stream is stored). Prints the two answers.

usage: ledger_feed.py PORT TOKEN KEY
"""
import sys

import grpc

import pyproto  # tests/integration/pyproto.py, beside this script

port, token, key = sys.argv[1:4]
send, api_pb2 = pyproto.send_event(port)
md = [("authorization", "Bearer " + token)]


def ev(i, agent_id="ledger"):
    return api_pb2.Event(agent_id=agent_id, tag="t", AccessKey=key, message='{"i":%d}' % i)


r = send(iter([ev(1), ev(2), ev(3)]), metadata=md, timeout=30)
print("first:", api_pb2.EventCode.Name(r.status))
try:
    send(iter([ev(4), ev(5), ev(6, agent_id="x" * 5000)]), metadata=md, timeout=30)
    print("second: answered, not refused")
except grpc.RpcError as e:
    print("second:", e.code().name)
