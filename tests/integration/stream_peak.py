"""stream_peak.py -- a peak of native streams, for test-memory-peak: N
streams (grpc.aio, spread over N/50 connections) each send one batch with
TOKEN, wait for its ack, and stay open until all N are acknowledged; then
all end at once.

usage: stream_peak.py PORT TOKEN N [RECORDS]
  RECORDS: per batch (default 100), each of about 1 KB.
Exit 0 when every batch was acknowledged OK.
"""
import asyncio
import sys

import grpc

import pyproto  # tests/integration/pyproto.py, beside this script

port, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
records = int(sys.argv[4]) if len(sys.argv) > 4 else 100
pyproto.stubs("fbpipe.proto")
import fbpipe_pb2 as pb  # noqa: E402


async def one(channel, i, all_acked, acked):
    call = channel.stream_stream("/fbpipe.v1.Ingest/Stream",
                                 request_serializer=pb.Batch.SerializeToString,
                                 response_deserializer=pb.Ack.FromString)(
        metadata=[("authorization", "Bearer " + token)], timeout=120)
    await call.write(pb.Batch(seq=1, tag="peak", agent_id="peak-%d" % i, records=[
        pb.BatchRecord(payload=b'{"i":%d,"r":%d,"p":"%s"}' % (i, r, b"x" * 1000))
        for r in range(records)]))
    ack = await call.read()
    if ack.code != pb.OK:
        raise SystemExit("stream_peak: FAIL: stream %d: %s" % (i, ack))
    acked.append(i)
    if len(acked) == n:
        all_acked.set()
    await all_acked.wait()
    await call.done_writing()
    while await call.read() != grpc.aio.EOF:
        pass


async def main():
    channels = [grpc.aio.insecure_channel("127.0.0.1:" + port,
                                          options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range((n + 49) // 50)]
    all_acked, acked = asyncio.Event(), []
    await asyncio.gather(*(one(channels[i % len(channels)], i, all_acked, acked)
                           for i in range(n)))
    for c in channels:
        await c.close()
    print("stream_peak: %d streams open at once, each acknowledged" % len(acked))


asyncio.run(main())
