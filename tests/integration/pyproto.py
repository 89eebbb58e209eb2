"""pyproto.py -- Python stubs of fbpipe's proto/ files for the integration
tests' clients (grpcio-tools, in a temporary folder removed at exit).

usage: import pyproto; pyproto.stubs("api.proto"); import api_pb2
"""
import atexit
import os
import shutil
import sys
import tempfile

import grpc_tools
from grpc_tools import protoc


def stubs(*protos, grpc=False):
    """Generate the message (and with grpc, service) modules of protos
    and make them importable; exits when protoc refuses one."""
    out = tempfile.mkdtemp(prefix="fbpipe-pystubs-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    args = ["protoc", "-I" + os.path.join(os.environ["FBPIPE_SRCDIR"], "proto"),
            "-I" + os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"),
            "--python_out=" + out]
    if grpc:
        args.append("--grpc_python_out=" + out)
    if protoc.main(args + list(protos)) != 0:
        sys.exit("protoc refused " + " ".join(protos))
    sys.path.insert(0, out)


def send_event(port):
    """The original API's SendEvent (a client stream of api.Event answered
    by one EResponse) on a plaintext channel to 127.0.0.1:port, and the
    api_pb2 module."""
    import grpc
    stubs("api.proto")
    import api_pb2
    ch = grpc.insecure_channel("127.0.0.1:" + str(port))
    return ch.stream_unary("/api.EventService/SendEvent",
                           request_serializer=api_pb2.Event.SerializeToString,
                           response_deserializer=api_pb2.EResponse.FromString), api_pb2
